"""Metrics on subsets, reported beside the overall figure.

- **Cold-start items**: relevant items of the evaluated part that have no training interaction
  (with any user). The *same* top-K lists (ranked over the whole catalogue) are scored against
  only those relevant items; users with no cold relevant item are excluded and counted.
- **User activity buckets**: users grouped by their number of training interactions, with fixed
  edges (``[a, b)`` bins, the last one open) or quantile edges over the evaluated users; the
  per-user values of the overall evaluation are averaged within each bucket.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark.evaluation.evaluator import EvalResult, evaluate_topk
from benchmark.split import Split

__all__ = ["cold_items", "cold_start_result", "activity_buckets", "subset_metrics"]


def cold_items(split: Split, part: str = "test") -> np.ndarray:
    """Dense ids of items in ``part`` with no training interaction (sorted)."""
    in_part = np.unique(split.part(part)["item_id"].to_numpy())
    return np.setdiff1d(in_part, split.train["item_id"].to_numpy())


def cold_start_result(result: EvalResult, split: Split) -> EvalResult:
    """Per-user metrics of ``result``'s top-K lists against cold-start relevant items only.

    Needs ``evaluate(..., keep_topk=True)``. ``n_excluded`` counts the evaluated users without any
    cold relevant item.
    """
    if result.topk is None or result.part is None:
        raise ValueError("cold-start metrics need the top-K lists: evaluate(..., keep_topk=True)")
    part = split.part(result.part)
    cold = cold_items(split, result.part)
    users = result.per_user["user_id"].to_numpy()
    rel = part.loc[part["item_id"].isin(cold) & part["user_id"].isin(users), ["user_id", "item_id"]]
    rel = rel.rename(columns={"user_id": "user", "item_id": "item"}).astype(object)
    have = set(rel["user"])
    keep = np.array([u in have for u in users], dtype=bool)
    sub = evaluate_topk(
        result.topk[keep].astype(np.int64),
        rel,
        result.ks,
        result.metrics,
        users=list(users[keep]),
        n_items=split.n_items,
    )
    sub.n_excluded = int((~keep).sum())
    sub.part = result.part
    sub.info = {"subset": "cold_items", "n_cold_items": int(len(cold))}
    return sub


def activity_buckets(
    split: Split, users: np.ndarray, edges: Sequence[int] | None = None, n_buckets: int = 4
) -> pd.Categorical:
    """Bucket per user by training-interaction count: ``[a, b)`` bins from fixed ``edges`` or
    ``n_buckets`` quantiles of the given users' counts; the categories are ordered low to high."""
    counts = split.train.groupby("user_id").size().reindex(np.arange(split.n_users), fill_value=0).to_numpy()
    c = counts[np.asarray(users, dtype=np.int64)]
    lowest = int(c.min()) if len(c) else 0
    if edges is None:
        if n_buckets < 1:
            raise ValueError(f"n_buckets must be >= 1, got {n_buckets}")
        qs = np.quantile(c, np.linspace(0, 1, n_buckets + 1)[1:-1]) if len(c) else []
        edges = [int(np.ceil(q)) for q in qs]
    bounds = sorted({int(e) for e in edges if int(e) > lowest})
    lows = [lowest] + bounds
    labels = [f"[{lo}, {hi})" for lo, hi in zip(lows, bounds)] + [f"[{lows[-1]}, inf)"]
    idx = np.searchsorted(np.asarray(bounds, dtype=np.int64), c, side="right")
    return pd.Categorical.from_codes(idx, categories=pd.Index(labels), ordered=True)


def subset_metrics(
    result: EvalResult,
    split: Split,
    *,
    activity_edges: Sequence[int] | None = None,
    n_activity_buckets: int = 4,
    cold_start: bool = True,
) -> pd.DataFrame:
    """One row per subset — ``all``; ``cold_items`` (when the top-K lists were kept); one
    ``activity [a, b)`` row per bucket (low to high) — with ``subset, n_users, n_excluded`` and the
    mean of every metric column. ``n_excluded`` is not defined per activity bucket (NaN)."""
    cols = result.columns
    rows = [{"subset": "all", "n_users": result.n_users, "n_excluded": result.n_excluded, **result.means()}]
    if cold_start and result.topk is not None:
        cold = cold_start_result(result, split)
        rows.append({"subset": "cold_items", "n_users": cold.n_users, "n_excluded": cold.n_excluded, **cold.means()})
    buckets = activity_buckets(split, result.per_user["user_id"].to_numpy(), activity_edges, n_activity_buckets)
    for code, label in enumerate(buckets.categories):
        group = result.per_user[buckets.codes == code]
        rows.append(
            {
                "subset": f"activity {label}",
                "n_users": len(group),
                "n_excluded": np.nan,
                **{c: (float(group[c].mean()) if len(group) else np.nan) for c in cols},
            }
        )
    return pd.DataFrame(rows, columns=["subset", "n_users", "n_excluded", *cols])
