"""Hyper-parameter search: the space format (:mod:`.space`), an experiment's policy
(:mod:`.config`) and one model's Optuna study (:mod:`.study`). The runner's wiring (which models
are searched, with which space, where the study lives) is :mod:`benchmark.runner.search`.

``study`` imports Optuna when a search runs, so importing this package stays cheap.
"""

from benchmark.search.config import SAMPLERS, SPACE_DEFAULTS, SearchBudget, SearchConfig, parse_metric
from benchmark.search.space import DIMENSION_KINDS, Dimension, Space, canonical_json

__all__ = [
    "DIMENSION_KINDS",
    "SAMPLERS",
    "SPACE_DEFAULTS",
    "Dimension",
    "SearchBudget",
    "SearchConfig",
    "Space",
    "canonical_json",
    "parse_metric",
]
