"""Paired significance tests, multiple-comparison corrections and seed aggregation.

Layers, as in ranx/torchmetrics: :mod:`~benchmark.stats.paired` (one comparison from per-user
arrays), :mod:`~benchmark.stats.resampling` (bootstrap and sign-flip engines for a whole table),
:mod:`~benchmark.stats.corrections` (p-value adjustment), :mod:`~benchmark.stats.seeds` (per-user
averages over seeds), and the entry point :func:`~benchmark.stats.compare.compare`, whose module
documents the tests and the exact conventions (zero differences, CIs, seeding).
"""

from benchmark.stats.compare import MIN_RESAMPLES, RESULT_KEYS, TESTS, compare
from benchmark.stats.corrections import CORRECTIONS, adjust_pvalues
from benchmark.stats.paired import wilcoxon_differences
from benchmark.stats.resampling import bootstrap_means, signflip_pvalues
from benchmark.stats.seeds import aggregate_seeds

__all__ = [
    "CORRECTIONS",
    "MIN_RESAMPLES",
    "RESULT_KEYS",
    "TESTS",
    "adjust_pvalues",
    "aggregate_seeds",
    "bootstrap_means",
    "compare",
    "signflip_pvalues",
    "wilcoxon_differences",
]
