"""Rank statistics across datasets and protocols: mean ranks, Friedman + post-hoc, Kendall's τ.

* :func:`mean_ranks` — each model's rank within each block (dataset, or dataset × metric column;
  1 = best, ties share their average rank, Demšar 2006 §3.2.2), averaged over the blocks.
* :func:`friedman` — Friedman's test over datasets (:func:`scipy.stats.friedmanchisquare`) with
  the Nemenyi post-hoc (:func:`scikit_posthocs.posthoc_nemenyi_friedman`) and Nemenyi's
  critical difference (Demšar 2006, eq. 5; ``q_α`` from the studentized range via
  :func:`scipy.stats.studentized_range`). It refuses too few datasets (:func:`min_datasets`):
  with N datasets and k models the smallest p-value Friedman's exact null distribution can give
  is ``(1/k!)^(N−1)`` (every dataset ranking the models as the first does), and the largest
  possible mean-rank difference is k − 1, so below that N either no outcome could be
  significant at α or no pair could ever exceed the critical difference; it also needs k ≥ 3
  models (with two it is the sign test). With fewer than 10 datasets the χ² approximation is rough
  (Demšar 2006): the result says so.
* :func:`kendall_tau` — Kendall's τ-b between two orders of the same models
  (:func:`scipy.stats.kendalltau`) with a percentile bootstrap CI over users: each side's
  per-user values are resampled (independently: two protocols need not share users), the
  model means recomputed and τ recomputed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmark.errors import BenchError

__all__ = ["FriedmanResult", "TooFewDatasets", "friedman", "kendall_tau", "mean_ranks", "min_datasets"]

CHI2_RELIABLE_N = 10
"""Datasets from which the χ² approximation of Friedman's statistic is usually adequate (Demšar 2006)."""


class TooFewDatasets(BenchError, ValueError):
    """Friedman's test over fewer datasets (or models) than it needs to mean anything."""


def block_ranks(values: pd.DataFrame) -> pd.DataFrame:
    """Rank the models (columns) within each block (row): 1 = highest value, ties averaged."""
    return values.rank(axis=1, ascending=False, method="average")


def mean_ranks(values: pd.DataFrame) -> pd.Series:
    """Each model's (column's) mean of :func:`block_ranks` over the blocks (rows)."""
    return block_ranks(values).mean(axis=0)


def min_datasets(n_models: int, alpha: float) -> int:
    """Fewest datasets for which, with ``n_models`` models, Friedman's exact test can reach
    ``p ≤ alpha`` (smallest N with ``(1/k!)^(N−1) ≤ alpha``) **and** Nemenyi's critical
    difference is below the largest possible mean-rank difference ``k − 1`` (module docstring)."""
    from scipy import stats

    k = int(n_models)
    if k < 2:
        raise ValueError("Friedman's test needs at least 2 models")
    exact = 1 + math.ceil(math.log(alpha) / -math.lgamma(k + 1) - 1e-12)
    q = float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    posthoc = math.floor(q * q * k * (k + 1) / (6.0 * (k - 1) ** 2)) + 1
    return max(exact, posthoc)


@dataclass
class FriedmanResult:
    """Friedman's test over datasets and its Nemenyi post-hoc."""

    statistic: float
    p: float
    n_datasets: int
    n_models: int
    mean_ranks: pd.Series
    """Models → mean rank (1 = best)."""
    posthoc: pd.DataFrame
    """Nemenyi p-values, models × models."""
    critical_difference: float
    alpha: float
    metric: str = ""

    @property
    def chi2_rough(self) -> bool:
        return self.n_datasets < CHI2_RELIABLE_N

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "test": "friedman",
            "posthoc": "nemenyi",
            "statistic": self.statistic,
            "p": self.p,
            "n_datasets": self.n_datasets,
            "n_models": self.n_models,
            "alpha": self.alpha,
            "mean_ranks": {str(k): float(v) for k, v in self.mean_ranks.items()},
            "critical_difference": self.critical_difference,
            "posthoc_p": {str(a): {str(b): float(v) for b, v in row.items()} for a, row in self.posthoc.iterrows()},
            "chi2_approximation_rough": self.chi2_rough,
        }


def friedman(values: pd.DataFrame, alpha: float = 0.05, metric: str = "") -> FriedmanResult:
    """Friedman's test on ``values`` (datasets × models, higher is better) and the Nemenyi post-hoc.

    Raises:
        TooFewDatasets: fewer than 3 models, or fewer datasets than :func:`min_datasets`.
        ValueError: missing values (every model needs a result on every dataset).
    """
    import scikit_posthocs as sp
    from scipy import stats

    if values.isna().any().any():
        raise ValueError("Friedman's test needs every model on every dataset; drop the incomplete ones first")
    n, k = values.shape
    if k < 3:
        raise TooFewDatasets(
            f"Friedman's test needs at least 3 models with results on every dataset; got {k} ({', '.join(map(str, values.columns))})"
        )
    need = min_datasets(k, alpha)
    if n < need:
        raise TooFewDatasets(
            f"Friedman's test over {n} dataset(s) cannot mean anything: with {k} models it needs at least {need} "
            f"datasets for the test to be able to reach p ≤ {alpha} (smallest exact p = (1/{k}!)^(N−1)) and for its "
            f"Nemenyi critical difference to be below the largest possible rank difference {k - 1}; "
            f"{CHI2_RELIABLE_N}+ for its χ² approximation to be adequate"
        )
    stat, p = stats.friedmanchisquare(*[values[c].to_numpy(np.float64) for c in values.columns])
    # scikit-posthocs ranks ascending; negate so that rank 1 = best (higher metric), as ours.
    posthoc = sp.posthoc_nemenyi_friedman(-values.to_numpy(np.float64))
    posthoc.index = posthoc.columns = list(values.columns)
    q_alpha = float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    cd = q_alpha * math.sqrt(k * (k + 1) / (6.0 * n))
    return FriedmanResult(float(stat), float(p), n, k, mean_ranks(values), posthoc, cd, alpha, metric)


def kendall_tau(
    a: Mapping[str, np.ndarray],
    b: Mapping[str, np.ndarray],
    *,
    n_resamples: int = 2000,
    ci_level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Kendall's τ-b between the model orders of ``a`` and ``b`` (model → per-user values, each
    side's arrays aligned on its users) with a percentile bootstrap CI over users.

    Returns ``{"tau", "p", "ci_low", "ci_high", "ci_level", "n_models", "n_resamples", "method"}``;
    τ is NaN (and the CI too) when a side has every model tied.
    """
    from scipy import stats

    models = [m for m in a if m in b]
    if len(models) < 2:
        raise ValueError(f"Kendall's τ needs at least 2 models on both sides; got {len(models)}")
    xa = np.column_stack([np.asarray(a[m], np.float64) for m in models])  # users × models
    xb = np.column_stack([np.asarray(b[m], np.float64) for m in models])
    res = stats.kendalltau(xa.mean(axis=0), xb.mean(axis=0))
    rng = np.random.default_rng(seed)
    taus = np.empty(n_resamples)
    for i in range(n_resamples):
        ma = xa[rng.integers(0, len(xa), len(xa))].mean(axis=0)
        mb = xb[rng.integers(0, len(xb), len(xb))].mean(axis=0)
        taus[i] = stats.kendalltau(ma, mb).statistic
    ok = taus[np.isfinite(taus)]
    lo, hi = np.quantile(ok, [(1 - ci_level) / 2, (1 + ci_level) / 2]) if len(ok) else (np.nan, np.nan)
    return {
        "tau": float(res.statistic),
        "p": float(res.pvalue),
        "ci_low": float(lo),
        "ci_high": float(hi),
        "ci_level": ci_level,
        "n_models": len(models),
        "n_resamples": n_resamples,
        "method": "Kendall's tau-b of the model means; percentile bootstrap CI over users (each side resampled)",
    }


def complete_models(values: Mapping[str, Mapping[str, float]], models: Sequence[str]) -> list[str]:
    """The models of ``models`` that have a value in every block of ``values`` (block → model → value)."""
    return [m for m in models if all(m in row and row[m] is not None for row in values.values())]
