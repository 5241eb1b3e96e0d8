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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmark.stats.corrections import CORRECTIONS, adjust_pvalues
from benchmark.stats.paired import (
    bootstrap_p,
    effect_size,
    paired_t,
    relative_improvement,
    wilcoxon_differences,
    wilcoxon_p,
)
from benchmark.stats.resampling import bootstrap_means, signflip_pvalues

__all__ = ["MIN_RESAMPLES", "RESULT_KEYS", "TESTS", "compare", "wilcoxon_differences"]

log = logging.getLogger(__name__)

TESTS: tuple[str, ...] = ("t", "wilcoxon", "randomization", "bootstrap")
USER_COL = "user_id"
# Independent random streams for the bootstrap and the sign-flip test under one user seed.
_BOOT_STREAM, _PERM_STREAM = 0xB0075, 0x51F9
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
    n_resamples = _check_options(test, correction, alpha, ci_level, n_resamples)
    if baseline not in per_user_by_run:
        raise ValueError(f"baseline {baseline!r} is not among the runs: {sorted(per_user_by_run)}")
    run_names = _select_runs(per_user_by_run, baseline, runs)
    metric_names = _select_metrics(per_user_by_run[baseline], metrics)
    if not run_names:
        return []

    table = _paired_table(per_user_by_run, baseline, run_names, metric_names)
    draws = _draw(table, test, n_resamples, seed)
    rows = [_compare_column(table, draws, c, test, ci_level) for c in range(len(table.pairs))]
    adjusted = adjust_pvalues([row["p"] for row in rows], correction)
    for row, pa in zip(rows, adjusted):
        row["p_adjusted"] = float(pa)
        row["significant"] = bool(pa <= alpha)
    log.info(
        "compared %d run(s) × %d metric(s) against %r over %d users (%s test, %s correction)",
        len(run_names),
        len(metric_names),
        baseline,
        table.n_users,
        test,
        correction,
    )
    return rows


# --- per-user arrays -----------------------------------------------------------------------


@dataclass(frozen=True)
class _PairedTable:
    """Every (run, metric) comparison of one call as a column of per-user values.

    Columns are ordered runs outer, metrics inner (the order of the returned rows); users are
    the baseline's, sorted by ``user_id``, and every run is aligned to them.
    """

    baseline: str
    metrics: list[str]
    pairs: list[tuple[str, int]]
    """(run, index into ``metrics``) of each column."""
    run: np.ndarray
    """``[users × columns]`` the run's values."""
    base: np.ndarray
    """``[users × columns]`` the baseline's value of the same metric."""
    base_by_metric: np.ndarray
    """``[users × metrics]`` the baseline's values, once per metric."""
    diffs: np.ndarray
    """``[users × columns]`` ``run − base``."""

    @property
    def n_users(self) -> int:
        return int(self.run.shape[0])


@dataclass(frozen=True)
class _Draws:
    """Resampling results shared by every column of a :class:`_PairedTable`."""

    boot_diff: np.ndarray
    """``[resamples × columns]`` bootstrap means of the differences."""
    boot_base: np.ndarray
    """``[resamples × columns]`` bootstrap means of the baseline (same users as ``boot_diff``)."""
    perm_p: np.ndarray | None
    """Sign-flip p-value per column; drawn for the randomization test only."""


def _paired_table(
    per_user_by_run: Mapping[str, pd.DataFrame], baseline: str, run_names: Sequence[str], metrics: list[str]
) -> _PairedTable:
    users, base_vals = _values(per_user_by_run[baseline], baseline, metrics, None)
    if len(users) < 2:
        raise ValueError(f"need at least 2 users for a paired test, got {len(users)}")
    run_vals = {r: _values(per_user_by_run[r], r, metrics, (users, baseline))[1] for r in run_names}
    pairs = [(r, j) for r in run_names for j in range(len(metrics))]
    run_matrix = np.column_stack([run_vals[r][:, j] for r, j in pairs])
    base_matrix = np.column_stack([base_vals[:, j] for _, j in pairs])
    return _PairedTable(baseline, metrics, pairs, run_matrix, base_matrix, base_vals, run_matrix - base_matrix)


def _draw(table: _PairedTable, test: str, n_resamples: int, seed: int) -> _Draws:
    """One bootstrap over users for every column (the CIs of all tests) and, for the
    randomization test, one set of sign vectors; each from its own seeded stream."""
    rng_boot = np.random.default_rng([seed, _BOOT_STREAM])
    # The baseline's columns are resampled once per metric, with the same users as the runs.
    boot = bootstrap_means(np.hstack([table.run, table.base_by_metric]), n_resamples, rng_boot)
    k = len(table.pairs)
    boot_base = boot[:, k + np.array([j for _, j in table.pairs])]
    boot_diff = boot[:, :k] - boot_base
    perm_p = (
        signflip_pvalues(table.diffs, n_resamples, np.random.default_rng([seed, _PERM_STREAM]))
        if test == "randomization"
        else None
    )
    return _Draws(boot_diff, boot_base, perm_p)


def _percentiles(ci_level: float) -> list[float]:
    return [(1.0 - ci_level) / 2.0 * 100.0, (1.0 + ci_level) / 2.0 * 100.0]


def _compare_column(table: _PairedTable, draws: _Draws, c: int, test: str, ci_level: float) -> dict[str, Any]:
    """The result row of column ``c`` (``p_adjusted``/``significant`` are set by the caller)."""
    run, j = table.pairs[c]
    d = table.diffs[:, c]
    mean_base = float(table.base[:, c].mean())
    mean_d = float(d.mean())
    q = _percentiles(ci_level)
    p, ci = _p_and_ci(table, draws, c, test, ci_level)
    rel, rel_lo, rel_hi = relative_improvement(mean_d, mean_base, draws.boot_diff[:, c], draws.boot_base[:, c], q)
    return {
        "metric": table.metrics[j],
        "run": run,
        "baseline": table.baseline,
        "test": test,
        "p": p,
        "p_adjusted": float("nan"),
        "mean_diff": mean_d,
        "ci_low": ci[0],
        "ci_high": ci[1],
        "effect_size": effect_size(d),
        "significant": False,
        "rel_improvement": rel,
        "rel_ci_low": rel_lo,
        "rel_ci_high": rel_hi,
        "n_users": table.n_users,
        "mean_run": float(table.run[:, c].mean()),
        "mean_baseline": mean_base,
    }


def _p_and_ci(
    table: _PairedTable, draws: _Draws, c: int, test: str, ci_level: float
) -> tuple[float, tuple[float, float]]:
    """p-value of column ``c`` under ``test`` and the CI of its mean difference: t-based for
    the t-test, bootstrap percentile for the others."""
    d = table.diffs[:, c]
    all_zero = not np.any(d)
    if test == "t":
        return paired_t(table.run[:, c], table.base[:, c], all_zero, ci_level)
    lo, hi = np.percentile(draws.boot_diff[:, c], _percentiles(ci_level))
    if test == "wilcoxon":
        p = wilcoxon_p(d, all_zero)
    elif test == "randomization":
        assert draws.perm_p is not None  # drawn whenever the test is "randomization"
        p = float(draws.perm_p[c])
    else:
        p = bootstrap_p(draws.boot_diff[:, c], float(d.mean()), d)
    return p, (float(lo), float(hi))


# --- arguments and input tables ------------------------------------------------------------


def _check_options(test: str, correction: str, alpha: float, ci_level: float, n_resamples: int) -> int:
    """Validate the scalar options; return ``n_resamples`` as an int."""
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
    if int(n_resamples) < MIN_RESAMPLES:
        log.warning(
            "n_resamples=%d is below %d: resampled p-values and CIs are too coarse to report",
            int(n_resamples),
            MIN_RESAMPLES,
        )
    return int(n_resamples)


def _select_metrics(baseline_table: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    """The metric columns to test: as given, or the baseline's columns other than ``user_id``."""
    columns: list[Any] = [c for c in baseline_table.columns if c != USER_COL]
    out = list(metrics) if metrics is not None else columns
    if not out:
        raise ValueError("no metric columns to compare")
    if len(set(out)) != len(out):
        raise ValueError(f"metrics listed twice: {out}")
    return out


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
