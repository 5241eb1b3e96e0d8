"""``data prepare`` for raw files, out of core: the stages of :mod:`benchmark.prepare.files`
(read → dedupe → image filter → k-core → split → leakage check → save) with memory set by
the budget, not by the number of lines.

The streaming reader writes Parquet (one record batch in memory), DuckDB runs the filters and
the protocol over integer-coded tables (:mod:`.filters`, :mod:`.protocols`, :mod:`.leakage`)
and the split's files and fingerprint are streamed out of it (:mod:`.output`). The catalogue
(metadata, one row per item) is still read in memory. :func:`benchmark.prepare.files.prepare_files`
is the in-memory reference: for the same config both write the same split — same files, same
fingerprint, same ``summary.json`` but for the time taken — which the identity tests check on
generated inputs of every shape and on the real release samples.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.errors import ConfigError
from benchmark.prepare.config import DatasetConfig
from benchmark.prepare.engine.filters import counts, dedupe, image_filter, kcore, n_rows
from benchmark.prepare.engine.ingest import read_reviews_into, register_catalogue
from benchmark.prepare.engine.leakage import check_leakage
from benchmark.prepare.engine.output import assign_dense_ids, fingerprint, part_counts, split_summary, write_tables
from benchmark.prepare.engine.protocols import label_rows
from benchmark.prepare.engine.workspace import Workspace, parse_budget, workspace
from benchmark.prepare.files import (
    catalogue_coverage,
    filtering_record,
    read_catalogue,
    require_path,
    source_record,
)
from benchmark.protocols.make import split_record
from benchmark.split import catalogue_checksum, write_split_meta

log = logging.getLogger(__name__)


def prepare_files_out_of_core(ds: DatasetConfig, out: str | Path, *, threads: int | None = None) -> str:
    """Read → filter → split ``ds`` (source ``files``/``demo``) into ``out``; returns the fingerprint.

    Temp files live in ``out/.prepare-tmp-*`` and are removed on success and on failure.
    """
    t0 = time.perf_counter()
    clock = StageClock()
    out = Path(out)
    require_path("reviews", ds.reviews)
    window = ds.date_window()
    with workspace(out, parse_budget(ds.memory_budget), threads) as ws:
        review_report = read_reviews_into(
            ws,
            str(ds.reviews),
            str(ds.release),
            strict=ds.strict,
            workers=ds.parse_workers,
            window=window,
            plausible=ds.plausibility(),
        )
        clock.lap("read")
        # the metadata of the items the (windowed) reviews name only, as the in-memory pipeline
        wanted = set(ws.column("SELECT orig FROM item_ids").tolist()) if ds.meta else None
        catalogue, reports, sources = read_catalogue(ds, items=wanted)
        wanted = None
        sources = {"reviews": source_record(Path(str(ds.reviews))), **sources}
        reports = {"reviews": review_report.to_dict(), **reports}
        clock.lap("sources")
        table, stages, filtering = filter_rows(ws, ds, catalogue)
        if window is not None:
            stages = {"date_window": review_report.filters["date_window"], **stages}
            filtering["date_window"] = window.to_dict()
        filtering["sources"] = {k: {"name": v["name"], "sha256": v["sha256"]} for k, v in sources.items()}
        clock.lap("filter")
        settings = ds.split_settings()
        recorded, stats = label_rows(ws, table, ds.protocol, settings.seed, ds.protocol_params)
        per_part = part_counts(ws)
        part_rows = {p: rows for p, (rows, _, _) in per_part.items()}
        n_used = sum(part_rows.values())  # every row of `used` is in one of the parts
        params = split_record(settings.seed, recorded, stats, n_rows(ws, table), n_used, part_rows, filtering)
        n_users, n_items = assign_dense_ids(ws, settings.seed if recorded.get("ids") == "permuted" else None)
        leakage = check_leakage(ws, ds.protocol, params)
        clock.lap("split")
        item_table = write_tables(ws, out, catalogue)
        fp = fingerprint(ws, ds.protocol, params, n_users, n_items)
        split_stats = split_summary(per_part, n_users, n_items)
        clock.lap("write")
    stages["split"] = params["stats"]
    if catalogue is not None:
        stages["catalogue"] = catalogue_coverage(item_table)
    summary = {
        "stages": stages,
        "read_reports": reports,
        "sources": sources,
        "config": ds.to_dict(),
        "leakage": leakage,
        "seconds": round(time.perf_counter() - t0, 3),
        "stage_seconds": clock.laps,
    }
    write_split_meta(out, ds.protocol, params, fp, split_stats, summary, catalogue_checksum(item_table))
    log.info("wrote %s split (%s) to %s", ds.protocol, fp[:12], out)
    return fp


class StageClock:
    """Seconds per stage, recorded in ``summary.json`` (``stage_seconds``) and read by the perf script."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now
        log.debug("stage %s: %.2f s", name, self.laps[name])


def filter_rows(
    ws: Workspace, ds: DatasetConfig, catalogue: pd.DataFrame | None
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """dedupe → image filter → k-core on table ``raw`` (:func:`benchmark.prepare.files.filter_interactions`):
    the kept table's name, per-stage counts and the ``filtering`` record of the split's params."""
    read = {"rows": n_rows(ws, "raw"), "users": n_rows(ws, "user_ids"), "items": n_rows(ws, "item_ids")}
    stages: dict[str, Any] = {"read": read}  # every coded id occurs in `raw`
    table, n_dup = dedupe(ws, "raw", ds.dedupe)
    # a dedupe keeps one row of every pair: no user or item disappears
    stages["dedupe"] = {"rule": ds.dedupe, "removed": n_dup, **read, "rows": read["rows"] - n_dup}
    if ds.image_only:
        if catalogue is None:  # validate() refuses image_only without meta
            raise ConfigError("image_only: needs `meta` (the catalogue gives the image URLs)")
        register_catalogue(ws, catalogue)
        table, removed = image_filter(ws, table)
        stages["image_filter"] = {**removed, **counts(ws, table)}
    settings = ds.split_settings()
    table, kstats = kcore(
        ws, table, settings.user_kcore, settings.item_kcore, passes=ds.kcore_passes, order=ds.kcore_order
    )
    stages["kcore"] = kstats.to_dict()
    if n_rows(ws, table) == 0:
        raise ConfigError(
            f"no interactions left after filtering (stages: {stages}); lower the k-core or drop image_only"
        )
    return table, stages, filtering_record(ds)
