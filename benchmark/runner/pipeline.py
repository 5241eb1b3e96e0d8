"""``vlm4rec-bench run``: dataset → split → features → models × seeds → per-user metrics →
statistics → leaderboard, resumable unit by unit.

:func:`run_experiment` runs the stages of :mod:`benchmark.runner.stages` in order, each on its
own config section; the run directory's layout is described in :mod:`benchmark.runner.rundir`.

Resuming: a re-run of the same resolved config reuses the latest run directory of that
config and skips every unit whose files exist; ``force=True`` starts a new directory and
recomputes every feature set (a describer's cache keeps its finished descriptions and retries
failed ones). Units of different code versions (commit, dirty state, package versions) are never
mixed silently: the resume refuses unless ``allow_mixed=True``, and then ``provenance.json``
(``unit_code_versions``) and the leaderboard caption say so. Nothing in
``metrics.json``/``statistics.json``/the leaderboard depends on wall time, so two runs with the
same seeds give identical files.

Concurrent runs of one config share the work: the run directory is chosen under a lock on the
experiment's results folder (so the second run resumes the first's directory), each unit is
claimed with a lock while it is computed (the other process skips it, then waits for it before
the summary), and the summary is written under a lock. Everything the run logs, and every
Python warning, goes to ``run.log`` in the run directory.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.io import file_lock, write_json
from benchmark.runner.config import ExperimentConfig
from benchmark.runner.costs import write_costs
from benchmark.runner.provenance import provenance_record, written_by
from benchmark.runner.results import RunResults
from benchmark.runner.rundir import SPLIT_INFO, StageTimer, resolve_run_dir, write_resolved_config
from benchmark.runner.runlog import run_log
from benchmark.runner.stages.dataset import build_split
from benchmark.runner.stages.features import build_features, check_feature_coverage
from benchmark.runner.stages.summary import summarise
from benchmark.runner.stages.units import UnitInputs, run_units
from benchmark.runner.tracking import Tracker, fixed_run_id, log_summary_run
from benchmark.split import Split

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_dir: Path
    split: Split
    means: dict[str, dict[str, float]]
    tests: list[dict[str, Any]]
    units_run: list[str] = field(default_factory=list)
    units_skipped: list[str] = field(default_factory=list)
    report_errors: list[str] = field(default_factory=list)
    """Report steps that failed (their files are missing; the units and provenance are written)."""


def run_experiment(
    cfg: ExperimentConfig,
    *,
    force: bool = False,
    run_dir: str | Path | None = None,
    logger_kind: str | None = None,
    allow_mixed: bool = False,
) -> RunResult:
    """Run every stage of ``cfg``; resumable (see module docstring). A resume that would mix
    units of different code versions raises :class:`~benchmark.errors.IntegrityError` unless
    ``allow_mixed`` (then ``provenance.json`` and the leaderboard caption record the mixture)."""
    with file_lock(Path(cfg.results_dir) / cfg.experiment / ".run-dir.lock"):  # concurrent runs pick one directory
        rdir = resolve_run_dir(cfg, force=force, run_dir=run_dir)
        write_resolved_config(rdir, cfg)
    with run_log(rdir):
        log.info("run directory: %s", rdir)
        return _run_stages(cfg, rdir, force=force, logger_kind=logger_kind, allow_mixed=allow_mixed)


def _run_stages(
    cfg: ExperimentConfig, rdir: Path, *, force: bool, logger_kind: str | None, allow_mixed: bool
) -> RunResult:
    timer = StageTimer()
    t_start = time.perf_counter()
    kind = logger_kind or cfg.logging.logger
    with timer("dataset"):
        data = build_split(cfg.dataset, cfg.cache_dir)
    split = data.split
    write_json(rdir / SPLIT_INFO, data.split_info())
    with timer("features"):
        feats = build_features(
            cfg.features,
            split,
            data.split_dir,
            Path(cfg.cache_dir) / cfg.dataset.name / "cache",
            data.raw_dir,
            cfg.evaluation.device,
            cfg.logging.energy,
            force=force,
        )
    check_feature_coverage(cfg.models, feats, cfg.evaluation.min_feature_coverage)

    version = written_by()
    run_config = tracking_config(cfg, split, version)

    def tracker(name: str, config: Mapping[str, Any], job_type: str = "train", run_id: str | None = None) -> Tracker:
        lc = cfg.logging
        return Tracker(
            kind,
            rdir,
            lc.project,
            lc.entity,
            group=cfg.experiment,
            name=name,
            config={**run_config, **config},
            job_type=job_type,
            tags=tracking_tags(cfg),
            run_id=run_id,
            mlflow_uri=lc.mlflow_uri,
        )

    with timer("models"):
        inputs = UnitInputs(split, feats, cfg.evaluation, rdir, version, allow_mixed, cfg.logging.energy)
        ran, done = run_units(cfg.models, cfg.seeds, cfg.train, inputs, tracker)
    summary = None
    results: RunResults | None = None
    errors: list[str] = []
    with timer("statistics"), file_lock(rdir / ".summary.lock"):
        try:
            warnings = [f"features {n}: {w}" for n, f in feats.items() for w in f.provenance.get("warnings", [])]
            results = RunResults.load(rdir)
            summary = summarise(results, cfg.statistics, cfg.metric_columns, warnings)
            errors = summary.errors
        except Exception as exc:  # the units are on disk: provenance.json must still be written
            errors = [f"summary: {type(exc).__name__}: {exc}"]
            log.error("the summary failed (%s: %s); the units are kept in %s", type(exc).__name__, exc, rdir)
            logging.getLogger("vlm4rec_bench.details").info("summary failed", exc_info=True)

    provenance = provenance_record(cfg, data, feats, version)
    provenance["wall_seconds"] = {k: round(v, 3) for k, v in timer.seconds.items()} | {
        "total": round(time.perf_counter() - t_start, 3)
    }
    provenance["units_run"], provenance["units_skipped_as_done"] = ran, done
    provenance["report_errors"] = errors
    # which code wrote which unit: one group unless a resume mixed versions (allow_mixed)
    if results is not None:
        provenance["unit_code_versions"] = results.code_versions()
        provenance["mixed_code_versions"] = len(provenance["unit_code_versions"]) > 1
    write_json(rdir / "provenance.json", provenance)
    if results is not None:
        results.provenance = provenance
        write_costs(rdir, results)  # needs the features' costs, which provenance.json holds
    if summary is None:
        return RunResult(rdir, split, {}, [], ran, done, errors)

    summary_tracker = tracker("summary", {}, "summary", fixed_run_id(rdir, "summary"))
    try:
        log_summary_run(summary_tracker, rdir, split.fingerprint, data.split_dir, cfg.experiment)
    finally:
        summary_tracker.finish()
    return RunResult(rdir, split, summary.means, summary.tests, ran, done, errors)


def tracking_config(cfg: ExperimentConfig, split: Split, version: Mapping[str, Any]) -> dict[str, Any]:
    """What every tracked run of this experiment records as config (units add model, params,
    seed): the experiment, dataset, protocol, split fingerprint and the code's commit."""
    from benchmark.runner.rundir import config_hash

    git = version.get("git") or {}
    return {
        "experiment": cfg.experiment,
        "dataset": cfg.dataset.name,
        "protocol": split.protocol,
        "split_fingerprint": split.fingerprint,
        "commit": git.get("commit"),
        "dirty": git.get("dirty"),
        "config_hash": config_hash(cfg),
        "vlm4rec_bench_version": version.get("vlm4rec_bench_version"),
    }


def tracking_tags(cfg: ExperimentConfig) -> list[str]:
    """The experiment's tags: its name, the dataset and the protocol (or source), plus
    ``logging.tags``."""
    ds = cfg.dataset
    base = [cfg.experiment, ds.name, ds.protocol or ds.source]
    return list(dict.fromkeys(str(t) for t in base + list(cfg.logging.tags) if t))
