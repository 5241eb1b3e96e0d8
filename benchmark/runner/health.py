"""The runner's side of the health checks (:mod:`benchmark.health`): the reference baselines it
computes on validation, and the evidence it reads back from a run directory.

``references.json`` (written by the units stage; validation only, the test part is not read)::

    {"metric_columns": [...], "valid": {"random": {"recall@20": …}, "popularity": {…}},
     "validation": {"n_users": 453, "n_interactions": 457, "items_per_user": 1.01},
     "unavailable": []}

``health.json`` (written by the summary stage): ``{"metric": …, "warnings": [HealthWarning…]}``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from benchmark.health import REFERENCE_MODELS, HealthWarning, ModelEvidence, check_run
from benchmark.io import read_json, write_json
from benchmark.registry import MODELS
from benchmark.runner.rundir import UNITS

if TYPE_CHECKING:
    from benchmark.runner.config import ExperimentConfig
    from benchmark.runner.results import RunResults
    from benchmark.runner.stages.units import UnitInputs

log = logging.getLogger(__name__)

REFERENCES = "references.json"
HEALTH = "health.json"


def needs_references(models: Sequence[Any]) -> bool:
    """Whether the run has a trained model (one that takes ``train``), so references are computed."""
    return any(MODELS.accepts(m.model, "train") for m in models if m.model in MODELS)


def write_references(inputs: UnitInputs, run_dir: Path) -> dict[str, Any]:
    """Validation means of :data:`REFERENCE_MODELS` and the validation part's size
    (``references.json``; read back if it exists)."""
    from benchmark.registry import create_model
    from benchmark.runner.search import valid_users

    path = Path(run_dir) / REFERENCES
    if path.is_file():
        return dict(read_json(path))
    users = valid_users(inputs)
    out: dict[str, Any] = {"valid": {}, "unavailable": [], "validation": validation_size(inputs.split, users)}
    for name in REFERENCE_MODELS:
        if name not in MODELS:
            out["unavailable"].append(name)
            continue
        model = create_model(name).fit(inputs.split, inputs.feats)
        out["valid"][name] = _valid_means(model, inputs, users)
    write_json(path, out)
    return out


def _valid_means(model: Any, inputs: UnitInputs, users: Any) -> dict[str, float]:
    """Means of the run's ks and accuracy metrics (recall if it has none) on validation, for ``users``."""
    from benchmark.evaluation import evaluate
    from benchmark.evaluation.metrics import METRIC_NAMES

    ev = inputs.evaluation
    res = evaluate(
        model,
        inputs.split,
        part="valid",
        ks=tuple(ev.ks),
        # the accuracy metrics a model is compared on (beyond-accuracy ones are not "above random")
        metrics=tuple(m for m in ev.metrics if m in METRIC_NAMES) or ("recall",),
        users=users,
        batch_size=ev.batch_size,
        device=ev.device,
        progress=False,
    )
    return {k: float(v) for k, v in res.means().items()}


def validation_size(split: Any, users: Any = None) -> dict[str, float]:
    """Users with a validation item, validation interactions, and items per such user."""
    valid = split.valid
    if users is not None:
        valid = valid[valid["user_id"].isin(users)]
    n_users = int(valid["user_id"].nunique())
    n = int(len(valid))
    return {"n_users": n_users, "n_interactions": n, "items_per_user": (n / n_users) if n_users else math.nan}


def health_metric(cfg: ExperimentConfig, columns: Sequence[str]) -> str:
    """The validation metric the checks compare: ``health.metric``, else the search's, else
    ``recall@20``, else the first recall column (or the first column) the run has."""
    for choice in (cfg.health.metric, cfg.search.metric if cfg.search else None, "recall@20"):
        if choice and choice in columns:
            return str(choice)
    return next((c for c in columns if c.startswith("recall@")), columns[0] if columns else "recall@20")


def run_health(results: RunResults) -> tuple[str, list[HealthWarning]]:
    """The health warnings of a finished run (and the metric they compare)."""
    cfg = results.config
    refs = read_json(results.run_dir / REFERENCES) if (results.run_dir / REFERENCES).is_file() else {}
    columns = list(next(iter(refs.get("valid", {}).values()), {})) or _valid_columns(results)
    metric = health_metric(cfg, columns)
    evidence = [
        ModelEvidence(
            m, [u.record for u in results.units[m]], _valid_se(results.run_dir, results.units[m][0].key, metric)
        )
        for m in results.models
    ]
    return metric, check_run(evidence, refs.get("valid", {}), refs.get("validation", {}), cfg.health, metric)


def write_health(run_dir: Path, metric: str, warnings: Sequence[HealthWarning]) -> None:
    write_json(Path(run_dir) / HEALTH, {"metric": metric, "warnings": [w.to_dict() for w in warnings]})


def read_health(run_dir: Path) -> list[HealthWarning]:
    """``health.json`` of a run (empty if it has none)."""
    path = Path(run_dir) / HEALTH
    if not path.is_file():
        return []
    return [HealthWarning(**w) for w in read_json(path).get("warnings", [])]


def _valid_columns(results: RunResults) -> list[str]:
    first = next(iter(results.units.values()))[0].record
    return list((first.get("valid") or {}).keys())


def _valid_se(run_dir: Path, key: str, metric: str) -> float | None:
    """Standard error of ``metric`` over the users of one unit's per-user validation values."""
    path = Path(run_dir) / UNITS / f"{key}.valid.parquet"
    if not path.is_file():
        return None
    values = pd.read_parquet(path, columns=None)
    if metric not in values.columns or len(values) < 2:
        return None
    col = values[metric].astype(float)
    return float(col.std(ddof=1) / math.sqrt(len(col)))


def marks_from(warnings: Sequence[HealthWarning]) -> Mapping[str, list[str]]:
    """Model → the checks it failed, in order."""
    out: dict[str, list[str]] = {}
    for w in warnings:
        out.setdefault(w.model, [])
        if w.check not in out[w.model]:
            out[w.model].append(w.check)
    return out
