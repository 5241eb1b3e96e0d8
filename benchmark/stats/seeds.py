"""Several seeds of one method: per-user averages for the paired test, spread for the report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

USER_COL = "user_id"


def aggregate_seeds(per_user_by_seed: Sequence[pd.DataFrame]) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """Average per-user metric values over seeds and report the spread of each metric's mean.

    Every table must hold the same users (``user_id``, no duplicates) and the same metric
    columns. The paired tests then run on the per-user averages, so a method is compared on
    what it does on average over seeds and not on one lucky seed.

    Returns:
        ``(per_user, spread)``: ``per_user`` has ``user_id`` (sorted) and the metric columns
        (first table's order), each the mean over seeds; ``spread[metric]`` holds ``mean``,
        ``std`` (sample SD, ddof=1, of the per-seed means; NaN with a single seed), ``min``,
        ``max`` and ``n_seeds``.

    Raises:
        ValueError: no tables, different users or metric columns between seeds, duplicate
            users, non-numeric or non-finite values.
    """
    frames = list(per_user_by_seed)
    if not frames:
        raise ValueError("aggregate_seeds needs at least one per-user table")
    if USER_COL not in frames[0].columns:
        raise ValueError(f"seed 0: no {USER_COL!r} column")
    metrics = [c for c in frames[0].columns if c != USER_COL]
    if not metrics:
        raise ValueError("seed 0: no metric columns")
    tables: list[pd.DataFrame] = []
    for i, df in enumerate(frames):
        tables.append(_seed_table(i, df, metrics, tables[0].index if tables else None))

    stack = np.stack([t.to_numpy(dtype=np.float64) for t in tables])  # [seeds × users × metrics]
    per_user = pd.DataFrame(stack.mean(axis=0), columns=metrics)
    per_user.insert(0, USER_COL, tables[0].index.to_numpy())
    return per_user, _spread(stack.mean(axis=1), metrics)


def _seed_table(i: int, df: pd.DataFrame, metrics: list[Any], ref: pd.Index | None) -> pd.DataFrame:
    """Seed ``i``'s metric columns indexed by user, checked, and aligned to ``ref`` (seed 0's
    users; ``None`` for seed 0 itself, whose users are sorted)."""
    if USER_COL not in df.columns:
        raise ValueError(f"seed {i}: no {USER_COL!r} column")
    cols = [c for c in df.columns if c != USER_COL]
    if set(cols) != set(metrics):
        raise ValueError(f"seed {i}: metric columns {sorted(cols)} differ from seed 0's {sorted(metrics)}")
    dup = df[USER_COL].duplicated()
    if dup.any():
        raise ValueError(f"seed {i}: {int(dup.sum())} duplicate user_id row(s)")
    t = df.set_index(USER_COL)[metrics]
    if ref is not None:
        n_missing = len(ref.difference(t.index))
        n_extra = len(t.index.difference(ref))
        if n_missing or n_extra:
            raise ValueError(
                f"seed {i} does not hold the same users as seed 0: {n_missing + n_extra} "
                f"user(s) differ ({n_missing} missing, {n_extra} extra)"
            )
        t = t.reindex(ref)
    else:
        try:
            t = t.sort_index()
        except TypeError:  # unorderable mixed ids: keep the given order
            pass
    vals = t.to_numpy(dtype=np.float64)
    if not np.isfinite(vals).all():
        raise ValueError(f"seed {i}: {int((~np.isfinite(vals)).sum())} non-finite value(s)")
    return t


def _spread(seed_means: np.ndarray, metrics: Sequence[str]) -> dict[str, dict[str, float]]:
    """Mean, sample SD (NaN for one seed), min, max and count of the per-seed means
    ``[seeds × metrics]`` of each metric."""
    n_seeds = seed_means.shape[0]
    spread: dict[str, dict[str, float]] = {}
    for j, m in enumerate(metrics):
        col = seed_means[:, j]
        spread[m] = {
            "mean": float(col.mean()),
            "std": float(col.std(ddof=1)) if n_seeds > 1 else float("nan"),
            "min": float(col.min()),
            "max": float(col.max()),
            "n_seeds": n_seeds,
        }
    return spread
