"""The one dataset configuration: where a split comes from and how it is made.

:class:`DatasetConfig` is the ``dataset`` section of an experiment config, the keys of
``vlm4rec-bench data prepare --config FILE`` (whose flags are generated from its fields, see
:func:`add_flags`) and what ``data import`` builds from its arguments. Adding a key is a
change here only: the config validator, the flags of ``data prepare`` and the record in the
split's ``summary.json`` follow from the field (its ``help`` metadata is the flag's help).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.configuration import choice, from_dict, parse_value
from benchmark.data.interop import OFFICIAL_VARIANTS
from benchmark.data.read_report import Plausibility
from benchmark.data.readers import RELEASES
from benchmark.data.window import DateWindow
from benchmark.errors import ConfigError
from benchmark.filtering import DEDUPE_RULES, KCORE_ORDERS
from benchmark.prepare.recipes import RECIPES, apply_recipe
from benchmark.protocols import PROTOCOLS, default_kcore, default_seed

#: the sources ``data import`` reads (another framework's split, or the 2023 release's own)
IMPORT_SOURCES: tuple[str, ...] = ("align-macridvae", "mmrec", "official-2023")
#: where a split comes from (see :class:`DatasetConfig`)
SOURCES: tuple[str, ...] = ("demo", "files", "prepared", *IMPORT_SOURCES)
DEFAULT_OFFICIAL_VARIANT = "last_out_w_his"
#: keys holding a file or folder (relative ones in a ``data prepare --config`` file are relative to it)
PATH_KEYS: tuple[str, ...] = ("reviews", "meta", "path")
#: keys that say how a split is computed, not what it is: left out of the runner's cache key
RESOURCE_KEYS: tuple[str, ...] = ("memory_budget", "parse_workers")
#: keys that shape a split drawn from raw files; a source that takes its split as given refuses them
FILTER_KEYS: tuple[str, ...] = (
    "kcore",
    "user_kcore",
    "item_kcore",
    "kcore_passes",
    "kcore_order",
    "date_from",
    "date_before",
    "split_seed",
    "protocol_params",
    "image_only",
    "recipe",
)


def dataset_key(default: Any, help: str, *, choices: tuple[str, ...] | None = None, flag: Any = True) -> Any:
    """A :class:`DatasetConfig` field: its default, the help text of its flag, its allowed values.
    ``flag``: ``True`` (``--the-key``), a tuple of flag spellings, or ``False`` (config only)."""
    metadata = {"help": help, "flag": flag}
    if choices is not None:
        return choice(default, choices, metadata=metadata)
    if isinstance(default, dict):
        return field(default_factory=dict, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class DatasetConfig:
    """Where the split comes from and how it is made — one set of defaults for ``run``,
    ``data prepare`` and ``data import``.

    ``source``: ``demo`` (the built-in generated catalogue; 2023 layout), ``files`` (a release's
    raw ``reviews`` [+ ``meta``] files → dedupe → image filter → k-core → split with
    ``protocol``), ``prepared`` (a split directory ``path`` written by ``data prepare``),
    ``align-macridvae`` / ``mmrec`` (import the folder ``path`` with its own split and
    features), ``official-2023`` (the 2023 release's benchmark CSVs under ``path``; the same as
    ``files`` with protocol ``official`` and ``reviews`` = that directory).

    Defaults, and how unset values resolve (:meth:`split_settings`, recorded in the split's
    params, so they enter its fingerprint):

    - ``protocol``: ``mmrec``;
    - ``split_seed``: ``None`` = the protocol's default — ``paper``: 20230219 (the paper's own
      split), every other protocol: 0;
    - ``kcore`` (both sides), ``user_kcore``, ``item_kcore`` (one side each, overriding
      ``kcore``): ``None`` = the protocol's default — ``paper``: users 5, items 0 (its recipe),
      the others: users 5, items 5; 0 disables a side;
    - ``kcore_passes``: ``None`` = repeat until stable (a true k-core), N = at most N passes;
      ``kcore_order`` within a pass: ``simultaneous`` (default), ``items-first``, ``users-first``
      (:func:`benchmark.filtering.kcore`);
    - ``date_from`` / ``date_before``: keep reviews whose **UTC** date is in
      ``[date_from, date_before)`` (``YYYY-MM-DD``; unset = unbounded), applied while the reviews
      file streams (:mod:`benchmark.data.window`); ``summary.json`` counts what it dropped and
      the reviews a time-zone shift would move across each edge;
    - ``recipe``: a named set of these values reproducing another project's data
      (:mod:`benchmark.prepare.recipes`; ``align-macridvae`` = the VLM4Rec paper's data), applied
      when the config is validated; keys it sets may be left out, conflicting ones are errors;
    - ``dedupe``: ``earliest``; ``image_only``: false; ``strict``: false (count bad lines, do
      not stop); ``protocol_params``: none;
    - ``memory_budget`` and ``parse_workers`` (how, not what: no part of the split's identity):
      the out-of-core engine's memory, default 10% of RAM
      (:func:`benchmark.prepare.engine.parse_budget`), and the processes parsing a large reviews
      file, default one per core but one from 4 cores on (1 below);
    - ``plausible``: bounds of a plausible rating and timestamp for the raw review files
      (:class:`benchmark.data.read_report.Plausibility`: ratings 1–5, timestamps 1990-01-01 to
      2100-01-01); a value outside is an ``implausible`` line, counted in the read report;
    - ``variant`` (official splits): ``last_out_w_his``; ``category``: the official category
      (``All_Beauty``) or MMRec's dataset name (default: ``name``).

    Sources that take their split as given (``prepared``, imports, ``official``) refuse the
    keys that would shape one (``kcore``…, ``split_seed``, ``protocol_params``, ``image_only``).
    """

    name: str = dataset_key("demo", "dataset name (the runner's cache folder)", flag=False)
    source: str = dataset_key("demo", "where the split comes from", choices=SOURCES, flag=False)
    release: str | None = dataset_key(None, "Amazon release of the files", choices=RELEASES)
    reviews: str | None = dataset_key(
        None, "reviews/ratings file (with protocol official: the directory of the benchmark files)"
    )
    meta: str | None = dataset_key(
        None, "item metadata file (the catalogue; joined onto imported items too); needed for image_only"
    )
    path: str | None = dataset_key(None, "folder of a prepared or imported split", flag=False)
    category: str | None = dataset_key(None, "official: category, e.g. All_Beauty; mmrec: the dataset name")
    variant: str | None = dataset_key(
        None, f"official: benchmark variant (default {DEFAULT_OFFICIAL_VARIANT})", choices=OFFICIAL_VARIANTS
    )
    kcore: int | None = dataset_key(
        None, "k-core on users and items (default: the protocol's; paper: users 5, items 0)"
    )
    user_kcore: int | None = dataset_key(None, "k for users, overrides kcore (0 disables)")
    item_kcore: int | None = dataset_key(None, "k for items, overrides kcore (0 disables)")
    kcore_passes: int | None = dataset_key(
        None, "k-core passes (default: repeat until stable; Align-MacridVAE: 1)", flag=("--kcore-passes",)
    )
    kcore_order: str = dataset_key("simultaneous", "order of the two sides within a k-core pass", choices=KCORE_ORDERS)
    date_from: str | None = dataset_key(None, "keep reviews dated on or after this UTC date (YYYY-MM-DD)")
    date_before: str | None = dataset_key(None, "keep reviews dated before this UTC date (YYYY-MM-DD)")
    recipe: str | None = dataset_key(None, "named recipe setting the filters (align-macridvae)", choices=RECIPES)
    dedupe: str = dataset_key("earliest", "which interaction to keep per (user, item)", choices=DEDUPE_RULES)
    image_only: bool = dataset_key(False, "keep items with an image URL only")
    protocol: str = dataset_key("mmrec", "split protocol", choices=PROTOCOLS)
    split_seed: int | None = dataset_key(
        None, "split seed (default: the protocol's; paper 20230219, others 0)", flag=("--seed", "--split-seed")
    )
    protocol_params: dict[str, Any] = dataset_key(
        {}, "protocol parameter KEY=VALUE, repeatable (e.g. valid_frac=0.1 for global-time)", flag=("--param",)
    )
    demo: dict[str, Any] = dataset_key({}, "demo generator parameters", flag=False)
    strict: bool = dataset_key(False, "stop at the first bad input line")
    memory_budget: str | float | None = dataset_key(
        None,
        "memory for reading and splitting raw files: a size (4GB, 512MiB) or a share of RAM (25%% or 0.25); "
        "default 10%% of RAM; beyond it the engine spills to disk under the output folder",
    )
    parse_workers: int | None = dataset_key(
        None, "processes parsing a large reviews file (default: cores - 1 from 4 cores on, else 1)"
    )
    plausible: dict[str, Any] = dataset_key(
        {},
        "plausibility bound KEY=[MIN,MAX], repeatable: rating (default [1,5]), timestamp (dates YYYY-MM-DD or "
        "epoch seconds; default [1990-01-01,2100-01-01]); ratings/timestamps outside are counted as implausible",
        flag=("--plausible",),
    )

    # ------------------------------------------------------------------ derived settings
    @property
    def official(self) -> bool:
        """Whether the split is the 2023 release's own benchmark files (no split is drawn)."""
        return self.source == "official-2023" or (self.source == "files" and self.protocol == "official")

    @property
    def draws_split(self) -> bool:
        """Whether raw interactions are filtered and split here (``demo``, ``files``)."""
        return self.source in ("demo", "files") and not self.official

    def split_settings(self) -> SplitSettings:
        """The seed and k-core actually used: the one place where unset values take the
        protocol's defaults (:func:`benchmark.protocols.default_seed` / ``default_kcore``)."""
        seed = self.split_seed if self.split_seed is not None else default_seed(self.protocol)
        user_k, item_k = default_kcore(self.protocol)
        if self.kcore is not None:
            user_k = item_k = self.kcore
        if self.user_kcore is not None:
            user_k = self.user_kcore
        if self.item_kcore is not None:
            item_k = self.item_kcore
        return SplitSettings(seed=seed, user_kcore=user_k, item_kcore=item_k)

    def official_variant(self) -> str:
        return self.variant or DEFAULT_OFFICIAL_VARIANT

    def date_window(self) -> DateWindow | None:
        """The review date window (UTC), or ``None`` when neither bound is set."""
        if self.date_from is None and self.date_before is None:
            return None
        return DateWindow(self.date_from, self.date_before)  # type: ignore[arg-type]  # parsed in __post_init__

    # ------------------------------------------------------------------ checks
    def validate(self, path: str = "") -> None:
        """Cross-field checks (types and allowed values are checked by ``from_dict``)."""
        p = f"{path}." if path else ""
        apply_recipe(self, path)
        for key in ("kcore", "user_kcore", "item_kcore"):
            if (getattr(self, key) or 0) < 0:
                raise ConfigError(f"{p}{key}: must be an integer >= 0 (0 disables); got {getattr(self, key)}")
        if self.kcore_passes is not None and self.kcore_passes < 1:
            raise ConfigError(
                f"{p}kcore_passes: must be >= 1 (leave unset to repeat until stable); got {self.kcore_passes}"
            )
        try:
            self.date_window()
        except ValueError as exc:
            raise ConfigError(f"{p}{exc}") from None
        required = {"files": ("release", "reviews"), "official-2023": ("path", "category")}
        for key in required.get(self.source, ("path",) if self.source in ("prepared", *IMPORT_SOURCES) else ()):
            if not getattr(self, key):
                raise ConfigError(f"{p}{key}: required when source is {self.source!r}")
        if self.source == "demo" and self.protocol == "official":
            raise ConfigError(f"{p}protocol: 'official' reads the release's benchmark files; the demo has none")
        if self.source == "files" and self.protocol == "official":
            if self.release != "2023":
                raise ConfigError(f"{p}release: protocol 'official' needs release '2023'; got {self.release!r}")
            if not self.category:
                raise ConfigError(f"{p}category: required with protocol 'official' (e.g. All_Beauty)")
        if self.meta and self.source == "mmrec" and not self.release:
            raise ConfigError(f"{p}release: required to read `meta` for source {self.source!r}")
        if self.image_only and self.source == "files" and not self.meta:
            raise ConfigError(f"{p}image_only: needs `meta` (the catalogue gives the image URLs)")
        if self.parse_workers is not None and self.parse_workers < 1:
            raise ConfigError(f"{p}parse_workers: must be >= 1, got {self.parse_workers}")
        if self.memory_budget is not None:
            from benchmark.prepare.engine.workspace import parse_budget

            parse_budget(self.memory_budget, f"{p}memory_budget")
        self.plausibility(p)
        self._check_unused(p)

    def plausibility(self, path: str = "") -> Plausibility:
        """The bounds a rating / timestamp of the raw files must respect (``plausible``)."""
        return Plausibility.from_mapping(self.plausible, f"{path}plausible")

    def _check_unused(self, p: str) -> None:
        """Keys the source would ignore are errors, not silently dropped settings."""
        if not self.draws_split:
            defaults = {f.name: f.default for f in dataclasses.fields(self) if f.name in FILTER_KEYS}
            set_keys = [k for k in FILTER_KEYS if getattr(self, k) not in (None, False, {}, defaults[k])]
            if set_keys:
                raise ConfigError(
                    f"{p}{set_keys[0]}: source {self.source!r}"
                    f"{' with protocol official' if self.source == 'files' else ''} takes its split as given; "
                    f"remove {', '.join(set_keys)}"
                )
        if self.plausible and self.source not in ("demo", "files", "official-2023"):
            raise ConfigError(f"{p}plausible: source {self.source!r} reads no raw review files; remove it")
        if self.variant and not self.official:
            raise ConfigError(f"{p}variant: only for protocol 'official' (or source 'official-2023')")
        if self.category and not (self.official or self.source == "mmrec"):
            raise ConfigError(f"{p}category: only for protocol 'official' (or sources 'official-2023', 'mmrec')")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class SplitSettings:
    """A dataset config's seed and k-core after the protocol's defaults are applied."""

    seed: int
    user_kcore: int
    item_kcore: int


# ------------------------------------------------------------------------------------- flags
def add_flags(parser: argparse.ArgumentParser, cls: type = DatasetConfig) -> None:
    """One flag per field of ``cls`` that has one (``--user-kcore`` for ``user_kcore``; a
    mapping field takes repeatable ``KEY=VALUE``). Defaults stay ``None`` so that a flag given
    overrides a ``--config`` file and one not given does not; the help names the default."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        spelled = f.metadata.get("flag", False)
        if not spelled:
            continue
        names = ("--" + f.name.replace("_", "-"),) if spelled is True else tuple(spelled)
        tp = _scalar(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else None
        shown = f" (default {default})" if default not in (None, False) and "default" not in f.metadata["help"] else ""
        kwargs: dict[str, Any] = {"dest": f.name, "help": f.metadata["help"] + shown}
        if tp is bool:
            kwargs.update(action="store_true", default=None)
        elif tp is dict:
            kwargs.update(action="append", default=None, metavar="KEY=VALUE")
        else:
            kwargs.update(type=tp, choices=f.metadata.get("choices"))
        parser.add_argument(*names, **kwargs)


def flag_values(args: argparse.Namespace, cls: type = DatasetConfig) -> dict[str, Any]:
    """The keys of ``cls`` given as flags (see :func:`add_flags`); ``KEY=VALUE`` values are
    parsed as YAML; paths are resolved against the working directory."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name, None) if f.metadata.get("flag") else None
        if value is None:
            continue
        if isinstance(value, list):
            value = dict(_key_value(item, f.metadata["flag"]) for item in value)
        elif f.name in PATH_KEYS:  # flags are relative to the working directory, not to a --config file
            value = str(Path(value).expanduser().resolve())
        out[f.name] = value
    return out


def dataset_from_mapping(
    values: Mapping[str, Any], base_dir: str | Path | None = None, *, path: str = ""
) -> DatasetConfig:
    """A validated :class:`DatasetConfig` from a ``data prepare`` config file's keys (and flags).

    Accepted beside the field names, for files written before the one dataset config: ``seed``
    (= ``split_seed``) and a numeric ``release`` (``2023``). Relative paths resolve against
    ``base_dir`` (the config file's folder).
    """
    data = {k.replace("-", "_"): v for k, v in values.items() if v is not None}
    if "seed" in data:
        if "split_seed" in data:
            raise ConfigError(f"{path + '.' if path else ''}seed: give either seed or split_seed, not both")
        data["split_seed"] = data.pop("seed")
    if isinstance(data.get("release"), int) and not isinstance(data["release"], bool):
        data["release"] = str(data["release"])
    if base_dir is not None:
        for key in PATH_KEYS:
            if isinstance(data.get(key), str | Path):
                p = Path(str(data[key])).expanduser()
                data[key] = str(p if p.is_absolute() else Path(base_dir) / p)
    data = {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}
    return from_dict(DatasetConfig, data, path)


def _scalar(tp: Any) -> Any:
    """``int`` for ``int | None`` and so on; ``dict`` for a mapping annotation."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    return dict if typing.get_origin(tp) is dict or tp is dict else tp


def _key_value(item: str, flags: Any) -> tuple[str, Any]:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"{flags[0] if isinstance(flags, tuple) else 'flag'} {item!r}: expected KEY=VALUE")
    return key, parse_value(raw, f"{flags[0] if isinstance(flags, tuple) else 'flag'} {item!r}")
