"""Profile matching: a user is an aggregate of their history's item vectors; items are
ranked by cosine similarity to it. This is VLM4Rec's recommender and also the paper's
training-free CLIP baselines (vision-only, text-only, naive, concat), so it lives in the
harness and both packages use it.

Aggregations
- ``mean`` (the paper): unweighted mean of the user's training items.
- ``last_n``: mean of the ``last_n`` most recent training items (the paper's code tried 10).
- ``exp_recency``: weights ``decay**k`` for the k-th most recent item (k = 0 for the latest).

Recency follows ``timestamp`` with ``item_id`` breaking ties, so it is deterministic.
Item vectors are L2-normalised before aggregation (``normalize_items=True``), so each history
item counts equally whatever its norm; the profile is normalised again for cosine scoring.
Items without the feature (``mask`` False) are left out of profiles and score ``-inf``.
A user with no usable history gets a zero profile, i.e. every item scores 0 and the
evaluator's tie rule (lower item id first) decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from benchmark.features import ItemFeatures
from benchmark.recommender import BaseRecommender
from benchmark.split import Split

AGGREGATIONS = ("mean", "last_n", "exp_recency")


def history_weights(
    history: pd.DataFrame, aggregation: str = "mean", last_n: int = 10, decay: float = 0.9
) -> np.ndarray:
    """Per-row weights for ``history`` (columns ``user_id``, ``item_id``, ``timestamp``)."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; allowed: {', '.join(AGGREGATIONS)}")
    n = len(history)
    if aggregation == "mean" or n == 0:
        return np.ones(n, dtype=np.float64)
    order = np.lexsort(
        (-history["item_id"].to_numpy(), -history["timestamp"].to_numpy(), history["user_id"].to_numpy())
    )
    # rank from the most recent: 0 = latest interaction of that user
    users_sorted = history["user_id"].to_numpy()[order]
    starts = np.r_[0, np.flatnonzero(np.diff(users_sorted)) + 1]
    rank_sorted = np.arange(n) - np.repeat(starts, np.diff(np.r_[starts, n]))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = rank_sorted
    if aggregation == "last_n":
        if last_n < 1:
            raise ValueError(f"last_n must be >= 1, got {last_n}")
        return (rank < last_n).astype(np.float64)
    if not 0.0 < decay <= 1.0:
        raise ValueError(f"decay must be in (0, 1], got {decay}")
    return decay ** rank.astype(np.float64)


def build_profiles(
    history: pd.DataFrame,
    item_vectors: torch.Tensor,
    item_mask: torch.Tensor,
    n_users: int,
    aggregation: str = "mean",
    last_n: int = 10,
    decay: float = 0.9,
) -> torch.Tensor:
    """Weighted mean of each user's history item vectors: ``[n_users, d]`` (zeros if none)."""
    w = torch.from_numpy(history_weights(history, aggregation, last_n, decay))
    users = torch.tensor(history["user_id"].to_numpy(dtype=np.int64))
    items = torch.tensor(history["item_id"].to_numpy(dtype=np.int64))
    keep = item_mask[items] & (w > 0)
    users, items, w = users[keep], items[keep], w[keep].to(torch.float64)
    vec = item_vectors.to(torch.float64)
    sums = torch.zeros(n_users, vec.shape[1], dtype=torch.float64).index_add_(0, users, vec[items] * w[:, None])
    total = torch.zeros(n_users, dtype=torch.float64).index_add_(0, users, w)
    prof = sums / total.clamp_min(1e-300)[:, None]
    prof[total == 0] = 0.0
    return prof.to(torch.float32)


class ProfileMatcher(BaseRecommender):
    """Cosine similarity between a user's aggregated history and every item.

    ``feature`` names one :class:`ItemFeatures` entry, or several joined with ``+``:
    ``"clip_image+clip_text"`` concatenates the (per-part normalised) vectors, and
    ``fusion="average"`` instead averages them (the paper's naive 50/50 fusion; parts must
    share a dimension).
    """

    FUSIONS = ("concat", "average")

    def __init__(
        self,
        feature: str = "text",
        aggregation: str = "mean",
        last_n: int = 10,
        decay: float = 0.9,
        fusion: str = "concat",
        weights: Sequence[float] | None = None,
        normalize_items: bool = True,
        history_parts: Sequence[str] = ("train",),
    ) -> None:
        super().__init__(
            feature=feature,
            aggregation=aggregation,
            last_n=last_n,
            decay=decay,
            fusion=fusion,
            weights=list(weights) if weights is not None else None,
            normalize_items=normalize_items,
            history_parts=list(history_parts),
        )
        if aggregation not in AGGREGATIONS:
            raise ValueError(f"unknown aggregation {aggregation!r}; allowed: {', '.join(AGGREGATIONS)}")
        if fusion not in self.FUSIONS:
            raise ValueError(f"unknown fusion {fusion!r}; allowed: {', '.join(self.FUSIONS)}")
        if "test" in history_parts:
            raise ValueError("history_parts must not include 'test' (that is what is being predicted)")
        self.feature_names = tuple(feature.split("+"))
        self.required_features = self.feature_names
        self.item_vectors: torch.Tensor | None = None
        self.item_mask: torch.Tensor | None = None
        self.profiles: torch.Tensor | None = None
        self._matrix: torch.Tensor | None = None

    def item_matrix(self, features: Mapping[str, ItemFeatures]) -> tuple[torch.Tensor, torch.Tensor]:
        """The (fused) item matrix and the mask of items that have every part."""
        parts = [features[n] for n in self.feature_names]
        vecs = [F.normalize(p.values, dim=1) if self.params["normalize_items"] else p.values for p in parts]
        w = self.params["weights"] or [1.0] * len(vecs)
        if len(w) != len(vecs):
            raise ValueError(f"weights has {len(w)} entries for {len(vecs)} features")
        mask = torch.stack([p.mask for p in parts]).all(dim=0)
        if self.params["fusion"] == "average":
            dims = {v.shape[1] for v in vecs}
            if len(dims) != 1:
                raise ValueError(f"fusion='average' needs features of one dimension, got {sorted(dims)}")
            total = sum(wi * v for wi, v in zip(w, vecs))
            mat = total / sum(w)
        else:
            mat = torch.cat([wi * v for wi, v in zip(w, vecs)], dim=1)
        return mat, mask

    def fit(self, split: Split, features: Mapping[str, ItemFeatures]) -> ProfileMatcher:
        super().fit(split, features)
        self.check_features(features, split)
        mat, mask = self.item_matrix(features)
        self._matrix, self.item_mask = mat, mask
        self.item_vectors = F.normalize(mat, dim=1)
        self.use_history(split, self.params["history_parts"])
        return self

    def use_history(self, split: Split, parts: Sequence[str]) -> bool:
        """Rebuild every user's profile from ``parts`` of ``split`` (no refit: the item vectors
        stay); returns True. The ``captioned-only`` evaluation mode uses train + valid, as the
        paper's script builds profiles from both."""
        if self._matrix is None or self.item_mask is None:
            raise RuntimeError("call fit() before use_history()")
        if "test" in parts:
            raise ValueError("a profile must not include 'test' (that is what is being predicted)")
        history = pd.concat([split.part(p) for p in parts], ignore_index=True)
        mask = self.item_mask.cpu()
        prof = build_profiles(
            history,
            self._matrix,
            mask,
            split.n_users,
            self.params["aggregation"],
            self.params["last_n"],
            self.params["decay"],
        )
        dev = self.item_vectors.device if self.item_vectors is not None else torch.device("cpu")
        self.profiles = F.normalize(prof, dim=1).to(dev)
        self.history_parts = list(parts)
        return True

    @torch.no_grad()
    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        if self.profiles is None or self.item_vectors is None or self.item_mask is None:
            raise RuntimeError("call fit() before score()")
        dev = user_ids.device
        if self.item_vectors.device != dev:  # move the model once, not once per scored batch
            self.item_vectors, self.item_mask, self.profiles = (
                t.to(dev) for t in (self.item_vectors, self.item_mask, self.profiles)
            )
        s = self.profiles[user_ids] @ self.item_vectors.T
        s[:, ~self.item_mask] = float("-inf")
        return s
