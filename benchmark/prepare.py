"""``data prepare``: read → filter → split → persist, from one validated configuration.

Stages (each counted in ``summary.json``):

1. read the reviews (and the metadata, if given) with ``benchmark.data.readers``; skip reports
   of both go into the summary;
2. ``dedupe`` — one interaction per (user, item), the earliest by default;
3. ``image_only`` (optional) — keep items whose catalogue row has an image URL;
4. iterative k-core (users and items separately; 0 disables a side);
5. the split protocol (:func:`benchmark.protocols.make_split`), then ``Split.save``.

k-core defaults depend on the protocol: ``paper`` keeps users with ≥ 5 ratings and filters no
items (that *is* its recipe, so by default no extra k-core runs: users 5, items 0); the other
protocols default to a 5-core on both sides. ``official`` imports the 2023 release's own
benchmark files as given (``reviews`` is then the directory holding them) and runs no filter.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.errors import ConfigError
from benchmark.filtering import DEDUPE_RULES, dedupe, filter_items_with_image, kcore
from benchmark.io import sha256_file
from benchmark.protocols import PAPER_SEED, check_leakage, make_split
from benchmark.protocols.leakage import LeakageError
from benchmark.split import Split

log = logging.getLogger(__name__)

RELEASES: tuple[str, ...] = ("2014", "2018", "2023")
PREPARE_PROTOCOLS: tuple[str, ...] = ("paper", "mmrec", "loo", "global-time", "official")
OFFICIAL_VARIANTS_HINT = "e.g. last_out, last_out_w_his, timestamp, timestamp_w_his (see import_2023_official)"


class PrepareConfigError(ConfigError):
    """A ``data prepare`` setting is missing or has a value that is not allowed."""


@dataclass
class PrepareConfig:
    """Everything ``data prepare`` needs; build it with :meth:`from_mapping` to get validation.

    ``kcore`` sets both sides; ``user_kcore``/``item_kcore`` override one side; all ``None``
    means the protocol's default (see module docstring). ``protocol_params`` go to the protocol
    (e.g. ``valid_frac`` for ``global-time``). ``category``/``variant`` are for ``official``.
    """

    release: str
    reviews: Path
    out: Path
    meta: Path | None = None
    kcore: int | None = None
    user_kcore: int | None = None
    item_kcore: int | None = None
    dedupe: str = "earliest"
    image_only: bool = False
    protocol: str = "paper"
    seed: int = PAPER_SEED
    protocol_params: dict[str, Any] = field(default_factory=dict)
    strict: bool = False
    category: str | None = None
    variant: str | None = None

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base_dir: str | Path | None = None) -> PrepareConfig:
        """Validate ``values`` (a config file's keys or CLI flags); relative paths resolve
        against ``base_dir`` (the config file's folder). Errors name the key and allowed values."""
        values = {k.replace("-", "_"): v for k, v in values.items() if v is not None}
        unknown = sorted(set(values) - set(cls.keys()))
        if unknown:
            raise PrepareConfigError(f"unknown setting(s) {unknown}; allowed: {', '.join(cls.keys())}")
        for key in ("release", "reviews", "out"):
            if key not in values:
                raise PrepareConfigError(f"setting {key!r} is required")
        base = Path(base_dir) if base_dir is not None else None

        def path(key: str) -> Path | None:
            if values.get(key) is None:
                return None
            p = Path(str(values[key])).expanduser()
            return base / p if base is not None and not p.is_absolute() else p

        cfg = cls(
            release=str(values["release"]),
            reviews=path("reviews"),  # type: ignore[arg-type]
            out=path("out"),  # type: ignore[arg-type]
            meta=path("meta"),
            kcore=values.get("kcore"),
            user_kcore=values.get("user_kcore"),
            item_kcore=values.get("item_kcore"),
            dedupe=str(values.get("dedupe", "earliest")),
            image_only=values.get("image_only", False),
            protocol=str(values.get("protocol", "paper")),
            seed=values.get("seed", PAPER_SEED),
            protocol_params=dict(values.get("protocol_params") or {}),
            strict=values.get("strict", False),
            category=values.get("category"),
            variant=values.get("variant"),
        )
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise :class:`PrepareConfigError` naming the first bad setting."""
        _one_of("release", self.release, RELEASES)
        _one_of("protocol", self.protocol, PREPARE_PROTOCOLS)
        _one_of("dedupe", self.dedupe, DEDUPE_RULES)
        for key in ("kcore", "user_kcore", "item_kcore"):
            v = getattr(self, key)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise PrepareConfigError(f"setting {key!r} must be an integer >= 0 (0 disables); got {v!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise PrepareConfigError(f"setting 'seed' must be an integer; got {self.seed!r}")
        for key in ("image_only", "strict"):
            if not isinstance(getattr(self, key), bool):
                raise PrepareConfigError(f"setting {key!r} must be true or false; got {getattr(self, key)!r}")
        if not isinstance(self.protocol_params, dict):
            raise PrepareConfigError(f"setting 'protocol_params' must be a mapping; got {self.protocol_params!r}")
        if not Path(self.reviews).exists():
            raise PrepareConfigError(f"setting 'reviews': {self.reviews} does not exist")
        if self.meta is not None and not Path(self.meta).exists():
            raise PrepareConfigError(f"setting 'meta': {self.meta} does not exist")
        if self.image_only and self.meta is None:
            raise PrepareConfigError("setting 'image_only' needs 'meta' (the catalogue gives the image URLs)")
        if self.protocol == "official":
            if self.release != "2023":
                raise PrepareConfigError(f"protocol 'official' needs release '2023'; got {self.release!r}")
            if not Path(self.reviews).is_dir():
                raise PrepareConfigError("with protocol 'official', 'reviews' is the directory of the benchmark files")
            for key in ("category", "variant"):
                if not getattr(self, key):
                    raise PrepareConfigError(f"protocol 'official' needs setting {key!r} ({OFFICIAL_VARIANTS_HINT})")
            set_filters = [k for k in ("kcore", "user_kcore", "item_kcore") if getattr(self, k) is not None]
            if set_filters or self.image_only or self.protocol_params:
                raise PrepareConfigError(
                    f"protocol 'official' uses the release's files as given; remove {set_filters or ''}"
                    f"{' image_only' if self.image_only else ''}{' protocol_params' if self.protocol_params else ''}"
                )
        elif self.category or self.variant:
            raise PrepareConfigError("settings 'category'/'variant' are only for protocol 'official'")

    def kcore_sides(self) -> tuple[int, int]:
        """(user_k, item_k) after applying the protocol default and the overrides."""
        user_k, item_k = (5, 0) if self.protocol == "paper" else (5, 5)
        if self.kcore is not None:
            user_k = item_k = self.kcore
        if self.user_kcore is not None:
            user_k = self.user_kcore
        if self.item_kcore is not None:
            item_k = self.item_kcore
        return user_k, item_k

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        return {k: (str(v) if isinstance(v, Path) else v) for k, v in d.items()}


def prepare(config: PrepareConfig) -> Split:
    """Run read → filter → split for ``config`` and write the split to ``config.out``."""
    config.validate()
    from benchmark.data.readers import read_meta, read_reviews  # written in parallel; import late

    t0 = time.perf_counter()
    sources = {"reviews": _source(config.reviews)}
    reports: dict[str, Any] = {}
    catalogue = None
    if config.meta is not None:
        catalogue, meta_report = read_meta(config.meta, config.release, strict=config.strict)
        reports["meta"] = meta_report.to_dict()
        sources["meta"] = _source(config.meta)
        log.info("read %d catalogue items from %s", len(catalogue), config.meta)

    if config.protocol == "official":
        split = _prepare_official(config, catalogue, reports)
        summary = {"stages": {}, "read_reports": reports, "sources": sources, "config": config.to_dict()}
        summary["leakage"] = reports.pop("_leakage")
        split.save(config.out, extra_summary=summary)
        return split

    df, review_report = read_reviews(config.reviews, config.release, strict=config.strict)
    reports["reviews"] = review_report.to_dict()
    stages: dict[str, Any] = {"read": _counts(df)}
    log.info("read %d interactions from %s", len(df), config.reviews)

    df, n_dup = dedupe(df, keep=config.dedupe)  # type: ignore[arg-type]
    stages["dedupe"] = {"rule": config.dedupe, "removed": n_dup, **_counts(df)}

    if config.image_only:
        df, counts = filter_items_with_image(df, catalogue)  # type: ignore[arg-type]
        stages["image_filter"] = {**counts, **_counts(df)}

    user_k, item_k = config.kcore_sides()
    df, kstats = kcore(df, user_k=user_k, item_k=item_k)
    stages["kcore"] = kstats.to_dict()
    if df.empty:
        raise ValueError(
            f"no interactions left after filtering (stages: {stages}); lower the k-core or drop image_only"
        )

    filtering = {
        "release": config.release,
        "dedupe": config.dedupe,
        "user_kcore": user_k,
        "item_kcore": item_k,
        "image_only": config.image_only,
        "strict": config.strict,
        "sources": {k: {"name": v["name"], "sha256": v["sha256"]} for k, v in sources.items()},
    }
    split = make_split(df, catalogue, config.protocol, seed=config.seed, filtering=filtering, **config.protocol_params)
    stages["split"] = split.params.get("stats", {})
    if catalogue is not None:
        stages["catalogue"] = _coverage(split)
    summary = {
        "stages": stages,
        "read_reports": reports,
        "sources": sources,
        "config": config.to_dict(),
        "leakage": check_leakage(split),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    split.save(config.out, extra_summary=summary)
    log.info("wrote %s split (%s) to %s", config.protocol, split.fingerprint[:12], config.out)
    return split


def _prepare_official(config: PrepareConfig, catalogue: pd.DataFrame | None, reports: dict[str, Any]) -> Split:
    from benchmark.data.interop import import_2023_official

    read_reports: list[Any] = []
    split = import_2023_official(
        config.reviews, config.category, config.variant, catalogue=catalogue, strict=config.strict, reports=read_reports
    )
    reports["official"] = [r.to_dict() for r in read_reports]
    try:
        reports["_leakage"] = check_leakage(split)
    except LeakageError as exc:
        # The release's files are used as given; a leak in them is reported, and fatal when strict.
        if config.strict:
            raise
        log.warning("official split: %s", exc)
        reports["_leakage"] = {"ok": False, "error": str(exc)}
    return split


def _coverage(split: Split) -> dict[str, int]:
    """How many of the split's items the metadata covers (VLM4Rec needs text and an image)."""
    items = split.items
    has_meta = items["has_meta"].to_numpy(dtype=bool)
    url = items["image_url"] if "image_url" in items.columns else pd.Series([None] * len(items))
    has_image = (url.notna() & url.astype(str).str.strip().ne("")).to_numpy()
    return {
        "items": int(len(items)),
        "with_meta": int(has_meta.sum()),
        "without_meta": int((~has_meta).sum()),
        "with_image_url": int(has_image.sum()),
    }


def _counts(df: pd.DataFrame) -> dict[str, int]:
    return {"rows": int(len(df)), "users": int(df["user"].nunique()), "items": int(df["item"].nunique())}


def _source(path: Path) -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file())
        return {
            "name": p.name,
            "path": str(p),
            "sha256": None,
            "files": {str(f.relative_to(p)): sha256_file(f) for f in files},
        }
    return {"name": p.name, "path": str(p), "size": p.stat().st_size, "sha256": sha256_file(p)}


def _one_of(key: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise PrepareConfigError(f"setting {key!r} = {value!r} is not allowed; allowed: {', '.join(allowed)}")
