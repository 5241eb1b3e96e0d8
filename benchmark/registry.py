"""One registry mechanism for everything the harness finds by name: models and feature producers.

A :class:`Registry` maps names to factories (a class or a function). Entries come from a
decorator (``@register_model("vbpr")``) in a module named by an entry-point group, so the
harness never imports ``vlm4rec`` or ``baselines`` by name and outside plug-ins extend it the
same way (``vlm4rec_bench.models`` / ``vlm4rec_bench.features`` in a ``pyproject.toml``). An entry
point may name a factory (registered under the entry point's name) or a module (imported so
that its decorators run).

:meth:`Registry.check_params` is the one place that validates a factory's parameters against its
signature: unknown names are a :class:`~benchmark.errors.ConfigError` naming the allowed ones,
and a parameter annotated with a config dataclass (``train: TrainConfig``) is validated into it
(:func:`benchmark.configuration.from_dict`), so a typo deep inside names its dotted key. The
config validator and :meth:`Registry.create` both call it.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import typing
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from benchmark.errors import BenchError, ConfigError

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


class UnknownNameError(BenchError, KeyError):
    """A name that no registry entry has (the message lists the registered ones)."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


#: kept for callers that catch the model-specific name
UnknownModelError = UnknownNameError


class UnknownParameterError(ConfigError, TypeError):
    """A parameter the factory does not take (a ``TypeError`` too, as a bad keyword is in Python)."""


class Registry(Generic[F]):
    """Name → factory, filled by decorators and an entry-point group.

    ``kind`` is what an entry is called in messages ("model", "feature producer");
    ``context_params`` are the leading parameters the caller supplies itself (a producer's
    ``ctx``), not configurable by name; ``reserved`` are parameters a config may not set
    directly, with the reason (a model's ``seed`` comes from ``seeds``).
    """

    def __init__(
        self,
        kind: str,
        group: str,
        *,
        context_params: tuple[str, ...] = (),
        reserved: Mapping[str, str] | None = None,
    ) -> None:
        self.kind = kind
        self.group = group
        self.context_params = context_params
        self.reserved = dict(reserved or {})
        self._entries: dict[str, F] = {}
        self._sources: dict[str, str] = {}
        self._loaded = False

    # ---------------------------------------------------------------- filling
    def register(self, name: str) -> Callable[[F], F]:
        """Decorator registering a class or function under ``name``."""

        def deco(factory: F) -> F:
            self.add(name, factory, getattr(factory, "__module__", "?"))
            return factory

        return deco

    def add(self, name: str, factory: F, source: str) -> None:
        if name in self._entries and self._entries[name] is not factory:
            raise ValueError(f"{self.kind} name {name!r} registered twice ({self._sources[name]} and {source})")
        self._entries[name] = factory
        self._sources[name] = source

    def load_entry_points(self, force: bool = False) -> None:
        """Import every entry point of the group once; a broken plug-in is logged, not fatal."""
        if self._loaded and not force:
            return
        self._loaded = True
        for ep in entry_points(group=self.group):
            try:
                obj = ep.load()
            except Exception as exc:  # a broken third-party plug-in must not take the harness down
                log.warning("could not load %s plug-in %s (%s): %s", self.kind, ep.name, ep.value, exc)
                continue
            if inspect.ismodule(obj):
                continue  # its decorators registered what it has
            if ep.name not in self._entries:
                self.add(ep.name, obj, ep.value)

    # ---------------------------------------------------------------- reading
    def names(self) -> list[str]:
        self.load_entry_points()
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        self.load_entry_points()
        return name in self._entries

    def get(self, name: str) -> F:
        self.load_entry_points()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; registered: {', '.join(sorted(self._entries)) or 'none'}"
            ) from None

    def parameters(self, name: str) -> dict[str, inspect.Parameter]:
        """The configurable parameters of ``name``'s factory (context parameters left out)."""
        sig = inspect.signature(self.get(name))
        return {k: p for k, p in sig.parameters.items() if k != "self" and k not in self.context_params}

    def accepts(self, name: str, param: str) -> bool:
        """Whether the factory takes ``param`` by name (e.g. ``seed``, ``train``)."""
        return param in self.parameters(name)

    def attribute(self, name: str, attr: str, default: Any = None) -> Any:
        """A class attribute of the factory (e.g. a model's ``train_defaults``), or ``default``."""
        return getattr(self.get(name), attr, default)

    # ---------------------------------------------------------------- checking and creating
    def check_params(self, name: str, params: Mapping[str, Any], where: str = "") -> dict[str, Any]:
        """Validate ``params`` for ``name``; return them with config dataclasses built.

        ``where`` is the dotted key of ``params`` in the user's config (``models[2].params``), so
        an error names the line to fix.
        """
        from benchmark.configuration import from_dict

        at = f"{where}." if where else ""
        factory = self.get(name)
        accepted = self.parameters(name)
        takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
        out: dict[str, Any] = {}
        hints = _type_hints(factory)
        for key, value in params.items():
            if key in self.reserved:
                raise ConfigError(f"{at}{key}: {self.reserved[key]}")
            if key not in accepted and not takes_kwargs:
                allowed = [p for p in accepted if p not in self.reserved]
                raise UnknownParameterError(
                    f"{at}{key}: unknown parameter of {self.kind} {name!r}; allowed: {', '.join(allowed) or 'none'}"
                )
            cls = _config_dataclass(hints.get(key))
            out[key] = from_dict(cls, value, f"{at}{key}") if cls is not None and value is not None else value
        return out

    def create(self, name: str, *context: Any, **params: Any) -> Any:
        """Call ``name``'s factory with the context arguments and validated ``params``."""
        checked = self.check_params(name, {k: v for k, v in params.items() if k not in self.reserved})
        checked.update({k: v for k, v in params.items() if k in self.reserved})  # the harness sets these
        return self.get(name)(*context, **checked)


def _type_hints(factory: Callable[..., Any]) -> dict[str, Any]:
    """Resolved annotations of a function or of a class's ``__init__`` (empty when unresolvable)."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        return typing.get_type_hints(target)
    except Exception:  # annotations naming what is not importable here: treat as untyped
        return {}


def _config_dataclass(tp: Any) -> type | None:
    """The config dataclass in an annotation like ``TrainConfig`` or ``TrainConfig | None``."""
    if tp is None:
        return None
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp
    for arg in typing.get_args(tp):
        if dataclasses.is_dataclass(arg) and isinstance(arg, type):
            return arg
    return None


# ------------------------------------------------------------------------------------- models
MODELS: Registry[Callable[..., Any]] = Registry(
    "model",
    "vlm4rec_bench.models",
    reserved={
        "seed": "seeds come from `seeds`, not from params",
        "train": "trainer settings go under the model's `train` key (or the experiment's), not params",
        "logger": "the runner gives trainable models its logger",
    },
)
ENTRY_POINT_GROUP = MODELS.group

register_model = MODELS.register


def available_models() -> list[str]:
    return MODELS.names()


def get_model_factory(name: str) -> Callable[..., Any]:
    return MODELS.get(name)


def create_model(name: str, **params: Any) -> Any:
    """Instantiate a registered model; unknown parameters give an error naming the allowed ones."""
    return MODELS.create(name, **params)


def load_entry_points(force: bool = False) -> None:
    MODELS.load_entry_points(force)
