"""Simulated comparisons with training seeds: how often a test rejects, when it should not and
when it should.

Per-user metric values of two methods, each trained with ``S`` seeds (or a deterministic
baseline), evaluated on the same users::

    y[m, s, u] = 0.3 + effect·[m = run] + a_u + b[m, u] + c[m, s] + e[m, s, u]

with SDs user 0.2, user × method 0.02, seed 0.01 (0 for a fixed baseline), residual 0.03 — the
audit's setting, where the paired t-test on seed-averaged values rejected a true null 84% of the
time. Used by the suite's null-rate test of :mod:`benchmark.stats.mixed` and by
``python -m benchmark.perf.seed_tests``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmark.stats.mixed import SeedCube, mixed_test

__all__ = ["ALPHA", "Rates", "Setting", "classic_t_p", "rejection_rates", "simulate"]

ALPHA = 0.05


@dataclass(frozen=True)
class Setting:
    """One simulated design: seeds per side (1 with ``seed_sd_base = 0``: a fixed model)."""

    seeds_run: int
    seeds_base: int
    effect: float = 0.0
    n_users: int = 2000
    user_sd: float = 0.2
    user_method_sd: float = 0.02
    seed_sd: float = 0.01
    resid_sd: float = 0.03

    @property
    def seed_sd_base(self) -> float:
        return self.seed_sd if self.seeds_base > 1 else 0.0


def simulate(rng: np.random.Generator, s: Setting, n_rep: int) -> tuple[np.ndarray, np.ndarray]:
    """``(run, baseline)`` values ``[seeds × users × n_rep]``: ``n_rep`` independent data sets."""
    a = rng.normal(0.0, s.user_sd, (s.n_users, n_rep)) + 0.3

    def method(n_seeds: int, shift: float, seed_sd: float) -> np.ndarray:
        b = rng.normal(0.0, s.user_method_sd, (s.n_users, n_rep))
        c = rng.normal(0.0, seed_sd, (n_seeds, 1, n_rep))
        e = rng.normal(0.0, s.resid_sd, (n_seeds, s.n_users, n_rep))
        return np.asarray(shift + a[None] + b[None] + c + e)

    return method(s.seeds_run, s.effect, s.seed_sd), method(s.seeds_base, 0.0, s.seed_sd_base)


def classic_t_p(run: np.ndarray, base: np.ndarray) -> np.ndarray:
    """The paired t-test's p per data set, on per-user means over seeds."""
    from scipy import stats as sps

    d = run.mean(axis=0) - base.mean(axis=0)
    n = d.shape[0]
    t = d.mean(axis=0) / (d.std(axis=0, ddof=1) / np.sqrt(n))
    return np.asarray(2.0 * sps.t.sf(np.abs(t), n - 1))


@dataclass(frozen=True)
class Rates:
    """Rejection rates at α = 0.05 and CI coverage of the mixed model, over ``n`` data sets."""

    n: int
    mixed: float
    mixed_plain_df: float
    """The mixed model with the plain (unguarded) Satterthwaite df."""
    classic_t: float
    covered: float
    """Share of the mixed model's 95% CIs of the difference that hold the true effect."""
    rel_covered: float
    """The same for its CI of the relative improvement."""
    median_df: float


def rejection_rates(rng: np.random.Generator, s: Setting, n_rep: int, chunk: int = 500, *, peers: bool = True) -> Rates:
    """Simulate ``n_rep`` data sets of setting ``s`` (in chunks, to bound memory) and test each;
    ``peers=False`` skips the plain-df and classic tests (their rates are then NaN)."""
    mixed = plain = classic = covered = rel_covered = 0
    dfs: list[np.ndarray] = []
    done = 0
    true_rel = s.effect / 0.3
    while done < n_rep:
        r = min(chunk, n_rep - done)
        run, base = simulate(rng, s, r)
        res = mixed_test(SeedCube(run), SeedCube(base))
        mixed += int(np.count_nonzero(res.p <= ALPHA))
        if peers:
            plain += int(np.count_nonzero(mixed_test(SeedCube(run), SeedCube(base), df_guard=0.0).p <= ALPHA))
            classic += int(np.count_nonzero(classic_t_p(run, base) <= ALPHA))
        covered += int(np.count_nonzero((res.ci_low <= s.effect) & (s.effect <= res.ci_high)))
        rel_covered += int(np.count_nonzero((res.rel_low <= true_rel) & (true_rel <= res.rel_high)))
        dfs.append(res.df)
        done += r
    nan = float("nan")
    return Rates(
        n_rep,
        mixed / n_rep,
        plain / n_rep if peers else nan,
        classic / n_rep if peers else nan,
        covered / n_rep,
        rel_covered / n_rep,
        float(np.median(dfs)),
    )
