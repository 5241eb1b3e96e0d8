"""The test that counts training randomness: a linear mixed model over users *and* seeds.

What it tests. Method A (trained with ``S_A`` seeds) against method B (``S_B`` seeds; a
deterministic, untrained model has one "seed" and no training randomness), every seed evaluated
on the same ``n`` users. H0: A and B have the same expected metric, the expectation taken over
the users' population **and** over training runs — "is A better than B", not "are these
particular trained models better on these particular users" (the classic paired tests on
seed-averaged per-user values answer the latter; they are kept, by name, and labelled
"conditional on the trained models").

The model, per method ``m``, seed ``s``, user ``u``::

    y[m, s, u] = mu_m + a_u + b[m, u] + c[m, s] + e[m, s, u]

``a_u`` user (random, shared by both methods), ``b[m, u]`` user × method (random: how much this
user suits this method), ``c[m, s]`` seed within method (random: this training run's luck, its
variance ``sigma_c_m^2`` may differ between methods and is 0 for a deterministic model),
``e`` the rest (user × seed). The estimate is the difference of the grand means
``D = mean(y[A]) − mean(y[B])``, and::

    Var(D) = Var(b_A − b_B)/n + sigma_c_A^2/S_A + sigma_c_B^2/S_B + sigma_e_A^2/(n S_A) + sigma_e_B^2/(n S_B)

Every seed sees every user (a balanced design), so the REML estimates have the classic ANOVA
closed form and nothing has to be fitted: with ``d_u`` the per-user difference of seed means,
``V_u = var(d_u)/n`` estimates the first and last two terms exactly; per method, the spread of
the per-seed means ``var_s(mean_u y[m, s, ·])`` estimates ``sigma_c^2 + sigma_e^2/n`` and the
user × seed residual mean square ``MS_e`` estimates ``sigma_e^2``, so::

    Var^(D) = V_u + Σ_m max(0, var_s(seed means of m) − MS_e,m / n) / S_m

(the ``max`` is REML's boundary: a seed variance is never negative). The reference distribution
is Student's t with Satterthwaite's degrees of freedom for that sum of mean squares — about
``S_A + S_B − 2`` when the seeds dominate, ``n − 1`` when they do not. With one seed on each
side the formula *is* the paired t-test (``V_u``, ``n − 1`` df), exactly.

The df guard. Satterthwaite's df is computed from the *estimated* seed variance, which with 3–5
seeds is itself very noisy, and the two errors go together: a seed variance underestimated by
chance makes both the standard error too small and the df too large, so the plain plug-in test
is liberal — 7% at α = 5% for 3 seeds against a fixed model, 10–13% for 2. The df is therefore
computed with the seed part at its upper :data:`DF_GUARD` (75%) confidence bound
(``G · k / χ²_k(0.25)``, ``k`` its own Welch–Satterthwaite df); the standard error itself is
unchanged. Chosen by simulation over the whole range of user-to-seed variance ratios: the
rejection rate stays at or below about 5.1% for 3 or 5 seeds per side or against a fixed model
(the plain df: up to 7.9%), at the cost of some conservatism where the seed and user parts are
comparable (down to about 3.5% with 3 + 3 seeds, Welch's own floor there).

Assumptions: seeds are independent training runs of the same configuration; every seed is
evaluated on the same users; the seed effects are roughly normal (with 3–5 seeds nothing can
check that, and a t with few df is the honest price); users are exchangeable (their mean is a
CLT average, so per-user metrics need not be normal). With equal seed counts the estimate and
its standard error are exactly the REML fit of ``y ~ method + (1|user) + (1|user:method) +
(1|method:seed)``; the tests check both against ``statsmodels`` ``MixedLM`` fitting that model.

Why not the alternatives (``python -m benchmark.perf.seed_tests``: a true null, 2,000 users, seed
SD 0.01, 2,000 simulated comparisons per setting, α = 0.05, Monte-Carlo SE 0.005):

* the classic paired t-test on seed-averaged values rejects 86% (3 seeds each side), 83% (5),
  66–77% against a fixed model: the seed variance never enters its standard error;
* a hierarchical bootstrap (resample seeds within method, then users) rejects 17% with 3 seeds
  and 11% with 5: a bootstrap of 3 values has 10 distinct resamples, underestimates their
  variance by the factor (S − 1)/S and uses normal instead of t quantiles;
* permuting seeds between methods has 20 distinct permutations with 3 + 3 seeds, so p ≥ 0.1;
* this test rejects 3.6% (3 + 3 seeds), 5.2% (5 + 5), 5.2% (3 vs a fixed model), 4.8% (5 vs
  fixed); the suite checks the 3- and 5-seed cases against α.

The price of honesty is power: for a true difference of 0.02 (two seed SDs) it is 37% with 3
seeds per side, 76% with 5, 49% with 3 seeds against a fixed model and 92% with 5 (the CIs cover
94–97%). Run more seeds to find smaller effects; 2 seeds leave one seed df and are not enough.

Relative improvement ``R = mean(A)/mean(B) − 1``: the same variance decomposition applied to the
delta-method linear combination ``(Ȳ_A − (1 + R) Ȳ_B) / Ȳ_B``, with its own Satterthwaite df.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["MixedResult", "SeedCube", "mixed_test"]


@dataclass(frozen=True)
class SeedCube:
    """One method's values ``[seeds × users × columns]`` and the summaries the test needs.

    ``values`` are the per-user metric values of every seed (same users, same order, in every
    seed); ``columns`` are the metrics (or comparisons) tested at once.
    """

    values: np.ndarray

    @property
    def n_seeds(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_users(self) -> int:
        return int(self.values.shape[1])

    def user_means(self) -> np.ndarray:
        """``[users × columns]`` each user's value averaged over seeds."""
        return np.asarray(self.values.mean(axis=0))

    def grand_mean(self) -> np.ndarray:
        """``[columns]`` the mean over seeds and users."""
        return np.asarray(self.values.mean(axis=(0, 1)))

    def seed_terms(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(var_s(seed means), MS_e)`` per column, or None with one seed (no seed variance).

        ``MS_e`` is the residual mean square of the additive seeds × users fit, with
        ``(S − 1)(n − 1)`` degrees of freedom.
        """
        s, n = self.n_seeds, self.n_users
        if s < 2:
            return None
        y = self.values
        seed_means = y.mean(axis=1)  # [S × k]
        resid = y - seed_means[:, None, :] - y.mean(axis=0)[None] + seed_means.mean(axis=0)
        ms_e = np.einsum("sui,sui->i", resid, resid) / ((s - 1) * (n - 1))
        return seed_means.var(axis=0, ddof=1), ms_e


@dataclass(frozen=True)
class MixedResult:
    """Per column: the estimate ``D``, its standard error and df, p, CI, relative improvement."""

    estimate: np.ndarray
    se: np.ndarray
    df: np.ndarray
    p: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    rel: np.ndarray
    rel_low: np.ndarray
    rel_high: np.ndarray
    seed_var_run: np.ndarray
    """REML estimate of the run's seed variance ``sigma_c^2`` (0 with one seed)."""
    seed_var_baseline: np.ndarray


DF_GUARD = 0.75
"""Confidence level of the upper bound the seed variance takes in the df formula (module docs)."""


def mixed_test(run: SeedCube, baseline: SeedCube, ci_level: float = 0.95, *, df_guard: float = DF_GUARD) -> MixedResult:
    """Two-sided test of ``mean(run) = mean(baseline)`` counting users and seeds (module docs).

    Both cubes hold the same users in the same order and the same columns. All-equal values
    give ``p = 1`` and a zero-width CI; a non-zero difference with no variance at all gives
    ``p = 0`` (as the paired t-test does). ``df_guard``: confidence level of the seed variance's
    upper bound in the df (module docs); 0 gives the plain Satterthwaite df.
    """
    guard = float(df_guard)
    if run.values.shape[1:] != baseline.values.shape[1:]:
        raise ValueError(f"run {run.values.shape} and baseline {baseline.values.shape} differ in users or columns")
    if run.n_users < 2:
        raise ValueError(f"need at least 2 users, got {run.n_users}")
    terms_run, terms_base = run.seed_terms(), baseline.seed_terms()
    mean_run, mean_base = run.grand_mean(), baseline.grand_mean()
    u_run, u_base = run.user_means(), baseline.user_means()
    est = mean_run - mean_base
    var, df = _combination_variance(
        guard, u_run - u_base, [(1.0, run.n_seeds, terms_run), (1.0, baseline.n_seeds, terms_base)]
    )
    p, lo, hi = _t_inference(est, var, df, ci_level)

    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(mean_base != 0.0, mean_run / mean_base - 1.0, np.nan)
        w_run = 1.0 / mean_base
        w_base = -mean_run / mean_base**2
        var_r, df_r = _combination_variance(
            guard,
            w_run * u_run + w_base * u_base,
            [(w_run, run.n_seeds, terms_run), (w_base, baseline.n_seeds, terms_base)],
        )
    _, rel_lo, rel_hi = _t_inference(rel, var_r, df_r, ci_level)
    return MixedResult(
        estimate=est,
        se=np.sqrt(var),
        df=df,
        p=p,
        ci_low=lo,
        ci_high=hi,
        rel=rel,
        rel_low=np.where(np.isfinite(rel), rel_lo, np.nan),
        rel_high=np.where(np.isfinite(rel), rel_hi, np.nan),
        seed_var_run=_seed_variance(terms_run, run.n_users, est.shape),
        seed_var_baseline=_seed_variance(terms_base, baseline.n_users, est.shape),
    )


def _seed_variance(terms: tuple[np.ndarray, np.ndarray] | None, n: int, shape: tuple[int, ...]) -> np.ndarray:
    if terms is None:
        return np.zeros(shape)
    var_means, ms_e = terms
    return np.maximum(0.0, var_means - ms_e / n)


def _combination_variance(
    guard: float,
    per_user: np.ndarray,
    sides: Sequence[tuple[np.ndarray | float, int, tuple[np.ndarray, np.ndarray] | None]],
) -> tuple[np.ndarray, np.ndarray]:
    """Variance and degrees of freedom of ``Σ_m w_m · mean(y_m)``.

    ``per_user`` is ``[users × columns]`` ``Σ_m w_m · (user's mean over m's seeds)``; ``sides``
    gives each method's weight, seed count and :meth:`SeedCube.seed_terms`. The variance is the
    sum of mean squares ``var(per_user)/n`` (n − 1 df), ``w² var_s/S`` (S − 1) and
    ``−w² MS_e/(n S)`` ((S − 1)(n − 1)), the last two dropped together where the seed variance
    estimate is not positive. The df is Satterthwaite's for that sum, with the seed part (of
    Welch–Satterthwaite df ``k``) at its upper ``guard`` confidence bound ``G · k / χ²_k(1 − guard)``
    (module docstring: why; ``guard = 0`` leaves it as estimated).
    """
    from scipy import stats as sps

    n = per_user.shape[0]
    user_term = per_user.var(axis=0, ddof=1) / n
    seed_part = np.zeros_like(user_term)
    seed_denom = np.zeros_like(user_term)
    resid_part = np.zeros_like(user_term)
    resid_denom = np.zeros_like(user_term)
    for weight, s, terms in sides:
        if terms is None:
            continue
        var_means, ms_e = terms
        keep = var_means > ms_e / n
        w2 = np.asarray(weight) ** 2
        seed_term = np.where(keep, w2 * var_means / s, 0.0)
        resid_term = np.where(keep, -w2 * ms_e / (n * s), 0.0)
        seed_part, seed_denom = seed_part + seed_term, seed_denom + seed_term**2 / (s - 1)
        resid_part, resid_denom = resid_part + resid_term, resid_denom + resid_term**2 / ((s - 1) * (n - 1))
    total = np.maximum(user_term + seed_part + resid_part, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(seed_denom > 0, seed_part**2 / seed_denom, 1.0)
        inflate = k / sps.chi2.ppf(1.0 - guard, k) if guard > 0 else np.ones_like(k)
        guarded = np.where(seed_denom > 0, seed_part * inflate, 0.0)
        denom = user_term**2 / (n - 1) + np.where(seed_denom > 0, guarded**2 / k, 0.0) + resid_denom
        df = np.where(denom > 0, (user_term + guarded + resid_part) ** 2 / denom, float(n - 1))
    return total, np.minimum(df, float(n - 1))


def _t_inference(
    est: np.ndarray, var: np.ndarray, df: np.ndarray, ci_level: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-sided p and the ``ci_level`` CI of ``est`` with standard error ``sqrt(var)`` and
    Student-t(df) quantiles; zero variance gives p = 1 for a zero estimate, else 0."""
    from scipy import stats as sps

    se = np.sqrt(var)
    scale = np.maximum(1.0, np.abs(est))
    degenerate = se <= 1e-12 * scale
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(degenerate, 0.0, est / np.where(degenerate, 1.0, se))
    dfs = np.where(np.isfinite(df) & (df > 0), df, 1.0)
    p = 2.0 * sps.t.sf(np.abs(t), dfs)
    p = np.where(degenerate, np.where(np.abs(est) <= 1e-12 * scale, 1.0, 0.0), p)
    half = sps.t.ppf(0.5 + ci_level / 2.0, dfs) * np.where(degenerate, 0.0, se)
    return np.clip(p, 0.0, 1.0), est - half, est + half
