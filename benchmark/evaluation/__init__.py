"""Evaluation: one masking rule, deterministic top-K, per-user metrics, subsets and TREC IO.

Entry points: :func:`evaluate` (a model on a split, full ranking, batch by batch) and
:func:`evaluate_topk` (top-K lists made elsewhere). See ``ARCHITECTURE.md`` (Evaluation).

The names below are imported on first use (PEP 562), so that reading
``benchmark.evaluation.metrics`` (the command line does, for its choices) does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmark.lazy import lazy_getattr

if TYPE_CHECKING:
    from benchmark.evaluation.evaluator import EvalResult, evaluate, evaluate_topk
    from benchmark.evaluation.masking import mask_seen, seen_parts_for
    from benchmark.evaluation.metrics import DEFAULT_METRICS, METRICS, item_coverage, parse_metric, parse_metrics
    from benchmark.evaluation.ranking import topk_items
    from benchmark.evaluation.subsets import subset_metrics
    from benchmark.evaluation.trec import read_qrels, read_run, write_qrels

_WHERE = {
    "EvalResult": "evaluator",
    "evaluate": "evaluator",
    "evaluate_topk": "evaluator",
    "mask_seen": "masking",
    "seen_parts_for": "masking",
    "topk_items": "ranking",
    "DEFAULT_METRICS": "metrics",
    "METRICS": "metrics",
    "item_coverage": "metrics",
    "parse_metric": "metrics",
    "parse_metrics": "metrics",
    "subset_metrics": "subsets",
    "read_qrels": "trec",
    "read_run": "trec",
    "write_qrels": "trec",
}

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


__getattr__ = lazy_getattr(__name__, _WHERE)
