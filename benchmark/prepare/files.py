"""Raw release files → a split: read (+ date window) → dedupe → image filter → k-core → split → persist, in memory.

``data prepare`` runs these stages out of core (:mod:`benchmark.prepare.engine`); this pandas
pipeline is the reference it must match exactly (the identity tests compare the two), and each
stage below is the definition of what the engine computes.

Stages (each counted in ``summary.json``):

1. read the reviews with ``benchmark.data.readers``, applying the date window (``date_from`` /
   ``date_before``, UTC) record by record while the file streams; then the metadata, if given,
   for the items those reviews name only; skip reports of both go into the summary, the
   window's counts (kept, dropped, time-zone-sensitive reviews per edge) under
   ``stages.date_window``;
2. ``dedupe`` — one interaction per (user, item), the earliest by default (``all`` keeps them);
3. ``image_only`` (optional) — keep items whose catalogue row has an image URL;
4. k-core (users and items; 0 disables a side) — until stable, or ``kcore_passes`` passes in
   ``kcore_order`` (:func:`benchmark.filtering.kcore`);
5. the split protocol (:func:`benchmark.protocols.make_split`), then ``Split.save``.

Each stage after reading is a function over the raw interaction table in
:mod:`benchmark.filtering` (the window also as :func:`benchmark.data.window.filter_date_window`),
so an out-of-core engine can port them one by one. A recipe (``ds.recipe``, see
:mod:`benchmark.prepare.recipes`) only sets these keys; it has no code path of its own.

The seed and k-core come from :meth:`DatasetConfig.split_settings` (the protocol's defaults
for unset values) and are recorded in the split's params. Protocol ``official`` reads the 2023
release's own benchmark files as given (:func:`prepare_official`) and runs no filter.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.data.read_report import Plausibility
from benchmark.errors import ConfigError
from benchmark.filtering import dedupe, filter_items_with_image, kcore
from benchmark.io import sha256_file
from benchmark.prepare.config import DatasetConfig
from benchmark.protocols import check_leakage, make_split
from benchmark.protocols.leakage import LeakageError
from benchmark.split import Split

log = logging.getLogger(__name__)


def prepare_files(ds: DatasetConfig, out: str | Path) -> Split:
    """Run read → filter → split for a ``files`` (or generated ``demo``) dataset; save to ``out``."""
    from benchmark.data.readers import read_reviews

    t0 = time.perf_counter()
    require_path("reviews", ds.reviews)
    window = ds.date_window()
    df, review_report = read_reviews(
        ds.reviews,  # type: ignore[arg-type]
        ds.release,  # type: ignore[arg-type]
        strict=ds.strict,
        window=window,
        plausible=ds.plausibility(),
    )
    log.info("read %d interactions from %s", len(df), ds.reviews)
    # the metadata of the items the (windowed) reviews name: a full 2018 catalogue has millions
    catalogue, reports, sources = read_catalogue(ds, items=set(df["item"].unique()))
    sources = {"reviews": source_record(Path(ds.reviews)), **sources}  # type: ignore[arg-type]
    reports = {"reviews": review_report.to_dict(), **reports}
    df, stages, filtering = filter_interactions(ds, df, catalogue)
    if window is not None:
        stages = {"date_window": review_report.filters["date_window"], **stages}
        filtering["date_window"] = window.to_dict()
    filtering["sources"] = {k: {"name": v["name"], "sha256": v["sha256"]} for k, v in sources.items()}
    settings = ds.split_settings()
    split = make_split(df, catalogue, ds.protocol, seed=settings.seed, filtering=filtering, **ds.protocol_params)
    stages["split"] = split.params.get("stats", {})
    if catalogue is not None:
        stages["catalogue"] = catalogue_coverage(split.items)
    summary = {
        "stages": stages,
        "read_reports": reports,
        "sources": sources,
        "config": ds.to_dict(),
        "leakage": check_leakage(split),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    split.save(out, extra_summary=summary)
    log.info("wrote %s split (%s) to %s", ds.protocol, split.fingerprint[:12], out)
    return split


def filter_interactions(
    ds: DatasetConfig, df: pd.DataFrame, catalogue: pd.DataFrame | None
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any]]:
    """dedupe → image filter → k-core; returns the kept rows, per-stage counts and the
    ``filtering`` record that goes into the split's params (and so its fingerprint)."""
    stages: dict[str, Any] = {"read": counts(df)}
    df, n_dup = dedupe(df, keep=ds.dedupe)  # type: ignore[arg-type]
    stages["dedupe"] = {"rule": ds.dedupe, "removed": n_dup, **counts(df)}
    if ds.image_only:
        df, removed = filter_items_with_image(df, catalogue)  # type: ignore[arg-type]
        stages["image_filter"] = {**removed, **counts(df)}
    settings = ds.split_settings()
    df, kstats = kcore(
        df, user_k=settings.user_kcore, item_k=settings.item_kcore, passes=ds.kcore_passes, order=ds.kcore_order
    )
    stages["kcore"] = kstats.to_dict()
    if df.empty:
        raise ConfigError(
            f"no interactions left after filtering (stages: {stages}); lower the k-core or drop image_only"
        )
    return df, stages, filtering_record(ds)


def filtering_record(ds: DatasetConfig) -> dict[str, Any]:
    """What ran before the split, as recorded in its params (and so its fingerprint)."""
    settings = ds.split_settings()
    filtering: dict[str, Any] = {
        "release": ds.release,
        "dedupe": ds.dedupe,
        "user_kcore": settings.user_kcore,
        "item_kcore": settings.item_kcore,
        "image_only": ds.image_only,
        "strict": ds.strict,
    }
    # recorded only when set, so splits made before these options keep their fingerprint
    if ds.kcore_passes is not None:
        filtering["kcore_passes"] = ds.kcore_passes
    if ds.kcore_order != "simultaneous":
        filtering["kcore_order"] = ds.kcore_order
    if ds.recipe is not None:
        filtering["recipe"] = ds.recipe
    if ds.plausibility() != Plausibility():  # only bounds that differ from the defaults are recorded
        filtering["plausible"] = ds.plausibility().to_dict()
    return filtering


def prepare_official(ds: DatasetConfig, directory: str | Path, out: str | Path) -> Split:
    """The 2023 release's own benchmark split of ``ds.category`` (files as given), saved to ``out``.

    A leak in the release's files is reported in ``summary.json`` (and fatal when ``strict``).
    """
    from benchmark.data.interop import import_2023_official

    key = "reviews" if ds.source == "files" else "path"
    if not Path(directory).is_dir():
        raise ConfigError(
            f"{key}: with protocol 'official' this is the directory of the benchmark files; got {directory}"
        )
    catalogue, reports, sources = read_catalogue(ds)
    read_reports: list[Any] = []
    category = str(ds.category)  # validated: required with protocol official
    split = import_2023_official(
        directory,
        category,
        ds.official_variant(),
        catalogue=catalogue,
        strict=ds.strict,
        reports=read_reports,
        plausible=ds.plausibility(),
    )
    reports["official"] = [r.to_dict() for r in read_reports]
    try:
        leakage = check_leakage(split)
    except LeakageError as exc:
        if ds.strict:
            raise
        log.warning("official split: %s", exc)
        leakage = {"ok": False, "error": str(exc)}
    sources = {key: source_record(Path(directory)), **sources}
    summary = {"stages": {}, "read_reports": reports, "sources": sources, "config": ds.to_dict(), "leakage": leakage}
    split.save(out, extra_summary=summary)
    return split


def read_catalogue(
    ds: DatasetConfig, items: Collection[str] | None = None
) -> tuple[pd.DataFrame | None, dict[str, Any], dict[str, Any]]:
    """The catalogue from ``ds.meta`` (or ``None``; only ``items`` when given), its read report
    and its source record."""
    from benchmark.data.readers import read_meta

    if not ds.meta:
        return None, {}, {}
    require_path("meta", ds.meta)
    # official splits are 2023 data; Align-MacridVAE folders are made from the 2018 release
    release = ds.release or ("2018" if ds.source == "align-macridvae" else "2023")
    catalogue, report = read_meta(ds.meta, release, strict=ds.strict, items=items)
    log.info("read %d catalogue items from %s", len(catalogue), ds.meta)
    return catalogue, {"meta": report.to_dict()}, {"meta": source_record(Path(ds.meta))}


def catalogue_coverage(items: pd.DataFrame) -> dict[str, int]:
    """How many of the split's items (its item table) the metadata covers (VLM4Rec needs text and an image)."""
    has_meta = items["has_meta"].to_numpy(dtype=bool)
    url = items["image_url"] if "image_url" in items.columns else pd.Series([None] * len(items))
    has_image = (url.notna() & url.astype(str).str.strip().ne("")).to_numpy()
    return {
        "items": int(len(items)),
        "with_meta": int(has_meta.sum()),
        "without_meta": int((~has_meta).sum()),
        "with_image_url": int(has_image.sum()),
    }


def counts(df: pd.DataFrame) -> dict[str, int]:
    return {"rows": int(len(df)), "users": int(df["user"].nunique()), "items": int(df["item"].nunique())}


def source_record(path: Path) -> dict[str, Any]:
    """Name, location and sha256 of a source file (or of every file under a directory)."""
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


def require_path(key: str, value: str | Path | None) -> Path:
    """``value`` as a path that exists, or a :class:`ConfigError` naming ``key``."""
    if not value or not Path(value).exists():
        raise ConfigError(f"{key}: {value} does not exist")
    return Path(value)
