"""Paired-test kernels: one comparison (one run, one metric) from per-user arrays.

Pure functions of NumPy arrays, no tables and no names: :func:`benchmark.stats.compare` aligns
the per-user tables, draws the resamples once for the whole table and calls these per column.
The conventions (zero differences, CIs, rounding) are documented in
:mod:`benchmark.stats.compare`.

``scipy.stats`` is imported inside the two functions that need it: it takes about a second to
import, and the command line reads :data:`benchmark.stats.TESTS` at start-up for every command.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

__all__ = [
    "bootstrap_p",
    "effect_size",
    "hodges_lehmann",
    "paired_t",
    "relative_improvement",
    "signed_rank_sum",
    "wilcoxon_differences",
    "wilcoxon_p",
]

WILCOXON_DECIMALS = 12
"""Decimals the differences are rounded to before the Wilcoxon test (float noise, see module docs)."""


def paired_t(x: np.ndarray, y: np.ndarray, all_zero: bool, ci_level: float) -> tuple[float, tuple[float, float]]:
    """Paired t-test of ``x`` against ``y``: ``(p, (ci_low, ci_high))`` of the mean difference.

    Identical samples give ``p = 1`` and a ``(0, 0)`` CI (scipy returns NaN there); a constant
    non-zero difference gives scipy's ``p = 0`` and the degenerate CI ``(d, d)``.
    """
    if all_zero:  # scipy gives NaN for identical samples; they do not differ
        return 1.0, (0.0, 0.0)
    from scipy import stats as sps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # constant non-zero d: t = ±inf, p = 0
        res = sps.ttest_rel(x, y)
        ci = res.confidence_interval(ci_level)
    lo, hi = float(ci.low), float(ci.high)
    if not (np.isfinite(lo) and np.isfinite(hi)):  # sd = 0: every difference equals the mean
        lo = hi = float(np.mean(x - y))
    return float(res.pvalue), (lo, hi)


def wilcoxon_differences(d: np.ndarray) -> np.ndarray:
    """The differences exactly as handed to :func:`scipy.stats.wilcoxon` (rounded, see docs)."""
    return np.round(np.asarray(d, dtype=np.float64), WILCOXON_DECIMALS)


def wilcoxon_p(d: np.ndarray, all_zero: bool) -> float:
    """Two-sided Wilcoxon signed-rank p-value of the differences ``d`` (Pratt zeros, no
    continuity correction, scipy's ``method="auto"``); all-zero differences give 1."""
    dr = wilcoxon_differences(d)
    if all_zero or not np.any(dr):
        return 1.0
    from scipy import stats as sps

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (RuntimeWarning, UserWarning))
        res = sps.wilcoxon(dr, zero_method="pratt", correction=False, alternative="two-sided", method="auto")
    return float(res.pvalue)


def signed_rank_sum(d: np.ndarray) -> float:
    """``R⁺ − R⁻``: the Wilcoxon statistic whose sign says which way the test points.

    Ranks of ``|d|`` (rounded as for the test, average ranks for ties) over every user, zeros
    included, then the zeros' ranks dropped — Pratt's rule, the one :func:`wilcoxon_p` uses. A
    mean can point the other way (a few large losses against many small gains), which is why
    the leaderboard and the claims take the Wilcoxon direction from here and not from the mean.
    """
    from scipy import stats as sps

    dr = wilcoxon_differences(d)
    if not np.any(dr):
        return 0.0
    ranks = sps.rankdata(np.abs(dr))
    return float(ranks[dr > 0].sum() - ranks[dr < 0].sum())


def hodges_lehmann(d: np.ndarray, max_iter: int = 200) -> float:
    """Hodges–Lehmann estimate: the median of the Walsh averages ``(d_i + d_j)/2``, ``i ≤ j``.

    The location estimate that goes with the signed-rank test (Hollander & Wolfe, §3.2). With
    many tied differences (top-K metrics: most users tie at 0) it is often exactly 0 while
    ``R⁺ − R⁻`` is not, so it is reported as the estimate and not used for the direction.
    Computed without forming the ``n(n+1)/2`` averages: bisection on the value with an
    ``O(u log u)`` count over the ``u`` distinct differences, then snapped to the nearest Walsh
    sum (exact up to one unit in the last place); an even count averages the two middle ones.
    """
    x = wilcoxon_differences(np.asarray(d, dtype=np.float64).ravel())
    if x.size == 0:
        return float("nan")
    vals, counts = np.unique(x, return_counts=True)
    cum = np.concatenate([[0], np.cumsum(counts)])
    n_pairs = x.size * (x.size + 1) // 2
    lo_k, hi_k = (n_pairs + 1) // 2, n_pairs // 2 + 1
    sums = _kth_walsh_sum(vals, counts, cum, lo_k, max_iter), _kth_walsh_sum(vals, counts, cum, hi_k, max_iter)
    return (sums[0] + sums[1]) / 4.0  # the mean of two middle Walsh *averages* (sums / 2)


def _kth_walsh_sum(vals: np.ndarray, counts: np.ndarray, cum: np.ndarray, k: int, max_iter: int) -> float:
    """The ``k``-th smallest (1-based) of the sums ``x_p + x_q``, ``p ≤ q``, of the multiset
    ``vals`` × ``counts`` (``cum``: cumulative counts with a leading 0)."""

    def n_at_most(t: float) -> int:
        # ordered pairs with x_p + x_q ≤ t, plus the diagonal, halved = pairs with p ≤ q
        ordered = int((counts * cum[np.searchsorted(vals, t - vals, side="right")]).sum())
        diagonal = int(cum[np.searchsorted(vals, t / 2.0, side="right")])
        return (ordered + diagonal) // 2

    lo, hi = 2.0 * float(vals[0]), 2.0 * float(vals[-1])
    if n_at_most(lo) >= k:
        return lo
    for _ in range(max_iter):  # invariant: n_at_most(lo) < k <= n_at_most(hi)
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if n_at_most(mid) >= k:
            hi = mid
        else:
            lo = mid
    # the Walsh sum nearest hi: for each value, its partner just at or below hi - value
    j = np.searchsorted(vals, hi - vals, side="right") - 1
    near = np.clip(np.concatenate([j, j + 1]), 0, vals.size - 1)
    sums = np.concatenate([vals, vals]) + vals[near]
    return float(sums[np.argmin(np.abs(sums - hi))])


def bootstrap_p(boot_diff: np.ndarray, mean_d: float, d: np.ndarray) -> float:
    """Shifted-null bootstrap p-value: ``(1 + #{|mean d* − mean d| ≥ |mean d|}) / (1 + R)``.

    ``boot_diff`` holds the ``R`` bootstrap means of the differences ``d``; the tolerance
    (1e-9 × max|d|) keeps round-off from turning an exact tie into a miss.
    """
    tol = 1e-9 * float(np.abs(d).max(initial=0.0))
    hits = np.count_nonzero(np.abs(boot_diff - mean_d) >= abs(mean_d) - tol)
    return float((1.0 + hits) / (1.0 + boot_diff.size))


def effect_size(d: np.ndarray) -> float:
    """``mean(d) / sd(d)``; with sd = 0 it is 0 when every difference is 0 and ±inf when every
    user gains (or loses) the same non-zero amount — the most consistent effect there is, not
    "no effect"."""
    mean = float(np.mean(d)) if d.size else 0.0
    scale = max(1.0, float(np.abs(d).max(initial=0.0)))
    sd = float(np.std(d, ddof=1)) if d.size > 1 else 0.0
    # Equal differences can leave sd (and a zero mean) at round-off level instead of exactly 0.
    if sd <= 1e-12 * scale:
        return 0.0 if abs(mean) <= 1e-12 * scale else float(np.copysign(np.inf, mean))
    return mean / sd


def relative_improvement(
    mean_d: float, mean_base: float, boot_diff: np.ndarray, boot_base: np.ndarray, q: Sequence[float]
) -> tuple[float, float, float]:
    """``(mean_d / mean_base, ci_low, ci_high)``: bootstrap-percentile CI (percentiles ``q``) of
    the ratio of means, leaving out resamples whose baseline mean is 0; NaN when the baseline
    mean is 0."""
    if mean_base == 0.0:
        return float("nan"), float("nan"), float("nan")
    ok = boot_base != 0.0
    if not ok.any():
        return mean_d / mean_base, float("nan"), float("nan")
    lo, hi = np.percentile(boot_diff[ok] / boot_base[ok], q)
    return mean_d / mean_base, float(lo), float(hi)
