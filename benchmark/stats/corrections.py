"""Multiple-comparison corrections of p-values.

The family is whatever the caller passes in one call; :func:`benchmark.stats.compare` passes
every (run, metric) comparison of a table at once, so a leaderboard's markers are corrected
over the whole table and not per column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CORRECTIONS: tuple[str, ...] = ("holm", "bonferroni", "bh", "none")


def adjust_pvalues(p: Sequence[float] | np.ndarray, method: str = "holm") -> np.ndarray:
    """Adjusted p-values for a family of tests, in the input order.

    * ``holm`` — Holm (1979) step-down, controls the family-wise error rate:
      with ascending p_(1) ≤ … ≤ p_(m), ``adj_(i) = max_{j ≤ i} min(1, (m − j + 1) · p_(j))``.
    * ``bonferroni`` — ``min(1, m · p)``.
    * ``bh`` — Benjamini–Hochberg (1995) step-up, controls the false discovery rate:
      ``adj_(i) = min_{j ≥ i} min(1, m · p_(j) / j)``.
    * ``none`` — the p-values unchanged.

    Raises ``ValueError`` for an unknown method or p-values outside [0, 1] (NaN included).
    """
    if method not in CORRECTIONS:
        raise ValueError(f"unknown correction {method!r}; allowed: {', '.join(CORRECTIONS)}")
    pv = np.asarray(p, dtype=np.float64).ravel()
    if pv.size and not np.all((pv >= 0.0) & (pv <= 1.0)):
        bad = pv[~((pv >= 0.0) & (pv <= 1.0))]
        raise ValueError(f"p-values must lie in [0, 1]; got {bad[:5].tolist()}")
    m = pv.size
    if m == 0 or method == "none":
        return pv.copy()
    if method == "bonferroni":
        return np.minimum(1.0, pv * m)
    # Stable sort: equal p-values keep their input order, so results are deterministic.
    order = np.argsort(pv, kind="stable")
    ranked = pv[order]
    rank = np.arange(1, m + 1, dtype=np.float64)
    if method == "holm":
        adj_sorted = np.maximum.accumulate(np.minimum(1.0, (m - rank + 1.0) * ranked))
    else:  # bh
        adj_sorted = np.minimum.accumulate(np.minimum(1.0, ranked * m / rank)[::-1])[::-1]
    out = np.empty(m, dtype=np.float64)
    out[order] = adj_sorted
    return out
