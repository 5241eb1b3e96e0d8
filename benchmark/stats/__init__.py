"""Paired significance tests, multiple-comparison corrections and seed aggregation.

Layers, as in ranx/torchmetrics: :mod:`~benchmark.stats.paired` (one classic comparison from
per-user arrays), :mod:`~benchmark.stats.mixed` (the test over users and training seeds),
:mod:`~benchmark.stats.resampling` (bootstrap and sign-flip engines for a whole table),
:mod:`~benchmark.stats.corrections` (p-value adjustment), :mod:`~benchmark.stats.families` (which
comparisons are corrected together, and how each test is named), :mod:`~benchmark.stats.tables`
(per-user tables aligned user by user), :mod:`~benchmark.stats.seeds` (per-user averages and
spread over seeds), and the entry point :func:`~benchmark.stats.compare.compare`, whose module
documents the tests and the exact conventions (direction, zero differences, CIs, seeding).
"""

from benchmark.stats.compare import CLASSIC_TESTS, MIN_RESAMPLES, RESULT_KEYS, TESTS, compare
from benchmark.stats.corrections import CORRECTIONS, adjust_pvalues
from benchmark.stats.families import COMPARISONS, all_pairs, dedupe_pairs, family_record, test_label
from benchmark.stats.mixed import SeedCube, mixed_test
from benchmark.stats.paired import hodges_lehmann, signed_rank_sum, wilcoxon_differences
from benchmark.stats.resampling import bootstrap_means, signflip_pvalues
from benchmark.stats.seeds import aggregate_seeds

__all__ = [
    "CLASSIC_TESTS",
    "COMPARISONS",
    "CORRECTIONS",
    "MIN_RESAMPLES",
    "RESULT_KEYS",
    "TESTS",
    "SeedCube",
    "adjust_pvalues",
    "aggregate_seeds",
    "all_pairs",
    "bootstrap_means",
    "compare",
    "dedupe_pairs",
    "family_record",
    "hodges_lehmann",
    "mixed_test",
    "signed_rank_sum",
    "signflip_pvalues",
    "test_label",
    "wilcoxon_differences",
]
