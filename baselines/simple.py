"""Reference points every trained model must beat: most-popular, random, and ItemKNN on content.

- ``popularity``: an item's number of distinct train users (the evaluator breaks ties by lower
  item id, so equal counts rank deterministically).
- ``random``: a seeded pseudo-random score per (user, item) from a counter-based hash, so a
  user's scores do not depend on how users are batched.
- ``itemknn``: item-item cosine similarity over a content feature; a user's score for item i is
  the sum of the similarities between i and the user's train items, optionally keeping only each
  history item's ``neighbours`` most similar items (classic ItemKNN, self excluded).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from benchmark.features import ItemFeatures, concat_features
from benchmark.recommender import BaseRecommender
from benchmark.registry import register_model
from benchmark.split import Split


@register_model("popularity")
class MostPopular(BaseRecommender):
    """Scores every item by its train popularity (distinct users), the same for every user."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: torch.Tensor | None = None

    def fit(self, split: Split, features: Mapping[str, ItemFeatures] | None = None) -> MostPopular:
        super().fit(split, features or {})
        pairs = split.train[["user_id", "item_id"]].drop_duplicates()
        self.counts = torch.bincount(
            torch.from_numpy(pairs["item_id"].to_numpy(dtype=np.int64).copy()), minlength=split.n_items
        ).to(torch.float32)
        return self

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        if self.counts is None:
            raise RuntimeError("call fit() before score()")
        return self.counts.to(user_ids.device).expand(len(user_ids), -1).clone()


_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (a bijective 64-bit mix) on uint64 arrays; arithmetic wraps mod 2**64."""
    with np.errstate(over="ignore"):
        x = x + _GOLDEN
        x = (x ^ (x >> np.uint64(30))) * _M1
        x = (x ^ (x >> np.uint64(27))) * _M2
        return x ^ (x >> np.uint64(31))


@register_model("random")
class RandomRecommender(BaseRecommender):
    """Uniform random scores in [0, 1), a fixed function of (seed, user, item)."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__(seed=seed)

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        if self.n_items == 0:
            raise RuntimeError("call fit() before score()")
        with np.errstate(over="ignore"):
            u = user_ids.detach().cpu().numpy().astype(np.uint64)[:, None]
            i = np.arange(self.n_items, dtype=np.uint64)[None, :]
            seed = _splitmix64(np.array([self.params["seed"]], dtype=np.uint64))
            x = _splitmix64(_splitmix64(u ^ seed) + i)
        values = (x >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
        return torch.from_numpy(values.astype(np.float32)).to(user_ids.device)


@register_model("itemknn")
class ItemKNN(BaseRecommender):
    """Content ItemKNN: sum of cosine similarities to the user's train items.

    ``feature`` is an :class:`ItemFeatures` name or several joined by ``+`` (concatenated after
    L2-normalising each part). ``neighbours=None`` uses every item (then the score is exactly the
    dot product with the sum of the user's normalised item vectors); an integer keeps only each
    item's top-``neighbours`` most similar other items. Items without the feature score ``-inf``.
    """

    #: shipped search space: how many neighbours each history item keeps (``None``: all items)
    search_space: ClassVar[dict[str, Any]] = {"neighbours": [None, 5, 10, 20, 50, 100, 200]}

    def __init__(self, feature: str = "clip_image", neighbours: int | None = None, chunk_size: int = 2048) -> None:
        super().__init__(feature=feature, neighbours=neighbours, chunk_size=chunk_size)
        if neighbours is not None and neighbours < 1:
            raise ValueError(f"neighbours must be >= 1 or None, got {neighbours}")
        self.required_features = tuple(feature.split("+"))
        self.vectors: torch.Tensor | None = None
        self.item_mask: torch.Tensor | None = None
        self.history: sp.csr_matrix | None = None
        self.similarity: sp.csr_matrix | None = None

    def fit(self, split: Split, features: Mapping[str, ItemFeatures] | None = None) -> ItemKNN:
        features = features or {}
        super().fit(split, features)
        self.check_features(features, split)
        parts = [features[n] for n in self.required_features]
        normed = [ItemFeatures(p.name, F.normalize(p.values, dim=1), p.mask) for p in parts]
        feats = normed[0] if len(normed) == 1 else concat_features(self.params["feature"], normed)
        self.item_mask = feats.mask.clone()
        vec = F.normalize(feats.values, dim=1)
        vec[~self.item_mask] = 0.0
        self.vectors = vec
        pairs = split.train[["user_id", "item_id"]].drop_duplicates()
        self.history = sp.csr_matrix(
            (np.ones(len(pairs), dtype=np.float32), (pairs["user_id"].to_numpy(), pairs["item_id"].to_numpy())),
            shape=(split.n_users, split.n_items),
        )
        self.similarity = self._topk_similarity(vec) if self.params["neighbours"] is not None else None
        return self

    def _topk_similarity(self, vec: torch.Tensor) -> sp.csr_matrix:
        """Sparse ``[n_items × n_items]``: row j keeps j's top neighbours (self and featureless excluded)."""
        n = vec.shape[0]
        k = min(int(self.params["neighbours"]), n - 1)
        rows, cols, vals = [], [], []
        for start in range(0, n, int(self.params["chunk_size"])):
            stop = min(start + int(self.params["chunk_size"]), n)
            sim = vec[start:stop] @ vec.T
            sim[torch.arange(stop - start), torch.arange(start, stop)] = -float("inf")
            sim[:, ~self.item_mask] = -float("inf")
            top = torch.topk(sim, k, dim=1)
            keep = torch.isfinite(top.values)
            rows.append(torch.arange(start, stop)[:, None].expand_as(top.indices)[keep].numpy())
            cols.append(top.indices[keep].numpy())
            vals.append(top.values[keep].numpy())
        return sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        if self.vectors is None or self.history is None or self.item_mask is None:
            raise RuntimeError("call fit() before score()")
        hist = self.history[user_ids.detach().cpu().numpy()]
        if self.similarity is None:
            profile = torch.from_numpy(np.asarray(hist @ self.vectors.numpy(), dtype=np.float32))
            s = profile @ self.vectors.T
        else:
            s = torch.from_numpy(np.asarray((hist @ self.similarity).todense(), dtype=np.float32))
        s[:, ~self.item_mask] = -float("inf")
        return s.to(user_ids.device)
