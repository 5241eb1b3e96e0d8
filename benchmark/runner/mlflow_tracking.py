"""MLflow as an alternative to W&B (``logging.logger: mlflow``): the same runs, to a local store.

Each tracked run (a (model, seed) unit, the summary, ``claims``) is one MLflow run in the MLflow
experiment named after the benchmark's experiment, with the run's config as params (nested values
flattened with dots, long ones cut to MLflow's limit), its tags (plus ``job_type``, ``group`` and
``project``), metrics per unit, training curves through Lightning's ``MLFlowLogger`` attached to
the same run, tables as JSON artifacts under ``tables/`` (``{"columns", "data"}``, read back with
:func:`read_table`), summary values as metrics and as ``summary.json``, plots and result files
as artifacts. The summary and claims runs carry a fixed id in the tag ``vlm4rec.fixed_id``: a
resumed run deletes the earlier one before logging again, so the store holds one.

Store: ``logging.mlflow_uri``, default the file store ``<results_dir>/mlruns`` (browse it with
``mlflow ui --backend-store-uri results/mlruns``). MLflow 3 keeps its file store in maintenance
mode behind ``MLFLOW_ALLOW_FILE_STORE``, which this module sets for a ``file:`` store it opens; a
``sqlite:///…`` URI uses a database instead (slower to create). MLflow's metric names allow
letters, digits, ``_ - . / `` and space: ``recall@20`` is logged as ``recall_at_20``
(:func:`metric_key`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FIXED_ID_TAG = "vlm4rec.fixed_id"
_BAD = re.compile(r"[^A-Za-z0-9_\-. /]")
_MAX_PARAM = 6000  # MLflow's limit on a param value's length


def metric_key(key: str) -> str:
    """A metric name MLflow accepts: ``@`` → ``_at_``, other characters it refuses → ``_``."""
    return _BAD.sub("_", key.replace("@", "_at_"))


def default_uri(run_dir: Path) -> str:
    """``file:<results_dir>/mlruns`` for a run directory ``<results_dir>/<experiment>/<stamp>``."""
    return (Path(run_dir).resolve().parent.parent / "mlruns").as_uri()


def client_for(uri: str) -> Any:
    """An ``MlflowClient`` on ``uri`` (a ``file:`` store is allowed explicitly: see module doc)."""
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config → ``{"train.max_epochs": "2", …}`` as MLflow params (strings)."""
    out: dict[str, str] = {}
    for k, v in config.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, f"{key}."))
        else:
            text = v if isinstance(v, str) else json.dumps(v, default=str)
            out[metric_key(key)] = text[:_MAX_PARAM]
    return out


class MlflowRun:
    """One MLflow run with the methods :class:`benchmark.runner.tracking.Tracker` delegates."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        name: str,
        config: Mapping[str, Any],
        job_type: str,
        tags: list[str],
        fixed_id: str | None = None,
        project: str = "",
    ) -> None:
        from mlflow.entities import Param

        self.uri = uri
        self.experiment = experiment
        self.client = client_for(uri)
        found = self.client.get_experiment_by_name(experiment)
        self.experiment_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
        if fixed_id is not None:  # a resume replaces the run that has this id
            for old in self.client.search_runs([self.experiment_id], f"tags.`{FIXED_ID_TAG}` = '{fixed_id}'"):
                self.client.delete_run(old.info.run_id)
        run_tags = {"job_type": job_type, "group": experiment, "project": project}
        run_tags.update({metric_key(f"tag.{t}"): "true" for t in tags})
        run_tags["tags"] = ",".join(tags)
        if fixed_id is not None:
            run_tags[FIXED_ID_TAG] = fixed_id
        run = self.client.create_run(self.experiment_id, run_name=name, tags=run_tags)
        self.run_id = run.info.run_id
        params = [Param(k, v) for k, v in flatten(config).items()]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i : i + 100])

    def lightning_logger(self) -> Any:
        """Lightning's ``MLFlowLogger`` on this run (metric names made valid, quietly)."""
        from pytorch_lightning.loggers import MLFlowLogger

        class _Logger(MLFlowLogger):
            def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
                super().log_metrics({metric_key(k): v for k, v in metrics.items()}, step)

        return _Logger(experiment_name=self.experiment, tracking_uri=self.uri, run_id=self.run_id)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for k, v in metrics.items():
            self.client.log_metric(self.run_id, metric_key(k), float(v), step=step or 0)

    def log_summary(self, values: Mapping[str, Any]) -> None:
        """Numbers and booleans as metrics (booleans 0/1); every value in ``summary.json``."""
        for k, v in values.items():
            if isinstance(v, (bool, int, float)) and v is not None:
                self.client.log_metric(self.run_id, metric_key(k), float(v))
        self.client.log_dict(self.run_id, dict(values), "summary.json")

    def log_table(self, key: str, columns: list[Any], rows: list[Any]) -> None:
        self.client.log_dict(self.run_id, {"columns": list(columns), "data": list(rows)}, f"tables/{key}.json")

    def log_file(self, path: Path, folder: str) -> None:
        p = Path(path)
        if p.is_dir():
            self.client.log_artifacts(self.run_id, str(p), f"{folder}/{p.name}")
        elif p.exists():
            self.client.log_artifact(self.run_id, str(p), folder)

    def finish(self) -> None:
        self.client.set_terminated(self.run_id)


def runs(uri: str, experiment: str, job_type: str | None = None) -> list[Any]:
    """The active runs of an MLflow experiment (optionally one job type), oldest first."""
    client = client_for(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    query = f"tags.job_type = '{job_type}'" if job_type else ""
    return sorted(client.search_runs([exp.experiment_id], query), key=lambda r: r.info.start_time)


def read_table(uri: str, run_id: str, key: str) -> dict[str, Any]:
    """A table logged with :meth:`MlflowRun.log_table`: ``{"columns", "data"}``."""
    from mlflow.artifacts import download_artifacts

    local = download_artifacts(run_id=run_id, artifact_path=f"tables/{key}.json", tracking_uri=uri)
    return json.loads(Path(local).read_text(encoding="utf-8"))
