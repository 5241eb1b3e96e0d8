"""Beyond-accuracy metrics of top-K lists: popularity bias, novelty, diversity, concentration.

Kernels on a ``[n_users × L]`` int array of dense item ids (rank order, ``-1`` = padding) cut at
``k``; ``L(u)`` below is user u's list at K without padding. Popularity is measured on the
**train** part: ``pop(i)`` = number of distinct training users of item i, ``|U|`` = number of
users with a training interaction. The names (:data:`benchmark.evaluation.metrics.BEYOND_METRIC_NAMES`)
are spelled in :mod:`benchmark.evaluation.metrics`; per-user ones become ``name@k`` columns like
the accuracy metrics, per-run ones go to :attr:`EvalResult.run_metrics`.

Per user: :func:`aplt`, :func:`novelty`, :func:`ild`. Per run: :func:`gini`,
:func:`tail_coverage` (item coverage is :class:`benchmark.evaluation.metrics.CoverageCounter`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from benchmark.features import ItemFeatures
    from benchmark.split import Split

__all__ = [
    "HEAD_SHARE",
    "BeyondContext",
    "aplt",
    "compute_beyond",
    "gini",
    "ild",
    "long_tail",
    "novelty",
    "tail_coverage",
]

_ILD_CHUNK = 512
HEAD_SHARE = 0.8
"""Share of training interactions the short head holds (Abdollahpouri et al. 2019; Elliot's default)."""


def long_tail(popularity: np.ndarray, head_share: float = HEAD_SHARE) -> np.ndarray:
    """Bool ``[n_items]``: the long tail = every item outside the short head.

    Short head: items by training popularity descending (ties: lower item id first), taken
    until their interactions reach ``head_share`` of all training interactions (the item that
    crosses the threshold is in the head) — Elliot's ``Popularity.get_short_head``. Difference
    from Elliot: there the tail holds only items with ≥ 1 training interaction; here items never
    seen in training are in the tail too (they are the least popular of all).
    """
    pop = np.asarray(popularity, dtype=np.float64)
    order = np.lexsort((np.arange(len(pop)), -pop))
    cum = np.cumsum(pop[order])
    n_head = int(np.searchsorted(cum, head_share * cum[-1] - 1e-9) + 1) if len(pop) and cum[-1] > 0 else 0
    tail = np.ones(len(pop), dtype=bool)
    tail[order[:n_head]] = False
    return tail


def _cut(topk: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    items = np.asarray(topk)
    if items.ndim != 2:
        raise ValueError(f"topk must be 2-d [n_users x L], got shape {items.shape}")
    items = items[:, :k]
    valid = items >= 0
    return np.where(valid, items, 0), valid


def aplt(topk: np.ndarray, tail: np.ndarray, k: int) -> np.ndarray:
    r"""APLT@K per user = \|L(u) ∩ tail\| / \|L(u)\| (0 for an empty list).

    Abdollahpouri et al. 2017/2019; Elliot's ``APLT`` (popularity_bias) with the same short head.
    """
    items, valid = _cut(topk, k)
    n = valid.sum(axis=1)
    in_tail = (np.asarray(tail, bool)[items] & valid).sum(axis=1)
    return np.divide(in_tail, n, out=np.zeros(len(n)), where=n > 0)


def novelty(topk: np.ndarray, popularity: np.ndarray, n_users: int, k: int) -> np.ndarray:
    r"""Novelty@K per user: mean self-information of the recommended items (Zhou et al. 2010),

    novelty(u) = (1/\|L(u)\|) Σ_{i ∈ L(u)} −log2((pop(i) + 1) / (\|U\| + 1)),

    in bits. The +1 (Laplace) keeps items without training users finite (log2(\|U\| + 1), the
    largest value). 0 for an empty list.
    """
    items, valid = _cut(topk, k)
    info = -np.log2((np.asarray(popularity, np.float64) + 1.0) / (float(n_users) + 1.0))
    n = valid.sum(axis=1)
    total = np.where(valid, info[items], 0.0).sum(axis=1)
    return np.divide(total, n, out=np.zeros(len(n)), where=n > 0)


def ild(topk: np.ndarray, features: np.ndarray, mask: np.ndarray | None, k: int) -> tuple[np.ndarray, int]:
    r"""Intra-list diversity@K per user on an item feature (Ziegler et al. 2005):

    ILD(u) = (1 / (n(n−1))) Σ_{i ≠ j ∈ L'(u)} (1 − cos(f_i, f_j)),

    the mean cosine distance over ordered pairs of L'(u) = the items of L(u) that have the
    feature (``mask``), n = \|L'(u)\|. A user with n < 2 has no pair: 0, and counted (returned
    second). Zero vectors have cosine 0 with everything.
    """
    return _ild_unit(topk, _unit_rows(features), mask, k)


def _unit_rows(features: np.ndarray) -> np.ndarray:
    """``features`` as float64 rows scaled to unit length (zero rows stay zero)."""
    f = np.asarray(features, np.float64)
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    return np.divide(f, norms, out=np.zeros_like(f), where=norms > 0)


def _ild_unit(topk: np.ndarray, unit: np.ndarray, mask: np.ndarray | None, k: int) -> tuple[np.ndarray, int]:
    """:func:`ild` on features already unit-normalised by :func:`_unit_rows` (done once per run, not per K)."""
    items, valid = _cut(topk, k)
    has = valid & (np.asarray(mask, bool)[items] if mask is not None else True)
    out = np.zeros(len(items))
    n = has.sum(axis=1).astype(np.float64)
    for start in range(0, len(items), _ILD_CHUNK):  # [chunk × k × d] at a time
        sl = slice(start, start + _ILD_CHUNK)
        v = unit[items[sl]] * has[sl, :, None]  # items without the feature are zero rows
        sim = np.einsum("ukd,ujd->ukj", v, v)
        pair_sim = sim.sum(axis=(1, 2)) - np.einsum("ukk->u", sim)  # off-diagonal sum of cosines
        pairs = n[sl] * (n[sl] - 1)
        out[sl] = np.divide(pairs - pair_sim, pairs, out=np.zeros(len(pairs)), where=pairs > 0)
    return out, int((n < 2).sum())


def gini(topk: np.ndarray, n_items: int, k: int) -> float:
    r"""Gini@K of how often each catalogue item is recommended (every item counted, 0s included):

    with c_(1) ≤ … ≤ c_(n) the sorted counts over the n catalogue items,
    G = Σ_{i=1..n} (2i − n − 1) c_(i) / ((n − 1) Σ_i c_i),

    0 when every item is recommended equally often, 1 when all recommendations are one item.
    Elliot's ``Gini`` (diversity) reports 1 − G with this normalisation; RecBole's
    ``GiniIndex`` divides by n instead of n − 1.
    """
    items, valid = _cut(topk, k)
    counts = np.sort(np.bincount(items[valid], minlength=int(n_items)).astype(np.float64))
    n, total = len(counts), counts.sum()
    if n < 2 or total == 0:
        return 0.0
    idx = np.arange(1, n + 1, dtype=np.float64)
    return float(((2 * idx - n - 1) * counts).sum() / ((n - 1) * total))


def tail_coverage(topk: np.ndarray, tail: np.ndarray, k: int) -> float:
    r"""Long-tail coverage@K = \|(⋃_u L(u)) ∩ tail\| / \|tail\| (Abdollahpouri et al. 2019's LTC);
    0 when the tail is empty."""
    items, valid = _cut(topk, k)
    t = np.asarray(tail, bool)
    seen = np.zeros(len(t), dtype=bool)
    seen[items[valid]] = True
    return float((seen & t).sum() / t.sum()) if t.any() else 0.0


@dataclass
class BeyondContext:
    """What the beyond-accuracy metrics need besides the lists: train popularity, the long tail
    and (for ILD) one item feature."""

    popularity: np.ndarray
    n_train_users: int
    tail: np.ndarray
    features: np.ndarray | None = None
    feature_mask: np.ndarray | None = None
    feature_name: str | None = None

    @classmethod
    def from_split(
        cls, split: Split, feature: ItemFeatures | None = None, head_share: float = HEAD_SHARE
    ) -> BeyondContext:
        """Popularity from ``split.train`` (distinct users per item); ``feature`` for ILD."""
        pairs = split.train[["user_id", "item_id"]].drop_duplicates()
        pop = np.bincount(pairs["item_id"].to_numpy(np.int64), minlength=split.n_items)
        feats = mask = None
        if feature is not None:
            feats, mask = feature.values.float().numpy(), feature.mask.numpy()
        n_users = int(pairs["user_id"].nunique())
        return cls(pop, n_users, long_tail(pop, head_share), feats, mask, feature.name if feature is not None else None)


def compute_beyond(
    topk: np.ndarray, ctx: BeyondContext, names: Iterable[str], ks: Iterable[int]
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-user columns (``aplt@10``, …) and run-level values (``gini@10``, …; with ``ild``, also
    ``ild_users_without_pair@k``) for every name and K."""
    cols: dict[str, np.ndarray] = {}
    run: dict[str, float] = {}
    n_items = len(ctx.popularity)
    unit: np.ndarray | None = None  # ILD's unit-length features, normalised at first use
    for k in ks:
        for name in names:
            label = f"{name}@{int(k)}"
            if name == "aplt":
                cols[label] = aplt(topk, ctx.tail, k)
            elif name == "novelty":
                cols[label] = novelty(topk, ctx.popularity, ctx.n_train_users, k)
            elif name == "ild":
                if ctx.features is None:
                    raise ValueError("ild needs an item feature (evaluation.diversity_feature)")
                if unit is None:
                    unit = _unit_rows(ctx.features)
                cols[label], run[f"ild_users_without_pair@{int(k)}"] = _ild_unit(topk, unit, ctx.feature_mask, k)
            elif name == "gini":
                run[label] = gini(topk, n_items, k)
            elif name == "tail_coverage":
                run[label] = tail_coverage(topk, ctx.tail, k)
            else:
                raise ValueError(f"unknown beyond-accuracy metric {name!r}")
    return cols, run
