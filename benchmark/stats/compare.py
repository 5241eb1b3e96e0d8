"""Paired significance tests between runs, per user, with corrections over a family.

Every test is two-sided and paired on the users: all runs hold the same users (aligned on
``user_id``). A run is one per-user table, or one table per training seed (see
:mod:`benchmark.stats.tables`); ``d = run − baseline`` below is the per-user difference of the
two runs' seed-averaged values.

Which test (``test``):

* ``auto`` (default) — ``mixed`` for a comparison where either side has several seeds, else ``t``.
* ``mixed`` — the linear mixed model over users **and** training seeds
  (:mod:`benchmark.stats.mixed`): the only test here whose H0 is "the methods are equally good",
  training randomness included. With one table on each side it is exactly the paired t-test.
* the classic tests below answer "are *these trained models* different on these users": they
  see seed-averaged values only, and a row says so ("conditional on the trained models").

  * ``t`` — paired t-test, :func:`scipy.stats.ttest_rel`. All-zero differences give p = 1
    (scipy returns NaN there: the runs are identical, there is no evidence of a difference).
  * ``wilcoxon`` — Wilcoxon signed-rank, :func:`scipy.stats.wilcoxon` on ``d`` with
    ``zero_method="pratt"``, ``correction=False``, ``method="auto"``. Pratt keeps users whose
    two runs tie (very common in top-K metrics: both 0) in the ranking and then drops their
    ranks, so ties count towards n instead of being thrown away as ``"wilcox"`` does.
    ``method="auto"`` is scipy's documented choice (exact for small n, else the normal
    approximation with tie and zero corrections). ``d`` is rounded to 12 decimals first
    (scipy's own advice) so float noise neither breaks ties nor hides zeros. All-zero → p = 1.
  * ``randomization`` — paired sign-flip permutation test, ``n_resamples`` random sign vectors
    (seeded), statistic ``|mean d|``, +1-corrected p (see :func:`signflip_pvalues`).
  * ``bootstrap`` — paired bootstrap of the mean difference over users; the p-value is the
    shifted-null bootstrap test (Efron & Tibshirani 1993, §16.4), +1-corrected.

Direction and estimate come from the test's own statistic, so a marker or a verdict never
pairs one test's significance with another quantity's sign: ``t``, ``mixed``, ``randomization``
— the sign of the mean difference (their statistic); ``wilcoxon`` — the sign of ``R⁺ − R⁻``
(its statistic; the mean can point the other way when a few users lose a lot and many gain a
little) with the Hodges–Lehmann estimate; ``bootstrap`` — +1 / −1 when the bootstrap CI lies
above / below 0, else 0. A comparison is a finding when ``significant`` (``p_adjusted ≤ α``)
**and** ``direction ≠ 0``.

For every comparison: effect size ``mean(d) / sd(d, ddof=1)`` (when sd = 0: 0 if every
difference is 0, ±inf if every user differs by the same amount); the ``ci_level`` CI of the
mean difference — t-based for ``t`` (:meth:`TtestResult.confidence_interval`) and ``mixed``
(Satterthwaite df), bootstrap percentile for the others; the relative improvement
``mean_diff / mean_baseline`` with its CI — delta method for ``mixed``, bootstrap percentile of
the ratio of means otherwise (NaN when the baseline mean is 0; resamples whose baseline mean is
0 are left out of the percentiles).

Families and corrections: the comparisons of one call form one family (``pairs``: runs against
the baseline, ``"all-pairs"``, or explicit pairs; :mod:`benchmark.stats.families`), corrected
together; each row records the family, its size, the correction and α.

Randomness: the bootstrap and sign-flip draws come from ``numpy.random.default_rng`` seeded by
``(seed, stream)``, shared by all comparisons of a call, and drawn in chunks that depend only on
the number of users — so a comparison's p-value and CIs do not change when other runs, pairs or
metrics are added to the call (only ``p_adjusted`` does, as the family grows). Users are sorted
by ``user_id`` first, so the row order of the input tables does not matter either.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.stats.corrections import CORRECTIONS, adjust_pvalues
from benchmark.stats.families import resolve_pairs, test_label
from benchmark.stats.mixed import MixedResult, SeedCube, mixed_test
from benchmark.stats.paired import (
    bootstrap_p,
    effect_size,
    hodges_lehmann,
    paired_t,
    relative_improvement,
    signed_rank_sum,
    wilcoxon_differences,
    wilcoxon_p,
)
from benchmark.stats.resampling import bootstrap_means, signflip_pvalues
from benchmark.stats.tables import Aligned, RunInput, align_runs, first_table, select_metrics

__all__ = ["CLASSIC_TESTS", "MIN_RESAMPLES", "RESULT_KEYS", "TESTS", "compare", "wilcoxon_differences"]

log = logging.getLogger(__name__)

CLASSIC_TESTS: tuple[str, ...] = ("t", "wilcoxon", "randomization", "bootstrap")
"""Tests over users only, on seed-averaged values: conditional on the trained models."""
TESTS: tuple[str, ...] = ("auto", "mixed", *CLASSIC_TESTS)
"""Every test name ``compare`` accepts; the first is the default."""
# Independent random streams for the bootstrap and the sign-flip test under one user seed.
_BOOT_STREAM, _PERM_STREAM = 0xB0075, 0x51F9
MIN_RESAMPLES = 10000
"""Fewest permutations / bootstrap resamples for reported results (fewer: a logged warning)."""

RESULT_KEYS: tuple[str, ...] = (
    "metric",
    "run",
    "baseline",
    "test",
    "test_label",
    "p",
    "p_adjusted",
    "family",
    "family_size",
    "correction",
    "alpha",
    "mean_diff",
    "ci_low",
    "ci_high",
    "estimate",
    "direction",
    "df",
    "effect_size",
    "significant",
    "rel_improvement",
    "rel_ci_low",
    "rel_ci_high",
    "n_users",
    "n_seeds",
    "seeds",
    "mean_run",
    "mean_baseline",
)
"""Keys of every comparison dict, documented in ARCHITECTURE.md (the contract other reports read)."""


def compare(
    per_user_by_run: Mapping[str, RunInput],
    baseline: str | None = None,
    metrics: Sequence[str] | None = None,
    test: str = "auto",
    correction: str = "holm",
    alpha: float = 0.05,
    n_resamples: int = 10000,
    seed: int = 0,
    runs: Sequence[str] | None = None,
    *,
    ci_level: float = 0.95,
    pairs: str | Sequence[tuple[str, str]] = "baseline",
    family: str | None = None,
    seeds: Mapping[str, Sequence[int | None]] | None = None,
) -> list[dict[str, Any]]:
    """Compare runs pairwise on every metric, paired per user, corrected over the family.

    Args:
        per_user_by_run: run name → a DataFrame with a ``user_id`` column and one column per
            metric (``"recall@10"``, …), or a list of such frames, one per training seed. All
            compared runs (and seeds) must hold the same users.
        baseline: the reference run when ``pairs="baseline"``; with ``"all-pairs"`` it is put
            first (so it is the baseline of its pairs); unused with explicit pairs.
        metrics: metric columns to test; default: the first run's columns other than ``user_id``.
        test: a name of :data:`TESTS` (module docs); ``"auto"`` picks per comparison.
        correction: ``"holm"``, ``"bonferroni"``, ``"bh"`` or ``"none"``, applied once over every
            comparison returned by this call — the family.
        alpha: significance level; ``significant`` is ``p_adjusted ≤ alpha``.
        n_resamples: bootstrap resamples / random sign vectors; below :data:`MIN_RESAMPLES`
            (10,000) a warning is logged (the CLI refuses such values).
        seed: seed of the resampling streams.
        runs: runs to compare (default: every run, in mapping order); with ``"baseline"`` the
            baseline, if listed, is skipped.
        ci_level: coverage of the CIs of the mean difference and relative improvement.
        pairs: ``"baseline"`` (each run against ``baseline``), ``"all-pairs"`` or a list of
            ``(run, baseline)`` pairs (each unordered pair at most once).
        family: the family's name (default ``"vs <baseline>"``, ``"all pairs"`` or ``"custom"``).
        seeds: run → seed ids of runs given as lists of frames (default ``0..S−1``).

    Returns:
        One dict per (pair, metric), pairs outer and metrics inner, with keys
        :data:`RESULT_KEYS` (plain JSON-serialisable values; ``n_seeds`` and ``seeds`` are
        ``{"run": …, "baseline": …}``).

    Raises:
        ValueError: unknown test/correction/pairs, missing run or metric, duplicate users, user
            sets that differ (naming the run and counts), non-finite values, fewer than 2 users.
    """
    n_resamples = _check_options(test, correction, alpha, ci_level, n_resamples)
    pair_list, models, family_id, ref_label = resolve_pairs(per_user_by_run, baseline, runs, pairs)
    if not pair_list:
        return []
    metric_names = select_metrics(first_table(per_user_by_run[models[0]]), metrics)
    data = align_runs(per_user_by_run, models, metric_names, seeds, ref_label)
    table = _PairedTable.build(data, pair_list)
    kinds = [_resolve_test(test, data, run, base) for run, base in pair_list]
    draws = _draw(table, kinds, n_resamples, seed)
    mixed = {
        i: mixed_test(SeedCube(data.cubes[r]), SeedCube(data.cubes[b]), ci_level)
        for i, (r, b) in enumerate(pair_list)
        if kinds[i] == "mixed"
    }
    rows = [
        _row(table, data, draws, mixed.get(i), i, j, kinds[i], ci_level)
        for i in range(len(pair_list))
        for j in range(len(metric_names))
    ]
    adjusted = adjust_pvalues([row["p"] for row in rows], correction)
    for row, pa in zip(rows, adjusted):
        row.update(p_adjusted=float(pa), significant=bool(pa <= alpha), family=family or family_id)
        row.update(family_size=len(rows), correction=correction, alpha=float(alpha))
    log.info(
        "compared %d pair(s) × %d metric(s) over %d users (%s, %s correction over %d)",
        len(pair_list),
        len(metric_names),
        data.n_users,
        "/".join(sorted(set(kinds))),
        correction,
        len(rows),
    )
    return rows


def _resolve_test(test: str, data: Aligned, run: str, base: str) -> str:
    if test != "auto":
        return test
    return "mixed" if max(data.n_seeds(run), data.n_seeds(base)) >= 2 else "t"


# --- per-user arrays -----------------------------------------------------------------------


@dataclass(frozen=True)
class _PairedTable:
    """Every (pair, metric) comparison of one call as a column of per-user seed-averaged values.

    Columns are ordered pairs outer, metrics inner (the order of the returned rows).
    """

    pairs: list[tuple[str, str]]
    metrics: list[str]
    run: np.ndarray
    """``[users × columns]`` the run's values."""
    base: np.ndarray
    """``[users × columns]`` the baseline's values of the same metric."""
    model_cols: np.ndarray
    """``[users × (runs·metrics)]`` every run's values once (resampled once, shared by pairs)."""
    run_idx: np.ndarray
    """Column of :attr:`model_cols` holding each column's run values."""
    base_idx: np.ndarray

    @classmethod
    def build(cls, data: Aligned, pairs: list[tuple[str, str]]) -> _PairedTable:
        models = list(data.cubes)
        k = len(data.metrics)
        means = np.hstack([data.means(m) for m in models])
        run_idx = np.array([models.index(r) * k + j for r, _ in pairs for j in range(k)])
        base_idx = np.array([models.index(b) * k + j for _, b in pairs for j in range(k)])
        return cls(pairs, data.metrics, means[:, run_idx], means[:, base_idx], means, run_idx, base_idx)

    @property
    def diffs(self) -> np.ndarray:
        return np.asarray(self.run - self.base)


@dataclass(frozen=True)
class _Draws:
    """Resampling results shared by every column of a :class:`_PairedTable`."""

    boot_diff: np.ndarray | None
    """``[resamples × columns]`` bootstrap means of the differences (None when only ``mixed``)."""
    boot_base: np.ndarray | None
    """``[resamples × columns]`` bootstrap means of the baseline (same users as ``boot_diff``)."""
    perm_p: np.ndarray | None
    """Sign-flip p-value per column; drawn for the randomization test only."""


def _draw(table: _PairedTable, kinds: list[str], n_resamples: int, seed: int) -> _Draws:
    """One bootstrap over users for every run's columns (CIs of the classic tests) and, for the
    randomization test, one set of sign vectors; each from its own seeded stream."""
    boot_diff = boot_base = perm_p = None
    if any(k != "mixed" for k in kinds):
        boot = bootstrap_means(table.model_cols, n_resamples, np.random.default_rng([seed, _BOOT_STREAM]))
        boot_base = boot[:, table.base_idx]
        boot_diff = boot[:, table.run_idx] - boot_base
    if "randomization" in kinds:
        perm_p = signflip_pvalues(table.diffs, n_resamples, np.random.default_rng([seed, _PERM_STREAM]))
    return _Draws(boot_diff, boot_base, perm_p)


def _percentiles(ci_level: float) -> list[float]:
    return [(1.0 - ci_level) / 2.0 * 100.0, (1.0 + ci_level) / 2.0 * 100.0]


def _sign(x: float, scale: float) -> int:
    return 0 if abs(x) <= 1e-12 * max(1.0, scale) else (1 if x > 0 else -1)


# --- one comparison ------------------------------------------------------------------------


def _row(
    table: _PairedTable,
    data: Aligned,
    draws: _Draws,
    mixed: MixedResult | None,
    i: int,
    j: int,
    test: str,
    ci_level: float,
) -> dict[str, Any]:
    """The result row of pair ``i``, metric ``j`` (family keys are set by the caller)."""
    c = i * len(table.metrics) + j
    run, base = table.pairs[i]
    d = table.diffs[:, c]
    mean_d, mean_base = float(d.mean()), float(table.base[:, c].mean())
    scale = float(np.abs(d).max(initial=0.0))
    out: dict[str, Any] = {"metric": table.metrics[j], "run": run, "baseline": base, "test": test}
    out["test_label"] = test_label(test, data.seeds[run], data.seeds[base])
    if mixed is not None:
        stats = _mixed_stats(mixed, j)
    else:
        stats = _classic_stats(table, draws, c, test, ci_level)
    p, (lo, hi), estimate, direction, df, (rel, rel_lo, rel_hi) = stats
    if direction is None:
        direction = _sign(mean_d, scale)
    out.update(p=p, p_adjusted=float("nan"), family="", family_size=0, correction="", alpha=float("nan"))
    out.update(mean_diff=mean_d, ci_low=lo, ci_high=hi, estimate=estimate, direction=direction, df=df)
    out.update(effect_size=effect_size(d), significant=False)
    out.update(rel_improvement=rel, rel_ci_low=rel_lo, rel_ci_high=rel_hi, n_users=data.n_users)
    out["n_seeds"] = {"run": data.n_seeds(run), "baseline": data.n_seeds(base)}
    out["seeds"] = {"run": list(data.seeds[run]), "baseline": list(data.seeds[base])}
    out.update(mean_run=float(table.run[:, c].mean()), mean_baseline=mean_base)
    return out


_Stats = tuple[float, tuple[float, float], float, "int | None", "float | None", tuple[float, float, float]]
"""p, CI of the mean difference, estimate, direction (None: the sign of the mean), df of the t
reference (None for tests without one), relative improvement (value, lo, hi)."""


def _mixed_stats(res: MixedResult, j: int) -> _Stats:
    est = float(res.estimate[j])
    rel = (float(res.rel[j]), float(res.rel_low[j]), float(res.rel_high[j]))
    return float(res.p[j]), (float(res.ci_low[j]), float(res.ci_high[j])), est, None, float(res.df[j]), rel


def _classic_stats(table: _PairedTable, draws: _Draws, c: int, test: str, ci_level: float) -> _Stats:
    """p, CI, estimate and direction of column ``c`` under a classic test (module docs)."""
    assert draws.boot_diff is not None and draws.boot_base is not None  # drawn for every classic test
    d = table.diffs[:, c]
    mean_d = float(d.mean())
    all_zero = not np.any(d)
    q = _percentiles(ci_level)
    rel = relative_improvement(mean_d, float(table.base[:, c].mean()), draws.boot_diff[:, c], draws.boot_base[:, c], q)
    df: float | None = None
    direction: int | None = None
    estimate = mean_d
    if test == "t":
        p, ci = paired_t(table.run[:, c], table.base[:, c], all_zero, ci_level)
        return p, ci, estimate, direction, float(table.run.shape[0] - 1), rel
    lo, hi = (float(v) for v in np.percentile(draws.boot_diff[:, c], q))
    if test == "wilcoxon":
        p = wilcoxon_p(d, all_zero)
        estimate = hodges_lehmann(d)
        direction = int(np.sign(signed_rank_sum(d)))
    elif test == "randomization":
        assert draws.perm_p is not None  # drawn whenever the test is "randomization"
        p = float(draws.perm_p[c])
    else:
        p = bootstrap_p(draws.boot_diff[:, c], mean_d, d)
        direction = 1 if lo > 0 else -1 if hi < 0 else 0
    return p, (lo, hi), estimate, direction, df, rel


# --- arguments -----------------------------------------------------------------------------


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
