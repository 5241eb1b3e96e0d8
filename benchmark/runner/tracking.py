"""Experiment tracking: Weights & Biases (offline unless an API key is configured), CSV,
TensorBoard or nothing — one object per (model, seed) unit, plus one summary run.

W&B never blocks or fails a run: without an API key (``WANDB_API_KEY`` or a ``~/.netrc``
entry) it runs with ``mode="offline"`` and writes under ``<run dir>/wandb``; any W&B error
is logged as a warning and tracking continues as a no-op.

Unit runs carry config W&B can group and filter by (model, params, seed, split fingerprint,
dataset, protocol, commit) and the experiment's tags. The summary run (and ``claims``'s run)
has a fixed id per run directory (:func:`fixed_run_id`): a resumed run replaces its offline
directory (online: resumes the same W&B run) instead of adding a second one. Its tables and
summary values come from :mod:`benchmark.runner.tracked`, read from the run's own files.
"""

from __future__ import annotations

import hashlib
import logging
import netrc
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

log = logging.getLogger(__name__)

#: the trackers a config's ``logging.logger`` (or ``run --logger``) may name
LOGGERS: tuple[str, ...] = ("none", "csv", "tensorboard", "wandb", "mlflow")


def wandb_mode() -> str:
    """``online`` only when a key is configured (or WANDB_MODE says so); otherwise ``offline``."""
    explicit = os.environ.get("WANDB_MODE")
    if explicit:
        return explicit
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    try:
        rc = netrc.netrc()
        if rc.authenticators("api.wandb.ai"):
            return "online"
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        pass
    return "offline"


class Tracker:
    """Per-unit tracking handle; every method is a no-op for ``logger: none``."""

    def __init__(
        self,
        kind: str,
        run_dir: Path,
        project: str,
        entity: str | None,
        group: str,
        name: str,
        config: Mapping[str, Any],
        job_type: str = "train",
        tags: list[str] | None = None,
        run_id: str | None = None,
        mlflow_uri: str | None = None,
    ) -> None:
        self.kind = kind
        self.run_dir = Path(run_dir)
        self.name = name
        self._wandb_run: Any = None
        self._mlflow: Any = None
        self._lightning_logger: Any = None
        self._csv_rows: list[dict[str, Any]] = []
        if kind == "wandb":
            try:
                import wandb

                mode = wandb_mode()
                if run_id is not None and mode == "offline":
                    replace_offline_run(self.run_dir / "wandb", run_id)
                self._wandb_run = wandb.init(
                    project=project,
                    entity=entity,
                    group=group,
                    name=name,
                    job_type=job_type,
                    config=dict(config),
                    tags=list(tags or []),
                    dir=str(self.run_dir),
                    mode=cast(Any, mode),  # a str from the environment; W&B checks it
                    reinit="create_new",
                    settings=wandb.Settings(silent=True, console="off"),
                    id=run_id,
                    resume="allow" if run_id is not None else None,
                )
            except Exception as exc:  # tracking must never fail the benchmark
                log.warning("W&B init failed (%s); continuing without W&B for %s", exc, name)
                self.kind = "none"
        elif kind == "mlflow":
            try:
                from benchmark.runner.mlflow_tracking import MlflowRun, default_uri

                uri = mlflow_uri or default_uri(self.run_dir)
                self._mlflow = MlflowRun(uri, group, name, config, job_type, list(tags or []), run_id, project)
            except Exception as exc:
                log.warning("MLflow init failed (%s); continuing without MLflow for %s", exc, name)
                self.kind = "none"

    # -- Lightning: trainable models log their curves through this
    def lightning_logger(self) -> Any:
        if self._lightning_logger is not None:
            return self._lightning_logger
        try:
            if self.kind == "wandb" and self._wandb_run is not None:
                from pytorch_lightning.loggers import WandbLogger

                self._lightning_logger = WandbLogger(experiment=self._wandb_run)
            elif self.kind == "mlflow" and self._mlflow is not None:
                self._lightning_logger = self._mlflow.lightning_logger()
            elif self.kind == "csv":
                from pytorch_lightning.loggers import CSVLogger

                self._lightning_logger = CSVLogger(str(self.run_dir / "logs"), name=self.name)
            elif self.kind == "tensorboard":
                from pytorch_lightning.loggers import TensorBoardLogger

                self._lightning_logger = TensorBoardLogger(str(self.run_dir / "logs"), name=self.name)
        except Exception as exc:
            log.warning("could not create a Lightning logger (%s)", exc)
        return self._lightning_logger

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self.kind == "wandb" and self._wandb_run is not None:
            try:
                self._wandb_run.log(dict(metrics), step=step)
                self._wandb_run.summary.update(dict(metrics))
            except Exception as exc:
                log.warning("W&B log failed: %s", exc)
        elif self.kind == "mlflow":
            self._mlflow_call("log_metrics", dict(metrics), step)
        elif self.kind in ("csv", "tensorboard"):
            lg = self.lightning_logger()
            if lg is not None:
                lg.log_metrics(dict(metrics), step=step or 0)

    def log_table(self, key: str, columns: list[Any], rows: list[Any]) -> None:
        if self.kind == "wandb" and self._wandb_run is not None:
            try:
                import wandb

                self._wandb_run.log({key: wandb.Table(columns=columns, data=rows)})
            except Exception as exc:
                log.warning("W&B table failed: %s", exc)
        elif self.kind == "mlflow":
            self._mlflow_call("log_table", key, columns, rows)

    def log_summary(self, values: Mapping[str, Any]) -> None:
        """Values for the run's summary only (no history row): W&B's run table, charts, filters."""
        if self.kind == "wandb" and self._wandb_run is not None:
            try:
                self._wandb_run.summary.update(dict(values))
            except Exception as exc:
                log.warning("W&B summary failed: %s", exc)
        elif self.kind == "mlflow":
            self._mlflow_call("log_summary", dict(values))

    def log_image(self, key: str, path: Path) -> None:
        if self.kind == "wandb" and self._wandb_run is not None and Path(path).exists():
            try:
                import wandb

                self._wandb_run.log({key: wandb.Image(str(path))})
            except Exception as exc:
                log.warning("W&B image failed: %s", exc)
        elif self.kind == "mlflow":
            self._mlflow_call("log_file", Path(path), str(Path(key).parent))

    def log_artifact(self, name: str, kind: str, paths: list[Path]) -> None:
        if self.kind == "wandb" and self._wandb_run is not None:
            try:
                import wandb

                art = wandb.Artifact(name, type=kind)
                for p in paths:
                    p = Path(p)
                    if p.is_dir():
                        art.add_dir(str(p), name=p.name)
                    elif p.exists():
                        art.add_file(str(p))
                self._wandb_run.log_artifact(art)
            except Exception as exc:
                log.warning("W&B artifact failed: %s", exc)
        elif self.kind == "mlflow":
            for p in paths:
                self._mlflow_call("log_file", Path(p), kind)

    def _mlflow_call(self, method: str, *args: Any) -> None:
        """Call the MLflow run's ``method``; a failure is a warning, never the run's end."""
        if self._mlflow is None:
            return
        try:
            getattr(self._mlflow, method)(*args)
        except Exception as exc:
            log.warning("MLflow %s failed: %s", method, exc)

    def use_artifact(self, name: str) -> bool:
        """Link this run to an artifact another run logged (``claims`` → the ``results``). W&B
        cannot do it offline (the link needs the server): then nothing is done and ``False`` is
        returned — the caller records the artifact's name in the run's config instead."""
        if self.kind != "wandb" or self._wandb_run is None or self._wandb_run.offline:
            return False
        try:
            self._wandb_run.use_artifact(f"{name}:latest")
            return True
        except Exception as exc:
            log.warning("W&B use_artifact failed: %s", exc)
            return False

    def finish(self) -> None:
        if self._lightning_logger is not None and self.kind in ("csv", "tensorboard"):
            try:
                self._lightning_logger.finalize("success")
            except Exception:
                pass
        if self._wandb_run is not None:
            try:
                self._wandb_run.finish()
            except Exception as exc:
                log.warning("W&B finish failed: %s", exc)
            self._wandb_run = None
        if self._mlflow is not None:
            self._mlflow_call("finish")
            self._mlflow = None


#: the run directory's files the summary run uploads as the ``results`` artifact
RESULT_ARTIFACT_FILES = (
    "metrics.json",
    "statistics.json",
    "costs.json",
    "leaderboard.md",
    "leaderboard.csv",
    "per_user_metrics.parquet",
    "provenance.json",
    "config.resolved.yaml",
)


def fixed_run_id(run_dir: Path, job_type: str, *parts: str) -> str:
    """The id of a run directory's ``summary`` (or ``claims``) run: the same on every resume, so
    the tracker replaces or resumes that run rather than adding one."""
    run_dir = Path(run_dir)
    key = "/".join([run_dir.parent.name, run_dir.name, job_type, *parts])
    return f"{job_type}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def replace_offline_run(wandb_dir: Path, run_id: str) -> None:
    """Remove earlier offline directories of run ``run_id`` (``offline-run-<time>-<id>``): the
    new one replaces them, so ``wandb sync`` uploads the run once."""
    if not wandb_dir.is_dir():
        return
    for old in wandb_dir.glob(f"offline-run-*-{run_id}"):
        if old.is_dir():
            shutil.rmtree(old, ignore_errors=True)


def log_summary_run(
    tracker: Tracker,
    run_dir: Path,
    fingerprint: str,
    split_dir: Path,
    experiment: str,
) -> None:
    """The summary run: every table of :func:`benchmark.runner.tracked.run_tables` (leaderboard
    with markers and seed spread, statistics, subsets, costs, search traces, health warnings),
    the per-model summary values, the plots, the split and results artifacts."""
    from benchmark.runner.tracked import run_tables

    tables = run_tables(run_dir)
    for key, (columns, rows) in tables.tables.items():
        tracker.log_table(key, columns, rows)
    tracker.log_summary(tables.summary)
    for png in sorted((run_dir / "plots").glob("*.png")):
        tracker.log_image(f"plots/{png.stem}", png)
    tracker.log_artifact(f"split-{fingerprint[:12]}", "split", [split_dir])
    tracker.log_artifact(results_artifact(experiment), "results", [run_dir / n for n in RESULT_ARTIFACT_FILES])


def results_artifact(experiment: str) -> str:
    """The name of a run's ``results`` artifact (W&B artifact names: letters, digits, ``-_.``)."""
    return "results-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in experiment)


def log_claims_run(report: Mapping[str, Any], results: Any, kind: str | None = None) -> None:
    """``claims``' W&B run (job type ``claims``) in the first run's project and group: the verdict
    table (:func:`benchmark.runner.tracked.claims_table`), verdict counts as summary values, linked
    to that run's ``results`` artifact (online; offline its name is in the config). A fixed id per
    (run directory, published table, family): re-checking the claims replaces the run."""
    from benchmark.runner.tracked import claims_summary, claims_table

    lc = results.config.logging
    kind = kind or lc.logger
    if kind not in ("wandb", "mlflow"):
        return
    experiment = results.config.experiment
    family = str(report.get("family", {}).get("id", "claims"))
    published = str(report.get("published", ""))
    config = {
        "experiment": experiment,
        "split_fingerprint": results.fingerprint,
        "published": published,
        "family": family,
        "results_artifact": results_artifact(experiment),
        "run_dirs": [r["run_dir"] for r in report.get("runs", [])],
    }
    tracker = Tracker(
        kind,
        Path(results.run_dir),
        lc.project,
        lc.entity,
        group=experiment,
        name="claims",
        config=config,
        job_type="claims",
        tags=list(dict.fromkeys([experiment, "claims", *lc.tags])),
        run_id=fixed_run_id(Path(results.run_dir), "claims", published, family),
        mlflow_uri=lc.mlflow_uri,
    )
    try:
        tracker.use_artifact(results_artifact(experiment))
        columns, rows = claims_table(report)
        tracker.log_table("claims", columns, rows)
        tracker.log_summary(claims_summary(report))
    finally:
        tracker.finish()
