"""Per-user ranking metrics: exactly one definition of each (ranx style).

Every metric takes

- ``hits``: a ``[n_users × L]`` bool/0-1 array, ``hits[u, r-1]`` is true when the item at rank ``r``
  of user ``u``'s deterministic ranking is relevant. Lists shorter than ``L`` (a user with fewer
  recommendable items) are padded with ``False``.
- ``n_relevant``: ``[n_users]`` number of relevant items of each user (in the evaluated part).
- ``k``: the cut-off; ``None`` means ``L``. ``k`` may exceed ``L`` (e.g. K larger than the
  catalogue): missing ranks count as misses.

and returns a float64 array ``[n_users]``. A user with ``n_relevant == 0`` gets 0 from every
metric (the evaluator excludes such users before they get here and counts them).

The definitions match ranx 0.3.x (checked to 1e-9 in ``tests/test_metrics.py``), with binary
relevance. Where tools disagree this is noted in the docstring.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence

import numpy as np

__all__ = [
    "METRICS",
    "BEYOND_METRIC_NAMES",
    "EVALUATION_METRIC_NAMES",
    "RUN_METRICS",
    "USER_BEYOND_METRICS",
    "DEFAULT_METRICS",
    "MetricSpec",
    "recall",
    "ndcg",
    "hitrate",
    "precision",
    "mrr",
    "map_",
    "item_coverage",
    "CoverageCounter",
    "compute",
    "parse_metric",
    "parse_metrics",
]


def _prep(hits: np.ndarray, n_relevant: np.ndarray, k: int | None) -> tuple[np.ndarray, np.ndarray, int]:
    h = np.asarray(hits)
    if h.ndim != 2:
        raise ValueError(f"hits must be 2-d [n_users x K], got shape {h.shape}")
    n_rel = np.asarray(n_relevant, dtype=np.float64).reshape(-1)
    if len(n_rel) != h.shape[0]:
        raise ValueError(f"n_relevant has {len(n_rel)} entries but hits has {h.shape[0]} rows")
    k = h.shape[1] if k is None else int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    return h[:, :k].astype(np.float64, copy=False), n_rel, k


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.zeros_like(num, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def recall(hits: np.ndarray, n_relevant: np.ndarray, k: int | None = None) -> np.ndarray:
    r"""Recall@K = (number of hits in the top K) / \|relevant\|."""
    h, n_rel, _ = _prep(hits, n_relevant, k)
    return _safe_div(h.sum(axis=1), n_rel)


def ndcg(hits: np.ndarray, n_relevant: np.ndarray, k: int | None = None) -> np.ndarray:
    r"""NDCG@K with binary gain.

    DCG@K = Σ_{r=1..K} hit_r / log2(r + 1); IDCG@K = Σ_{r=1..min(K, \|relevant\|)} 1 / log2(r + 1);
    NDCG@K = DCG@K / IDCG@K. (For binary gain Järvelin's and Burges' forms coincide.)
    """
    h, n_rel, k = _prep(hits, n_relevant, k)
    disc = 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))
    dcg = h @ disc[: h.shape[1]]
    ideal_cum = np.concatenate([[0.0], np.cumsum(disc)])
    idcg = ideal_cum[np.minimum(n_rel, k).astype(np.int64)]
    return _safe_div(dcg, idcg)


def hitrate(hits: np.ndarray, n_relevant: np.ndarray, k: int | None = None) -> np.ndarray:
    """HitRate@K = 1 if any of the top K items is relevant, else 0."""
    h, n_rel, _ = _prep(hits, n_relevant, k)
    return ((h.sum(axis=1) > 0) & (n_rel > 0)).astype(np.float64)


def precision(hits: np.ndarray, n_relevant: np.ndarray, k: int | None = None) -> np.ndarray:
    """Precision@K = (number of hits in the top K) / K.

    K is the cut-off *as asked*, even when the list is shorter (fewer recommendable items, or K
    larger than the catalogue) — as in ranx and trec_eval, so Precision@K stays comparable across
    models that return lists of different lengths.
    """
    h, n_rel, k = _prep(hits, n_relevant, k)
    return np.where(n_rel > 0, h.sum(axis=1) / k, 0.0)


def mrr(hits: np.ndarray, n_relevant: np.ndarray, k: int | None = None) -> np.ndarray:
    """MRR@K (reciprocal rank) = 1 / rank of the first relevant item within the top K, 0 if none."""
    h, n_rel, _ = _prep(hits, n_relevant, k)
    any_hit = (h > 0).any(axis=1) & (n_rel > 0)
    first = np.argmax(h > 0, axis=1) + 1
    return np.where(any_hit, 1.0 / first, 0.0)


def map_(hits: np.ndarray, n_relevant: np.ndarray, k: int | None = None) -> np.ndarray:
    r"""MAP@K (per user: average precision at K).

    AP@K = Σ_{r=1..K} Precision@r · hit_r / \|relevant\|.

    The denominator is the *total* number of relevant items, as in ranx and trec_eval; RecBole
    divides by min(K, \|relevant\|) instead, so its MAP@K is ≥ ours when a user has more than K
    relevant items.
    """
    h, n_rel, _ = _prep(hits, n_relevant, k)
    ranks = np.arange(1, h.shape[1] + 1, dtype=np.float64)
    prec_at_r = np.cumsum(h, axis=1) / ranks
    return _safe_div((prec_at_r * h).sum(axis=1), n_rel)


METRICS: dict[str, Callable[[np.ndarray, np.ndarray, int | None], np.ndarray]] = {
    "recall": recall,
    "ndcg": ndcg,
    "hitrate": hitrate,
    "precision": precision,
    "mrr": mrr,
    "map": map_,
}
"""Per-user metrics by name (the names used in ``metric@k`` column labels)."""

METRIC_NAMES: tuple[str, ...] = tuple(METRICS)
"""The per-user accuracy metric names, in table order (hit matrix + relevant counts only; what a
trainer's validation metric may be)."""

USER_BEYOND_METRICS: tuple[str, ...] = ("aplt", "novelty", "ild")
"""Per-user beyond-accuracy metrics of the top-K lists (:mod:`benchmark.evaluation.beyond`):
average percentage of long-tail items, novelty (mean self-information), intra-list diversity."""
RUN_METRICS: tuple[str, ...] = ("gini", "tail_coverage")
"""Per-run beyond-accuracy metrics (:mod:`benchmark.evaluation.beyond`): Gini of recommendation
counts, long-tail coverage (item coverage is always reported)."""
BEYOND_METRIC_NAMES: tuple[str, ...] = (*USER_BEYOND_METRICS, *RUN_METRICS)
EVALUATION_METRIC_NAMES: tuple[str, ...] = (*METRIC_NAMES, *BEYOND_METRIC_NAMES)
"""Every name an evaluation may ask for (``evaluation.metrics``, ``evaluate --metrics``): the one list."""

DEFAULT_METRICS: tuple[str, ...] = METRIC_NAMES


class CoverageCounter:
    r"""Accumulates the union of recommended items, batch by batch, for item coverage@K.

    Coverage@K = \|⋃_u topK(u)\| / n_items: the fraction of the catalogue appearing in at least
    one user's top K. A run-level number, not per user. Item ids are dense ints in
    ``[0, n_items)`` (``-1`` = padding), or arbitrary hashable labels when ``labels=True``.
    """

    def __init__(self, n_items: int, labels: bool = False) -> None:
        if n_items <= 0:
            raise ValueError(f"n_items must be positive, got {n_items}")
        self.n_items = int(n_items)
        self._seen = None if labels else np.zeros(self.n_items, dtype=bool)
        self._labels: set = set()

    def update(self, items: np.ndarray | Iterable) -> None:
        """Add recommended items (any shape); ``-1``/``None`` entries are padding."""
        if self._seen is None:
            self._labels.update(x for x in np.asarray(items, dtype=object).reshape(-1) if x is not None and x != -1)
            return
        arr = np.asarray(items).reshape(-1)
        arr = arr[arr >= 0]
        if len(arr) and arr.max() >= self.n_items:
            raise ValueError(f"item id {int(arr.max())} out of range for a catalogue of {self.n_items}")
        self._seen[arr] = True

    def value(self) -> float:
        n = len(self._labels) if self._seen is None else int(self._seen.sum())
        if n > self.n_items:
            raise ValueError(f"{n} distinct recommended items but the catalogue has only {self.n_items}")
        return n / self.n_items


def item_coverage(topk_items: np.ndarray, n_items: int, k: int | None = None) -> float:
    """Item coverage@K (see :class:`CoverageCounter`) of a ``[n_users × L]`` id array, ``-1`` = padding."""
    items = np.asarray(topk_items)
    if items.ndim != 2:
        raise ValueError(f"topk_items must be 2-d, got shape {items.shape}")
    counter = CoverageCounter(n_items)
    counter.update(items[:, : (items.shape[1] if k is None else int(k))])
    return counter.value()


def compute(
    hits: np.ndarray, n_relevant: np.ndarray, metrics: Iterable[str], ks: Iterable[int]
) -> dict[str, np.ndarray]:
    """Every ``metric@k`` column for the given hit matrix: ``{"recall@10": array, ...}``."""
    out: dict[str, np.ndarray] = {}
    for k in ks:
        for name in metrics:
            if name not in METRICS:
                raise ValueError(f"unknown metric {name!r}; allowed: {', '.join(METRICS)}")
            out[f"{name}@{int(k)}"] = METRICS[name](hits, n_relevant, int(k))
    return out


class MetricSpec(tuple):
    """A parsed ``name@k`` (a ``(name, k)`` tuple with a ``label``)."""

    __slots__ = ()

    def __new__(cls, name: str, k: int) -> MetricSpec:
        return super().__new__(cls, (name, k))

    @property
    def name(self) -> str:
        return self[0]

    @property
    def k(self) -> int:
        return self[1]

    @property
    def label(self) -> str:
        return f"{self[0]}@{self[1]}"


_ALIASES = {"hit_rate": "hitrate", "hr": "hitrate", "hit": "hitrate", "rr": "mrr", "ap": "map"}
_PATTERN = re.compile(r"^\s*([A-Za-z_]+)\s*@\s*(\d+)\s*$")


def parse_metric(text: str) -> MetricSpec:
    """Parse ``"recall@10"`` (case-insensitive; ``hit_rate``/``hr`` → ``hitrate``) into a spec;
    beyond-accuracy names (``aplt@10``, ``gini@20``, …) are accepted too."""
    m = _PATTERN.match(str(text))
    allowed = ", ".join(f"{n}@K" for n in EVALUATION_METRIC_NAMES)
    if not m:
        raise ValueError(f"cannot parse metric {text!r}: expected NAME@K with NAME one of {allowed}")
    name = m.group(1).lower()
    name = _ALIASES.get(name, name)
    if name not in EVALUATION_METRIC_NAMES:
        raise ValueError(f"unknown metric {m.group(1)!r} in {text!r}; allowed: {allowed}")
    k = int(m.group(2))
    if k < 1:
        raise ValueError(f"cut-off must be >= 1 in {text!r}")
    return MetricSpec(name, k)


def parse_metrics(texts: str | Sequence[str]) -> list[MetricSpec]:
    """Parse a comma-separated string or a list of ``name@k``; duplicates are dropped, order kept."""
    items = texts.split(",") if isinstance(texts, str) else list(texts)
    out: list[MetricSpec] = []
    for t in items:
        if not str(t).strip():
            continue
        spec = parse_metric(t)
        if spec not in out:
            out.append(spec)
    if not out:
        raise ValueError("no metric given")
    return out
