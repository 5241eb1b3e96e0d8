"""Paired significance tests of runs against a baseline, per user, with corrections.

Every test is paired and two-sided on the per-user differences ``d = run − baseline`` over the
same users (aligned on ``user_id``):

* ``t`` — paired t-test, :func:`scipy.stats.ttest_rel`. All-zero differences give p = 1
  (scipy returns NaN there: the runs are identical, there is no evidence of a difference).
* ``wilcoxon`` — Wilcoxon signed-rank, :func:`scipy.stats.wilcoxon` on ``d`` with
  ``zero_method="pratt"``, ``correction=False``, ``method="auto"``. Pratt keeps users whose
  two runs tie (very common in top-K metrics: both 0) in the ranking and then drops their
  ranks, so ties count towards n instead of being thrown away as ``"wilcox"`` does (which
  would test only the users where the runs differ). The two can give different p-values in
  either direction; Pratt is used because it does not discard users.
  ``method="auto"`` is scipy's documented choice: exact null distribution for n ≤ 50 without
  ties/zeros, exhaustive permutations for n ≤ 13 with them, else the normal approximation
  with tie and zero corrections. ``d`` is rounded to 12 decimals first (scipy's own advice)
  so float noise in ``run − baseline`` neither breaks ties nor hides zeros. All-zero → p = 1.
* ``randomization`` — paired sign-flip permutation test, ``n_resamples`` random sign vectors
  (seeded), statistic ``|mean d|``, +1-corrected p (see :func:`signflip_pvalues`).
* ``bootstrap`` — paired bootstrap of the mean difference over users. The p-value is the
  shifted-null bootstrap test (Efron & Tibshirani 1993, §16.4): centre the bootstrap
  distribution of ``mean d*`` on 0 and count ``|mean d* − mean d| ≥ |mean d|``, +1-corrected.

For every comparison, whatever the test: effect size ``mean(d) / sd(d, ddof=1)`` (when sd = 0:
0 if every difference is 0, ±inf if every user differs by the same non-zero amount); the ``ci_level`` CI of the mean difference — t-based
(:meth:`TtestResult.confidence_interval`) for the t-test, bootstrap percentile for the other
tests; relative improvement ``mean_diff / mean_baseline`` with a bootstrap-percentile CI of the
ratio of means (NaN when the baseline mean is 0; resamples whose baseline mean is 0 are left
out of the ratio's percentiles).

Randomness: the bootstrap and sign-flip draws come from ``numpy.random.default_rng`` seeded by
``(seed, stream)``, shared by all comparisons of a call, and drawn in chunks that depend only on
the number of users — so a comparison's p-value and CIs do not change when other runs or metrics
are added to the call (only ``p_adjusted`` does, as the family grows). Users are sorted by
``user_id`` first, so the row order of the input tables does not matter either.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from benchmark.stats.corrections import CORRECTIONS, adjust_pvalues
from benchmark.stats.resampling import bootstrap_means, signflip_pvalues

log = logging.getLogger(__name__)

TESTS: tuple[str, ...] = ("t", "wilcoxon", "randomization", "bootstrap")
USER_COL = "user_id"
# Independent random streams for the bootstrap and the sign-flip test under one user seed.
_BOOT_STREAM, _PERM_STREAM = 0xB0075, 0x51F9
_WILCOXON_DECIMALS = 12
MIN_RESAMPLES = 10000
"""Fewest permutations / bootstrap resamples for reported results (fewer: a logged warning)."""

RESULT_KEYS: tuple[str, ...] = (
    "metric",
    "run",
    "baseline",
    "test",
    "p",
    "p_adjusted",
    "mean_diff",
    "ci_low",
    "ci_high",
    "effect_size",
    "significant",
    "rel_improvement",
    "rel_ci_low",
    "rel_ci_high",
    "n_users",
    "mean_run",
    "mean_baseline",
)


def compare(
    per_user_by_run: Mapping[str, pd.DataFrame],
    baseline: str,
    metrics: Sequence[str] | None = None,
    test: str = "t",
    correction: str = "holm",
    alpha: float = 0.05,
    n_resamples: int = 10000,
    seed: int = 0,
    runs: Sequence[str] | None = None,
    *,
    ci_level: float = 0.95,
) -> list[dict[str, Any]]:
    """Compare every run with ``baseline`` on every metric, paired per user.

    Args:
        per_user_by_run: run name → DataFrame with a ``user_id`` column and one column per
            metric (``"recall@10"``, …). All compared runs must hold the same users.
        baseline: name of the reference run (a key of ``per_user_by_run``).
        metrics: metric columns to test; default: the baseline's columns other than ``user_id``.
        test: ``"t"``, ``"wilcoxon"``, ``"randomization"`` or ``"bootstrap"`` (module docs).
        correction: ``"holm"``, ``"bonferroni"``, ``"bh"`` or ``"none"``, applied over every
            (run, metric) comparison returned by this call — the family is the table.
        alpha: significance level; ``significant`` is ``p_adjusted ≤ alpha``.
        n_resamples: bootstrap resamples / random sign vectors; below :data:`MIN_RESAMPLES`
            (10,000) a warning is logged (the CLI refuses such values).
        seed: seed of the resampling streams.
        runs: runs to compare (default: every run but the baseline, in mapping order); the
            baseline, if listed, is skipped.
        ci_level: coverage of the CIs of the mean difference and relative improvement.

    Returns:
        One dict per (run, metric), runs outer and metrics inner, with keys
        :data:`RESULT_KEYS` (plain Python floats/bools/ints, JSON-serialisable).

    Raises:
        ValueError: unknown test/correction, missing run or metric, duplicate users, user sets
            that differ (naming the run and counts), non-finite values, fewer than 2 users.
    """
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r}; allowed: {', '.join(TESTS)}")
    if correction not in CORRECTIONS:
        raise ValueError(f"unknown correction {correction!r}; allowed: {', '.join(CORRECTIONS)}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 < ci_level < 1.0:
        raise ValueError(f"ci_level must be in (0, 1), got {ci_level}")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be ≥ 1, got {n_resamples}")
    n_resamples = int(n_resamples)
    if n_resamples < MIN_RESAMPLES:
        log.warning(
            "n_resamples=%d is below %d: resampled p-values and CIs are too coarse to report",
            n_resamples,
            MIN_RESAMPLES,
        )
    if baseline not in per_user_by_run:
        raise ValueError(f"baseline {baseline!r} is not among the runs: {sorted(per_user_by_run)}")
    run_names = _select_runs(per_user_by_run, baseline, runs)
    if metrics is None:
        metrics = [c for c in per_user_by_run[baseline].columns if c != USER_COL]
    metrics = list(metrics)
    if not metrics:
        raise ValueError("no metric columns to compare")
    if len(set(metrics)) != len(metrics):
        raise ValueError(f"metrics listed twice: {metrics}")
    if not run_names:
        return []

    users, base_vals = _values(per_user_by_run[baseline], baseline, metrics, None)
    n = len(users)
    if n < 2:
        raise ValueError(f"need at least 2 users for a paired test, got {n}")
    run_vals = {r: _values(per_user_by_run[r], r, metrics, (users, baseline))[1] for r in run_names}

    # Column layout: one column per (run, metric), runs outer, then the baseline's metrics.
    pairs = [(r, j) for r in run_names for j in range(len(metrics))]
    run_matrix = np.column_stack([run_vals[r][:, j] for r, j in pairs])
    base_matrix = np.column_stack([base_vals[:, j] for _, j in pairs])
    diffs = run_matrix - base_matrix

    boot = bootstrap_means(np.hstack([run_matrix, base_vals]), n_resamples, np.random.default_rng([seed, _BOOT_STREAM]))
    k = len(pairs)
    boot_run = boot[:, :k]
    boot_base = boot[:, k + np.array([j for _, j in pairs])]
    boot_diff = boot_run - boot_base
    perm_p = (
        signflip_pvalues(diffs, n_resamples, np.random.default_rng([seed, _PERM_STREAM]))
        if test == "randomization"
        else None
    )

    q = [(1.0 - ci_level) / 2.0 * 100.0, (1.0 + ci_level) / 2.0 * 100.0]
    rows: list[dict[str, Any]] = []
    for c, (r, j) in enumerate(pairs):
        d = diffs[:, c]
        mean_run = float(run_matrix[:, c].mean())
        mean_base = float(base_matrix[:, c].mean())
        mean_d = float(d.mean())
        all_zero = not np.any(d)
        if test == "t":
            p, ci = _ttest(run_matrix[:, c], base_matrix[:, c], all_zero, ci_level)
        else:
            ci = tuple(float(x) for x in np.percentile(boot_diff[:, c], q))
            if test == "wilcoxon":
                p = _wilcoxon(d, all_zero)
            elif test == "randomization":
                p = float(perm_p[c])  # type: ignore[index]
            else:
                p = _bootstrap_p(boot_diff[:, c], mean_d, d)
        rel, rel_lo, rel_hi = _relative(mean_d, mean_base, boot_diff[:, c], boot_base[:, c], q)
        rows.append(
            {
                "metric": metrics[j],
                "run": r,
                "baseline": baseline,
                "test": test,
                "p": p,
                "p_adjusted": float("nan"),
                "mean_diff": mean_d,
                "ci_low": ci[0],
                "ci_high": ci[1],
                "effect_size": _effect_size(d),
                "significant": False,
                "rel_improvement": rel,
                "rel_ci_low": rel_lo,
                "rel_ci_high": rel_hi,
                "n_users": n,
                "mean_run": mean_run,
                "mean_baseline": mean_base,
            }
        )
    adjusted = adjust_pvalues([row["p"] for row in rows], correction)
    for row, pa in zip(rows, adjusted):
        row["p_adjusted"] = float(pa)
        row["significant"] = bool(pa <= alpha)
    log.info(
        "compared %d run(s) × %d metric(s) against %r over %d users (%s test, %s correction)",
        len(run_names),
        len(metrics),
        baseline,
        n,
        test,
        correction,
    )
    return rows


def _select_runs(per_user_by_run: Mapping[str, pd.DataFrame], baseline: str, runs: Sequence[str] | None) -> list[str]:
    if runs is None:
        return [r for r in per_user_by_run if r != baseline]
    unknown = [r for r in runs if r not in per_user_by_run]
    if unknown:
        raise ValueError(f"unknown run(s) {unknown}; available: {sorted(per_user_by_run)}")
    out: list[str] = []
    for r in runs:
        if r != baseline and r not in out:
            out.append(r)
    return out


def _values(
    df: pd.DataFrame, name: str, metrics: Sequence[str], align: tuple[np.ndarray, str] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (sorted user ids, [users × metrics] float64) for one run, checked and aligned."""
    if USER_COL not in df.columns:
        raise ValueError(f"run {name!r}: no {USER_COL!r} column (columns: {list(df.columns)})")
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise ValueError(f"run {name!r} lacks metric column(s) {missing}")
    ids = df[USER_COL]
    dup = ids.duplicated()
    if dup.any():
        raise ValueError(f"run {name!r}: {int(dup.sum())} duplicate user_id row(s), e.g. {ids[dup].iloc[0]!r}")
    table = df.set_index(USER_COL)[list(metrics)]
    if align is None:
        try:
            table = table.sort_index()
        except TypeError:  # unorderable mixed ids: keep the given order
            pass
        users = table.index.to_numpy()
    else:
        users, base_name = align
        index = pd.Index(users)
        n_missing = len(index.difference(table.index))
        n_extra = len(table.index.difference(index))
        if n_missing or n_extra:
            raise ValueError(
                f"run {name!r} does not hold the same users as baseline {base_name!r}: "
                f"{n_missing + n_extra} user(s) differ ({n_missing} missing from the run, "
                f"{n_extra} not in the baseline)"
            )
        table = table.reindex(index)
    try:
        vals = table.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"run {name!r}: metric columns must be numeric ({exc})") from exc
    bad = ~np.isfinite(vals)
    if bad.any():
        col = int(np.nonzero(bad.any(axis=0))[0][0])
        raise ValueError(f"run {name!r}: {int(bad.sum())} non-finite value(s), e.g. in {list(metrics)[col]!r}")
    return users, vals


def _ttest(x: np.ndarray, y: np.ndarray, all_zero: bool, ci_level: float) -> tuple[float, tuple[float, float]]:
    if all_zero:  # scipy gives NaN for identical samples; they do not differ
        return 1.0, (0.0, 0.0)
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
    return np.round(np.asarray(d, dtype=np.float64), _WILCOXON_DECIMALS)


def _wilcoxon(d: np.ndarray, all_zero: bool) -> float:
    dr = wilcoxon_differences(d)
    if all_zero or not np.any(dr):
        return 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (RuntimeWarning, UserWarning))
        res = sps.wilcoxon(dr, zero_method="pratt", correction=False, alternative="two-sided", method="auto")
    return float(res.pvalue)


def _bootstrap_p(boot_diff: np.ndarray, mean_d: float, d: np.ndarray) -> float:
    tol = 1e-9 * float(np.abs(d).max(initial=0.0))
    hits = np.count_nonzero(np.abs(boot_diff - mean_d) >= abs(mean_d) - tol)
    return float((1.0 + hits) / (1.0 + boot_diff.size))


def _effect_size(d: np.ndarray) -> float:
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


def _relative(
    mean_d: float, mean_base: float, boot_diff: np.ndarray, boot_base: np.ndarray, q: Sequence[float]
) -> tuple[float, float, float]:
    if mean_base == 0.0:
        return float("nan"), float("nan"), float("nan")
    ok = boot_base != 0.0
    if not ok.any():
        return mean_d / mean_base, float("nan"), float("nan")
    lo, hi = np.percentile(boot_diff[ok] / boot_base[ok], q)
    return mean_d / mean_base, float(lo), float(hi)
