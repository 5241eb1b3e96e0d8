"""An item-to-item co-occurrence recommender (ItemCF) as an outside vlm4rec-bench plug-in.

score(u, j) = sum over the user's training items i of how many users had both i and j.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from benchmark.features import ItemFeatures
from benchmark.recommender import BaseRecommender
from benchmark.split import Split


class MyRecommender(BaseRecommender):
    def __init__(self, normalize: bool = True) -> None:
        super().__init__(normalize=normalize)

    def fit(self, split: Split, features: Mapping[str, ItemFeatures]) -> MyRecommender:
        super().fit(split, features)  # sets n_users, n_items
        train = split.train  # never split.test; split.valid is allowed for model selection
        x = torch.zeros(split.n_users, split.n_items)
        x[torch.tensor(train["user_id"].to_numpy()), torch.tensor(train["item_id"].to_numpy())] = 1.0
        cooc = x.T @ x
        cooc.fill_diagonal_(0.0)
        if self.params["normalize"]:  # cosine instead of raw counts, so popular items don't dominate
            norm = x.sum(0).clamp_min(1).sqrt()
            cooc = cooc / norm[:, None] / norm[None, :]
        self.history, self.cooc = x, cooc
        return self

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        # raw scores over the whole catalogue; the harness masks seen items and ranks
        return self.history[user_ids.cpu()] @ self.cooc
