"""Evaluation: one masking rule, deterministic top-K, per-user metrics, subsets and TREC IO.

Entry points: :func:`evaluate` (a model on a split, full ranking, batch by batch) and
:func:`evaluate_topk` (top-K lists made elsewhere). See ``ARCHITECTURE.md`` (Evaluation).
"""

from benchmark.evaluation.evaluator import EvalResult, evaluate, evaluate_topk
from benchmark.evaluation.masking import mask_seen, seen_parts_for
from benchmark.evaluation.metrics import DEFAULT_METRICS, METRICS, item_coverage, parse_metric, parse_metrics
from benchmark.evaluation.ranking import topk_items
from benchmark.evaluation.subsets import subset_metrics
from benchmark.evaluation.trec import read_qrels, read_run, write_qrels

__all__ = [
    "EvalResult",
    "evaluate",
    "evaluate_topk",
    "mask_seen",
    "seen_parts_for",
    "topk_items",
    "DEFAULT_METRICS",
    "METRICS",
    "item_coverage",
    "parse_metric",
    "parse_metrics",
    "subset_metrics",
    "read_qrels",
    "read_run",
    "write_qrels",
]
