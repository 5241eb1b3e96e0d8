"""Health checks: no silently untrained or broken model in a leaderboard.

Run on a finished run's unit records (:mod:`benchmark.runner.health` gathers the inputs), each
check gives warnings — a marker on the model's leaderboard row, a list under the table,
``health.json`` and ``provenance.json`` — never errors, unless the run is strict
(``health.strict`` or ``run --strict-health``):

=========================  ===========================================================================
``early_stop``             a trained model selected epoch ≤ ``early_epoch`` (2), or stopped at its
                           first patience window (best at the first validation check, never improved)
``not_above_reference``    its validation metric is not above the random and the popularity
                           baselines' (the run computes both whenever it has a trained model, listed
                           or not; :data:`REFERENCE_MODELS`)
``feature_coverage``       a feature it uses covers fewer than ``coverage_floor`` of the items
``thin_validation``        it selects on validation (trained or tuned) and validation has fewer than
                           ``min_valid_users`` users; the message says how noisy selection is (the
                           standard error of the validation metric)
=========================  ===========================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmark.errors import BenchError, ConfigError

HEALTH_CHECKS: tuple[str, ...] = ("early_stop", "not_above_reference", "feature_coverage", "thin_validation")
#: the registered models every trained model must beat on validation
REFERENCE_MODELS: tuple[str, ...] = ("random", "popularity")


class HealthError(BenchError, RuntimeError):
    """A strict run (``--strict-health``) with health warnings."""


@dataclass
class HealthConfig:
    """Thresholds of the checks (module docstring); ``metric``: the validation metric compared
    with the references (default: the search's metric, else ``recall@20``)."""

    strict: bool = False
    early_epoch: int = 2
    coverage_floor: float = 0.9
    min_valid_users: int = 1000
    metric: str | None = None

    def validate(self, path: str = "health") -> None:
        p = f"{path}." if path else ""
        if not 0.0 <= self.coverage_floor <= 1.0:
            raise ConfigError(f"{p}coverage_floor: a share of items in [0, 1], got {self.coverage_floor}")
        if self.early_epoch < 0 or self.min_valid_users < 0:
            raise ConfigError(f"{p}early_epoch/min_valid_users: must be >= 0")


@dataclass
class HealthWarning:
    """One warning about one model (``check`` is one of :data:`HEALTH_CHECKS`)."""

    model: str
    check: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ModelEvidence:
    """What the checks read about one model: its unit records (one per seed), and the standard
    error of its validation metric (from its per-user validation values)."""

    name: str
    records: Sequence[Mapping[str, Any]]
    valid_se: float | None = None


def check_run(
    models: Sequence[ModelEvidence],
    references: Mapping[str, Mapping[str, float]],
    validation: Mapping[str, float],
    cfg: HealthConfig,
    metric: str,
) -> list[HealthWarning]:
    """Every warning for ``models``, model by model in the given order, checks in
    :data:`HEALTH_CHECKS` order. ``references``: reference model → validation means;
    ``validation``: ``n_users`` and ``items_per_user`` of the validation part."""
    out: list[HealthWarning] = []
    for m in models:
        out += early_stop(m, cfg)
        out += not_above_reference(m, references, metric)
        out += feature_coverage(m, cfg)
        out += thin_validation(m, validation, cfg, metric)
    return out


def early_stop(m: ModelEvidence, cfg: HealthConfig) -> list[HealthWarning]:
    """Selected epoch ≤ ``early_epoch``, or stopped at the first patience window (per seed)."""
    early, first_window = [], []
    for rec in m.records:
        info = rec.get("model_info") or {}
        history = info.get("valid_history") or []
        best = info.get("best_epoch")
        if not history or best is None:
            continue
        seed = rec.get("seed")
        if best <= cfg.early_epoch:
            early.append((seed, int(best)))
        train = info.get("train") or rec.get("train") or {}
        last = int(history[-1]["epoch"])
        stopped_early = last < int(train.get("max_epochs", last + 1))
        if stopped_early and best == history[0]["epoch"] and len(history) > 1:
            first_window.append((seed, int(best), last))
    out = []
    if early:
        out.append(
            HealthWarning(
                m.name,
                "early_stop",
                f"selected epoch {_per_seed(early)} (≤ {cfg.early_epoch}): barely trained",
                {"selected_epoch": {str(s): e for s, e in early}},
            )
        )
    if first_window:
        out.append(
            HealthWarning(
                m.name,
                "early_stop",
                "stopped at its first patience window (best at the first validation check, epoch "
                f"{_per_seed([(s, b) for s, b, _ in first_window])}; stopped at epoch "
                f"{_per_seed([(s, last) for s, _, last in first_window])})",
                {"first_check_best": {str(s): b for s, b, _ in first_window}},
            )
        )
    return out


def not_above_reference(
    m: ModelEvidence, references: Mapping[str, Mapping[str, float]], metric: str
) -> list[HealthWarning]:
    """Mean validation ``metric`` (over seeds) not above a reference model's."""
    if not references or any(rec.get("registered_model") in REFERENCE_MODELS for rec in m.records):
        return []
    values = [float(rec["valid"][metric]) for rec in m.records if metric in (rec.get("valid") or {})]
    if not values:
        return []
    mine = sum(values) / len(values)
    beaten = {name: float(ref[metric]) for name, ref in references.items() if metric in ref and mine <= ref[metric]}
    if not beaten:
        return []
    refs = ", ".join(f"{name} {v:.4f}" for name, v in beaten.items())
    return [
        HealthWarning(
            m.name,
            "not_above_reference",
            f"validation {metric} {mine:.4f} is not above {refs}",
            {"metric": metric, "value": mine, "references": beaten},
        )
    ]


def feature_coverage(m: ModelEvidence, cfg: HealthConfig) -> list[HealthWarning]:
    """Features the model reads that cover fewer than ``coverage_floor`` of the items."""
    low: dict[str, float] = {}
    for rec in m.records:
        for name, share in (rec.get("features_used") or {}).items():
            if share < cfg.coverage_floor:
                low[name] = float(share)
    return [
        HealthWarning(
            m.name,
            "feature_coverage",
            f"feature {name} covers {share:.1%} of the items (< {cfg.coverage_floor:.0%}); the rest score -inf "
            "or a fill value",
            {"feature": name, "coverage": share},
        )
        for name, share in low.items()
    ]


def thin_validation(
    m: ModelEvidence, validation: Mapping[str, float], cfg: HealthConfig, metric: str
) -> list[HealthWarning]:
    """A model that selects on validation (trained or tuned) when validation has few users."""
    selects = any(((rec.get("model_info") or {}).get("valid_history") or rec.get("search")) for rec in m.records)
    n = int(validation.get("n_users", 0))
    if not selects or not validation or n >= cfg.min_valid_users:
        return []
    per_user = float(validation.get("items_per_user", math.nan))
    noise = ""
    if m.valid_se is not None and math.isfinite(m.valid_se):
        noise = (
            f"; the standard error of its validation {metric} is {m.valid_se:.4f}, so settings closer than "
            f"≈ {2 * m.valid_se:.4f} (2 SE) are not told apart"
        )
    return [
        HealthWarning(
            m.name,
            "thin_validation",
            f"selected on a thin validation part: {n} users (< {cfg.min_valid_users}), {per_user:.2f} items each{noise}",
            {"n_users": n, "items_per_user": per_user, "standard_error": m.valid_se, "metric": metric},
        )
    ]


def _per_seed(pairs: Sequence[tuple[Any, int]]) -> str:
    """``3`` for one unit; ``1 (seeds 0, 1)`` when the seeds agree; ``1 (seed 0), 2 (seed 1)``."""
    if len(pairs) == 1:
        return str(pairs[0][1])
    by_value: dict[int, list[str]] = {}
    for seed, value in pairs:
        by_value.setdefault(value, []).append(str(seed))
    return ", ".join(f"{v} (seed{'s' if len(s) > 1 else ''} {', '.join(s)})" for v, s in by_value.items())
