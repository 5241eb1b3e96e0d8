"""Search spaces: the one format a config, a model's shipped space and MMRec's grids share.

A space maps a key to its values::

    k: [32, 64, 128]                              # a list: these values (a grid dimension)
    lambda_w: {categorical: [0.001, 0.01, 0.1]}   # the same, spelled out
    train.lr: {loguniform: [0.0001, 0.1]}         # log-uniform float in [lo, hi]
    train.weight_decay: {uniform: [0.0, 0.001]}   # uniform float in [lo, hi]
    neighbours: {int: [5, 200], log: true}        # integer in [lo, hi] (optionally log-scaled)
    last_n: {categorical: [1, 5, 10], when: {aggregation: last_n}}

``when`` makes a key conditional on an earlier categorical key (its value, or one of a list of
values): ``last_n`` is only drawn, and only passed to the model, when ``aggregation`` is
``last_n`` — so a search over VLM4Rec's profile choices does not spend trials on settings that
change nothing. Keys are the model's constructor parameters (``k``), ``train.<key>`` for trainer
settings (``train.lr``, see :class:`benchmark.train_config.TrainConfig`), or a dotted path into a
mapping parameter (``config_overrides.embedding_size``); the runner resolves a bare trainer key
(``lr``) to ``train.lr`` (:mod:`benchmark.runner.search`).

A space whose every key is a list of values is *finite*: :meth:`Space.combinations` enumerates it
(conditions applied, duplicates removed) for the ``grid`` sampler.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from benchmark.errors import ConfigError

#: how a key's values are drawn (the keys of a dimension's mapping)
DIMENSION_KINDS: tuple[str, ...] = ("categorical", "loguniform", "uniform", "int")
_OPTIONS = ("when", "log")
_PRIMITIVE = (type(None), bool, int, float, str)


class Suggester(Protocol):
    """What :meth:`Space.suggest` needs from an Optuna trial (``optuna.Trial`` has these)."""

    def suggest_categorical(self, name: str, choices: Sequence[Any]) -> Any: ...

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...


@dataclass(frozen=True)
class Dimension:
    """One key of a space: its kind, its values or bounds, and its condition."""

    key: str
    kind: str
    values: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def active(self, chosen: Mapping[str, Any]) -> bool:
        """Whether this key applies given the values chosen for earlier keys."""
        return all(key in chosen and chosen[key] in allowed for key, allowed in self.when)

    def suggest(self, trial: Suggester) -> Any:
        """Draw this key's value from ``trial`` (non-primitive choices travel as JSON strings)."""
        if self.kind == "categorical":
            encoded = [_encode(v) for v in self.values]
            return _decode(trial.suggest_categorical(self.key, encoded))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "loguniform")

    def describe(self) -> Any:
        """The dimension back in the config format (for provenance and captions)."""
        if self.kind == "categorical" and not self.when:
            return list(self.values)
        out: dict[str, Any] = {self.kind: list(self.values) if self.kind == "categorical" else [self.low, self.high]}
        if self.log and self.kind == "int":
            out["log"] = True
        if self.when:
            out["when"] = {k: list(v) if len(v) > 1 else v[0] for k, v in self.when}
        return out


@dataclass(frozen=True)
class Space:
    """An ordered search space (see the module docstring for the format)."""

    dimensions: tuple[Dimension, ...]

    @classmethod
    def parse(cls, raw: Mapping[str, Any], where: str = "search") -> Space:
        """Validate a space mapping; errors name ``where.<key>`` and what is allowed."""
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: a search space is a mapping of key -> values, got {type(raw).__name__}")
        dims: list[Dimension] = []
        for key, spec in raw.items():
            dims.append(_parse_dimension(str(key), spec, f"{where}.{key}", {d.key: d for d in dims}))
        return cls(tuple(dims))

    @property
    def keys(self) -> list[str]:
        return [d.key for d in self.dimensions]

    def __bool__(self) -> bool:
        return bool(self.dimensions)

    @property
    def finite(self) -> bool:
        """Every key has a list of values (so the space can be enumerated)."""
        return all(d.kind == "categorical" for d in self.dimensions)

    def require_finite(self, where: str = "") -> None:
        """Refuse (ConfigError, prefixed ``where: ``) a space the grid sampler cannot enumerate,
        naming its continuous keys."""
        if not self.finite:
            continuous = ", ".join(d.key for d in self.dimensions if d.kind != "categorical")
            prefix = f"{where}: " if where else ""
            raise ConfigError(f"{prefix}sampler grid needs a list of values for every key; continuous: {continuous}")

    def combinations(self) -> list[dict[str, Any]]:
        """Every distinct assignment of a finite space, conditions applied, in a fixed order
        (keys in space order, values in list order; an inactive key is left out)."""
        if not self.finite:
            raise ConfigError("only a space of value lists can be enumerated (a grid)")
        out: list[dict[str, Any]] = []
        seen: set[str] = set()
        for values in itertools.product(*(d.values for d in self.dimensions)):
            chosen: dict[str, Any] = {}
            for d, v in zip(self.dimensions, values):
                if d.active(chosen):
                    chosen[d.key] = v
            sig = canonical_json(chosen)
            if sig not in seen:
                seen.add(sig)
                out.append(chosen)
        return out

    def size(self) -> float:
        """Number of distinct assignments (``inf`` when a key is continuous)."""
        return float(len(self.combinations())) if self.finite else math.inf

    def suggest(self, trial: Suggester) -> dict[str, Any]:
        """One assignment drawn key by key from an Optuna trial; inactive keys are not drawn."""
        chosen: dict[str, Any] = {}
        for d in self.dimensions:
            if d.active(chosen):
                chosen[d.key] = d.suggest(trial)
        return chosen

    def describe(self) -> dict[str, Any]:
        return {d.key: d.describe() for d in self.dimensions}

    def __iter__(self) -> Iterator[Dimension]:
        return iter(self.dimensions)


def canonical_json(values: Mapping[str, Any]) -> str:
    """A stable text form of an assignment (sorted keys), for traces and duplicate detection."""
    return json.dumps(dict(values), sort_keys=True, default=str)


def _encode(value: Any) -> Any:
    """Optuna's categorical choices must be None/bool/int/float/str: other values go as JSON."""
    return value if isinstance(value, _PRIMITIVE) else "json:" + json.dumps(value, sort_keys=True)


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("json:"):
        return json.loads(value[5:])
    return value


def _parse_dimension(key: str, spec: Any, where: str, earlier: Mapping[str, Dimension]) -> Dimension:
    if isinstance(spec, (list, tuple)):
        return _categorical(key, spec, where, ())
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: give a list of values or one of {{{', '.join(DIMENSION_KINDS)}: …}}, got {spec!r}")
    kinds = [k for k in spec if k in DIMENSION_KINDS]
    unknown = [k for k in spec if k not in DIMENSION_KINDS and k not in _OPTIONS]
    if unknown or len(kinds) != 1:
        raise ConfigError(
            f"{where}: give exactly one of {', '.join(DIMENSION_KINDS)} (options: {', '.join(_OPTIONS)}); got {sorted(spec)}"
        )
    kind = kinds[0]
    when = _parse_when(spec.get("when"), f"{where}.when", earlier)
    if kind == "categorical":
        if "log" in spec:
            raise ConfigError(f"{where}.log: only for int")
        return _categorical(key, spec[kind], f"{where}.{kind}", when)
    bounds = spec[kind]
    if not isinstance(bounds, (list, tuple)) or len(bounds) != 2 or not all(_is_number(b) for b in bounds):
        raise ConfigError(f"{where}.{kind}: give [low, high] as two numbers, got {bounds!r}")
    low, high = float(bounds[0]), float(bounds[1])
    if not low < high:
        raise ConfigError(f"{where}.{kind}: low must be below high, got [{low}, {high}]")
    log = bool(spec.get("log", False))
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}.loguniform: bounds must be > 0, got [{low}, {high}]")
    if kind == "int":
        if not all(float(b).is_integer() for b in bounds):
            raise ConfigError(f"{where}.int: bounds must be integers, got {bounds!r}")
        if log and low < 1:
            raise ConfigError(f"{where}.int: log-scaled bounds must be >= 1, got [{low}, {high}]")
    elif "log" in spec:
        raise ConfigError(f"{where}.log: only for int (use loguniform for floats)")
    return Dimension(key, kind, low=low, high=high, log=log, when=when)


def _categorical(key: str, values: Any, where: str, when: tuple[tuple[str, tuple[Any, ...]], ...]) -> Dimension:
    if not isinstance(values, (list, tuple)) or not values:
        raise ConfigError(f"{where}: give a non-empty list of values, got {values!r}")
    encoded = [_encode(v) for v in values]
    if len(set(map(repr, encoded))) != len(encoded):
        raise ConfigError(f"{where}: values repeat: {list(values)!r}")
    return Dimension(key, "categorical", values=tuple(values), when=when)


def _parse_when(raw: Any, where: str, earlier: Mapping[str, Dimension]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, Mapping) or not raw:
        raise ConfigError(f"{where}: give {{earlier_key: value or [values]}}, got {raw!r}")
    out = []
    for k, v in raw.items():
        dim = earlier.get(str(k))
        if dim is None or dim.kind != "categorical":
            allowed = [d.key for d in earlier.values() if d.kind == "categorical"]
            raise ConfigError(
                f"{where}.{k}: a condition names an earlier key with a list of values; allowed: {', '.join(allowed) or 'none'}"
            )
        values = tuple(v) if isinstance(v, (list, tuple)) else (v,)
        bad = [x for x in values if x not in dim.values]
        if bad:
            raise ConfigError(f"{where}.{k}: {bad!r} is not among {k}'s values {list(dim.values)!r}")
        out.append((str(k), values))
    return tuple(out)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))
