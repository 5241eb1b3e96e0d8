"""VBPR (He & McAuley, AAAI 2016): BPR-MF plus a visual preference term.

``score(u, i) = β_i + γ_u·γ_i + θ_u·(E f_i) + β'·f_i`` where ``f_i`` is the item's content
feature (CLIP image by default; any :class:`ItemFeatures` name, or several joined by ``+``,
concatenated as MMRec concatenates image ⊕ text). Trained with the BPR loss on uniformly
sampled negatives.

Regularisation follows Cornac's ``cornac.models.VBPR`` term by term, so the parity test compares
like with like; for a batch of triples (u, i, j), summed over the batch:

    loss = −Σ log σ(x_ui − x_uj)
           + λ_w/2 (‖γ_u‖² + ‖γ_i‖² + ‖γ_j‖² + ‖θ_u‖²)
           + λ_b/2 ‖β_i‖² + λ_b/20 ‖β_j‖²
           + λ_e/2 (‖E‖² + ‖β'‖²)

with Glorot-uniform γ, θ, E, β' and zero β, optimised by Adam (Cornac's defaults: k = k2 = 10,
lr 0.005, λ_w = λ_b = 0.01, λ_e = 0, batch 100). Items without the feature (mask False) get a
zero feature vector, i.e. only their collaborative terms.

One known difference from Cornac 3.0.1, where ours follows the paper: Cornac adds
``feat_diff.mm(Bp)`` (shape ``[B, 1]``) to the ``[B]`` terms, so its ``x_uij`` broadcasts to a
``[B × B]`` matrix and its log-likelihood sums over every pair of rows in the batch (each row's
collaborative terms with every other row's β'·(f_i − f_j)). Ours is the paper's per-triple
``x_uij``. The parity check is therefore on Recall@20 within seed noise, not on equal losses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from baselines.trainable import TrainableRecommender, gather_rows, xavier_uniform
from benchmark.features import ItemFeatures, concat_features
from benchmark.registry import register_model
from benchmark.split import Split
from benchmark.train_config import TrainConfig


def resolve_feature(features: Mapping[str, ItemFeatures], spec: str) -> ItemFeatures:
    """``"clip_image"`` → that entry; ``"clip_image+text"`` → their column-wise concatenation."""
    names = spec.split("+")
    missing = [n for n in names if n not in features]
    if missing:
        raise KeyError(f"item features {missing} not available; have {sorted(features) or 'none'}")
    if len(names) == 1:
        return features[names[0]]
    return concat_features(spec, [features[n] for n in names])


@register_model("vbpr")
class VBPR(TrainableRecommender):
    """Visual Bayesian Personalised Ranking over any item feature matrix."""

    #: Cornac's VBPR defaults (lr 0.005, batch 100); the rest are TrainConfig's
    train_defaults: ClassVar[dict[str, Any]] = {"lr": 5e-3, "batch_size": 100}
    loss_reduction: ClassVar[str] = "sum"
    #: shipped search space: latent and visual factors, L2 on factors and on the embedding E, step, batch
    search_space: ClassVar[dict[str, Any]] = {
        "k": [10, 20, 50],
        "k2": [10, 20, 50],
        "lambda_w": [1e-3, 1e-2, 1e-1],
        "lambda_e": [0.0, 1e-3, 1e-2],
        "train.lr": [1e-3, 5e-3, 1e-2, 5e-2],
        "train.batch_size": [100, 256, 1024],
    }

    def __init__(
        self,
        feature: str = "clip_image",
        k: int = 10,
        k2: int = 10,
        lambda_w: float = 0.01,
        lambda_b: float = 0.01,
        lambda_e: float = 0.0,
        *,
        seed: int = 0,
        train: TrainConfig | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            seed=seed,
            train=train,
            feature=feature,
            k=k,
            k2=k2,
            lambda_w=lambda_w,
            lambda_b=lambda_b,
            lambda_e=lambda_e,
        )
        self.required_features = tuple(feature.split("+"))
        self.beta_item = nn.Parameter(torch.empty(0))
        self.gamma_user = nn.Parameter(torch.empty(0, k))
        self.gamma_item = nn.Parameter(torch.empty(0, k))
        self.theta_user = nn.Parameter(torch.empty(0, k2))
        self.emb_matrix = nn.Parameter(torch.empty(0, k2))
        self.beta_prime = nn.Parameter(torch.empty(0, 1))
        self.register_buffer("item_features", torch.empty(0, 0), persistent=False)

    def build(self, split: Split, features: Mapping[str, ItemFeatures]) -> None:
        feats = resolve_feature(features, self.params["feature"])
        values = feats.values.clone()
        values[~feats.mask] = 0.0
        p = self.params
        g = torch.Generator().manual_seed(p["seed"])
        d = values.shape[1]
        self.item_features = values
        self.beta_item = nn.Parameter(torch.zeros(split.n_items))
        self.gamma_user = nn.Parameter(xavier_uniform(split.n_users, p["k"], g))
        self.gamma_item = nn.Parameter(xavier_uniform(split.n_items, p["k"], g))
        self.theta_user = nn.Parameter(xavier_uniform(split.n_users, p["k2"], g))
        self.emb_matrix = nn.Parameter(xavier_uniform(d, p["k2"], g))
        self.beta_prime = nn.Parameter(xavier_uniform(d, 1, g))

    def triplet_loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        p = self.params
        gu, tu = gather_rows(self.gamma_user, users), gather_rows(self.theta_user, users)
        bi, bj = gather_rows(self.beta_item, pos), gather_rows(self.beta_item, neg)
        gi, gj = gather_rows(self.gamma_item, pos), gather_rows(self.gamma_item, neg)
        fdiff = self.item_features[pos] - self.item_features[neg]
        x = (
            bi
            - bj
            + (gu * (gi - gj)).sum(dim=1)
            + (tu * (fdiff @ self.emb_matrix)).sum(dim=1)
            + (fdiff @ self.beta_prime).squeeze(1)
        )
        reg = (
            0.5 * p["lambda_w"] * (gu.pow(2).sum() + gi.pow(2).sum() + gj.pow(2).sum() + tu.pow(2).sum())
            + 0.5 * p["lambda_b"] * bi.pow(2).sum()
            + 0.5 * p["lambda_b"] / 10 * bj.pow(2).sum()
        )
        if p["lambda_e"]:  # not a per-row term: each DDP rank counts its share of it
            reg = reg + 0.5 * p["lambda_e"] * self.shard_fraction * (
                self.emb_matrix.pow(2).sum() + self.beta_prime.pow(2).sum()
            )
        return -F.logsigmoid(x).sum() + reg

    def _item_side(self) -> torch.Tensor:
        # [n_items, k + k2 + 1]: the item half of the score as one matrix, so scoring is one matmul
        visual = self.item_features @ self.emb_matrix
        bias = self.beta_item + (self.item_features @ self.beta_prime).squeeze(1)
        return torch.cat([self.gamma_item, visual, bias[:, None]], dim=1)

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        items = self.cached("items", self._item_side)
        ones = torch.ones(len(users), 1, device=items.device)
        return torch.cat([self.gamma_user[users], self.theta_user[users], ones], dim=1) @ items.T
