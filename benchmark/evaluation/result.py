"""The result of an evaluation: per-user metrics and what is needed to report and export them.

Shared by both entry points (:func:`~benchmark.evaluation.evaluator.evaluate` and
:func:`~benchmark.evaluation.evaluator.evaluate_topk`), with the argument checks and the table
layout they have in common.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.evaluation import metrics as M

__all__ = ["EvalResult", "check_ks", "metric_frame"]


@dataclass
class EvalResult:
    """Per-user metrics of one model on one part, plus what is needed to report and export them."""

    per_user: pd.DataFrame
    """``user_id`` + one float64 column per ``metric@k``, one row per evaluated user."""
    ks: tuple[int, ...]
    metrics: tuple[str, ...]
    n_users: int
    """Users evaluated (rows of ``per_user``)."""
    n_excluded: int
    """Users left out because they have no relevant item in the evaluated part."""
    coverage: dict[int, float] = field(default_factory=dict)
    """Item coverage@K per K (fraction of the catalogue in any user's top K); empty if unknown."""
    n_relevant: np.ndarray | None = None
    """Relevant items per evaluated user (aligned with ``per_user``)."""
    n_missing: int = 0
    """Evaluated users the model/run gave no list for (they score 0; :func:`evaluate_topk`)."""
    part: str | None = None
    topk: np.ndarray | None = None
    """int32 ``[n_users × max(ks)]`` recommended dense item ids (``-1`` = none), when kept."""
    topk_scores: np.ndarray | None = None
    user_labels: np.ndarray | None = None
    """Original user id per dense user id (for export)."""
    item_labels: np.ndarray | None = None
    """Original item id per dense item id (for export)."""
    info: dict[str, Any] = field(default_factory=dict)
    run_metrics: dict[str, float] = field(default_factory=dict)
    """Per-run beyond-accuracy values (``gini@10``, ``tail_coverage@10``, …), when asked for."""

    @property
    def columns(self) -> list[str]:
        """The metric column labels, ``metric@k`` (K-major order)."""
        return [c for c in self.per_user.columns if c != "user_id"]

    def means(self) -> dict[str, float]:
        """Mean of every metric column over the evaluated users (0 users → NaN)."""
        return {c: (float(self.per_user[c].mean()) if self.n_users else float("nan")) for c in self.columns}

    def to_trec_run(self, path: str | Path, tag: str = "run") -> Path:
        """Write the kept top-K lists as a TREC run (``user Q0 item rank score tag``), original ids.

        Needs ``evaluate(..., keep_topk=True)``. Scores are written with 9 significant digits, so
        float32 scores (and their ties) survive the round trip; a reader re-ranks ties by item id
        *string*, which is our dense-id order whenever dense ids follow sorted original ids (the
        default of :meth:`Split.from_parts`). Import it back with
        :func:`benchmark.evaluation.trec.read_run`; the qrels come from
        :func:`benchmark.evaluation.trec.write_qrels`.
        """
        if self.topk is None:
            raise ValueError("this result kept no top-K lists; evaluate with keep_topk=True to export a run")
        from benchmark.evaluation.trec import write_run

        users = self.per_user["user_id"].to_numpy()
        if self.user_labels is not None:
            users = self.user_labels[users]
        return write_run(path, users, self.topk, self.topk_scores, tag=tag, item_labels=self.item_labels)


def check_ks(
    ks: Iterable[int], metrics: Iterable[str], allowed: Sequence[str] = M.METRIC_NAMES
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Cut-offs sorted and deduplicated, metric names deduplicated in order; both checked
    (``allowed``: the names this entry point computes)."""
    ks_t = tuple(sorted({int(k) for k in ks}))
    if not ks_t or ks_t[0] < 1:
        raise ValueError(f"ks must be positive cut-offs, got {ks!r}")
    ms = tuple(dict.fromkeys(metrics))
    bad = [m for m in ms if m not in allowed]
    if bad or not ms:
        raise ValueError(f"unknown metrics {bad or ms}; allowed: {', '.join(allowed)}")
    return ks_t, ms


def metric_frame(
    user_ids: np.ndarray, cols: list[dict[str, np.ndarray]], ks: Sequence[int], metrics: Sequence[str]
) -> pd.DataFrame:
    """``user_id`` + one column per ``metric@k`` (K-major), from per-batch column dicts."""
    data: dict[str, Any] = {"user_id": user_ids}
    for k in ks:
        for m in metrics:
            label = f"{m}@{k}"
            data[label] = np.concatenate([c[label] for c in cols]) if cols else np.zeros(0, dtype=np.float64)
    return pd.DataFrame(data)
