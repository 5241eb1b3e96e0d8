"""BPR-MF (Rendle et al., UAI 2009): ``score(u, i) = γ_u·γ_i (+ β_i)``, BPR loss, L2 regularisation.

The loss of a batch of triples (u, i, j) is, like Cornac's BPR/VBPR, a sum over the batch:
``-Σ log σ(x_ui − x_uj) + λ/2 (‖γ_u‖² + ‖γ_i‖² + ‖γ_j‖²) + λ_b/2 (β_i² + β_j²)``, regularising
only the rows used in the batch. Factors are Glorot-uniform, biases start at zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from baselines.trainable import TrainableRecommender, gather_rows, xavier_uniform
from benchmark.features import ItemFeatures
from benchmark.registry import register_model
from benchmark.split import Split
from benchmark.train_config import TrainConfig


@register_model("bpr")
class BPRMF(TrainableRecommender):
    """Matrix factorisation trained with the BPR pairwise loss."""

    #: the trainer settings this model used before TrainConfig existed (its results stay the same)
    train_defaults: ClassVar[dict[str, Any]] = {"lr": 5e-3, "max_epochs": 100}
    loss_reduction: ClassVar[str] = "sum"
    #: shipped search space (:mod:`benchmark.search.space`): factors, L2, Adam's step and batch
    search_space: ClassVar[dict[str, Any]] = {
        "k": [16, 32, 64, 128],
        "lambda_w": [1e-4, 1e-3, 1e-2, 1e-1],
        "train.lr": [1e-3, 5e-3, 1e-2, 5e-2],
        "train.batch_size": [128, 256, 1024],
    }

    def __init__(
        self,
        k: int = 64,
        lambda_w: float = 0.01,
        lambda_b: float = 0.01,
        item_bias: bool = True,
        *,
        seed: int = 0,
        train: TrainConfig | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(seed=seed, train=train, k=k, lambda_w=lambda_w, lambda_b=lambda_b, item_bias=item_bias)
        self.user_factors = nn.Parameter(torch.empty(0, k))
        self.item_factors = nn.Parameter(torch.empty(0, k))
        self.item_bias = nn.Parameter(torch.empty(0))

    def build(self, split: Split, features: Mapping[str, ItemFeatures]) -> None:
        g = torch.Generator().manual_seed(self.params["seed"])
        k = self.params["k"]
        self.user_factors = nn.Parameter(xavier_uniform(split.n_users, k, g))
        self.item_factors = nn.Parameter(xavier_uniform(split.n_items, k, g))
        self.item_bias = nn.Parameter(torch.zeros(split.n_items), requires_grad=self.params["item_bias"])

    def triplet_loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        gu = gather_rows(self.user_factors, users)
        gi, gj = gather_rows(self.item_factors, pos), gather_rows(self.item_factors, neg)
        bi, bj = gather_rows(self.item_bias, pos), gather_rows(self.item_bias, neg)
        x = bi - bj + (gu * (gi - gj)).sum(dim=1)
        reg = 0.5 * self.params["lambda_w"] * (gu.pow(2).sum() + gi.pow(2).sum() + gj.pow(2).sum())
        if self.params["item_bias"]:
            reg = reg + 0.5 * self.params["lambda_b"] * (bi.pow(2).sum() + bj.pow(2).sum())
        return -F.logsigmoid(x).sum() + reg

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_factors[users] @ self.item_factors.T + self.item_bias
