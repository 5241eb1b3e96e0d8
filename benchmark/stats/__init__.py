"""Paired significance tests, multiple-comparison corrections and seed aggregation.

See :mod:`benchmark.stats.compare` for the tests and the exact conventions (zero differences,
CIs, seeding).
"""

from benchmark.stats.compare import RESULT_KEYS, TESTS, compare, wilcoxon_differences
from benchmark.stats.corrections import CORRECTIONS, adjust_pvalues
from benchmark.stats.resampling import bootstrap_means, signflip_pvalues
from benchmark.stats.seeds import aggregate_seeds

__all__ = [
    "CORRECTIONS",
    "RESULT_KEYS",
    "TESTS",
    "adjust_pvalues",
    "aggregate_seeds",
    "bootstrap_means",
    "compare",
    "signflip_pvalues",
    "wilcoxon_differences",
]
