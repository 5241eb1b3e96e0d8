"""Trained fusion of a text feature and an image feature (the paper's attention fusion, gating
fusion and cross-modal attention), trained with a user-aware objective.

Architecture (mirrors ``tyvalencia/enhancing-mm-rec-sys``, ``scripts/train_fusion_bert_vision.py``):
each modality is projected by a ``Linear`` to ``hidden_dim``; then

- ``attention``: an MLP on the two projections (``2h → h → 2``, softmax) weights them, ``w_t·t + w_v·v``;
- ``gating``: an MLP (``2h → h → h``, sigmoid) gives a per-dimension gate ``g·t + (1−g)·v``;
- ``crossmodal``: text attends to vision and vision to text (two ``nn.MultiheadAttention``), the two
  outputs are concatenated (with one token per modality, as in the paper's code, each attention
  reduces to a learned linear map of the other modality);

and an output head ``Linear → LayerNorm → ReLU`` gives the item's fused vector (``output_dim``).

Users (``user=``):
- ``"profile"`` (default, as the paper scores): the mean of the fused vectors of the user's train
  items; score = cosine(profile, fused item). While training, the positive item is left out of
  its own profile (leave-one-out), otherwise the model could score the positive highly just by
  making every item similar to itself; users with a single usable train item carry no signal
  and are left out of the loss.
- ``"embedding"``: a learned user vector; score = cosine(user vector, fused item).

Objectives (``loss=``):
- ``"bpr"`` (default): ``−log σ((s_ui − s_uj) / T)`` on the DataModule's (u, i, j) triples.
- ``"softmax"``: sampled softmax of the user against the batch's positives and negatives (in-batch
  negatives), temperature ``T``; other rows' copies of the same positive are masked.
- ``"paper"``: the paper code's contrastive loss, for exact reproduction: for a positive item p
  and ``n_negatives`` random other items, ``CE([p·p, p·n_1, …] / T, 0)`` on normalised fused
  vectors. Its positive term is an item's similarity *with itself* (always 1/T), so it only pushes
  items apart and learns nothing about users; the user enters only at scoring time.

The paper trains with Adam (lr 1e-3), T = 0.07, 4 negatives, gradient clipping at 1.0 and
``hidden_dim=512``, ``output_dim=768`` (the defaults here). Items lacking either feature (mask
False) are left out of profiles, of the training positives (and the paper loss's negatives) and
score ``-inf``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from baselines.trainable import TrainableRecommender, gather_rows
from benchmark.features import ItemFeatures
from benchmark.registry import register_model
from benchmark.split import Split
from benchmark.train_config import TrainConfig

FUSIONS = ("attention", "gating", "crossmodal")
USERS = ("profile", "embedding")
LOSSES = ("bpr", "softmax", "paper")


def _head(in_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.LayerNorm(out_dim), nn.ReLU())


class AttentionFusion(nn.Module):
    """Softmax weights over the two projected modalities from an MLP on both."""

    def __init__(self, text_dim: int, image_dim: int, hidden_dim: int, output_dim: int, num_heads: int = 4) -> None:
        super().__init__()
        self.text_proj = nn.Linear(text_dim, hidden_dim)
        self.vision_proj = nn.Linear(image_dim, hidden_dim)
        self.attention = nn.Sequential(
            nn.Linear(2 * hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, 2), nn.Softmax(dim=-1)
        )
        self.output_proj = _head(hidden_dim, output_dim)

    def forward(self, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        t, v = self.text_proj(text), self.vision_proj(image)
        w = self.attention(torch.cat([t, v], dim=-1))
        return self.output_proj(w[:, 0:1] * t + w[:, 1:2] * v)


class GatingFusion(nn.Module):
    """A per-dimension sigmoid gate between the two projected modalities."""

    def __init__(self, text_dim: int, image_dim: int, hidden_dim: int, output_dim: int, num_heads: int = 4) -> None:
        super().__init__()
        self.text_proj = nn.Linear(text_dim, hidden_dim)
        self.vision_proj = nn.Linear(image_dim, hidden_dim)
        self.gate = nn.Sequential(
            nn.Linear(2 * hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.Sigmoid()
        )
        self.output_proj = _head(hidden_dim, output_dim)

    def forward(self, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        t, v = self.text_proj(text), self.vision_proj(image)
        g = self.gate(torch.cat([t, v], dim=-1))
        return self.output_proj(g * t + (1 - g) * v)


class CrossModalAttention(nn.Module):
    """Text attends to vision and vision to text; both results are concatenated."""

    def __init__(self, text_dim: int, image_dim: int, hidden_dim: int, output_dim: int, num_heads: int = 4) -> None:
        super().__init__()
        if hidden_dim % num_heads:
            raise ValueError(f"hidden_dim ({hidden_dim}) must be divisible by num_heads ({num_heads})")
        self.text_proj = nn.Linear(text_dim, hidden_dim)
        self.vision_proj = nn.Linear(image_dim, hidden_dim)
        self.text_to_vision = nn.MultiheadAttention(hidden_dim, num_heads, batch_first=True)
        self.vision_to_text = nn.MultiheadAttention(hidden_dim, num_heads, batch_first=True)
        self.output_proj = _head(2 * hidden_dim, output_dim)

    def forward(self, text: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        t, v = self.text_proj(text).unsqueeze(1), self.vision_proj(image).unsqueeze(1)
        t_att, _ = self.text_to_vision(t, v, v, need_weights=False)
        v_att, _ = self.vision_to_text(v, t, t, need_weights=False)
        return self.output_proj(torch.cat([t_att.squeeze(1), v_att.squeeze(1)], dim=-1))


_MODULES = {"attention": AttentionFusion, "gating": GatingFusion, "crossmodal": CrossModalAttention}


class FusionRecommender(TrainableRecommender):
    """Base of the three registered fusion models; ``fusion`` picks the module."""

    fusion: str = "attention"
    #: the paper's training: Adam 1e-3 (TrainConfig's), gradient clipping at 1.0; batch and epochs as before
    train_defaults: ClassVar[dict[str, Any]] = {
        "batch_size": 256,
        "max_epochs": 30,
        "patience": 3,
        "gradient_clip_val": 1.0,
    }

    def __init__(
        self,
        text_feature: str = "text",
        image_feature: str = "clip_image",
        hidden_dim: int = 512,
        output_dim: int = 768,
        num_heads: int = 4,
        user: str = "profile",
        loss: str = "bpr",
        temperature: float = 0.07,
        n_negatives: int = 4,
        *,
        seed: int = 0,
        train: TrainConfig | Mapping[str, Any] | None = None,
    ) -> None:
        if user not in USERS:
            raise ValueError(f"unknown user representation {user!r}; allowed: {', '.join(USERS)}")
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; allowed: {', '.join(LOSSES)}")
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        super().__init__(
            seed=seed,
            train=train,
            text_feature=text_feature,
            image_feature=image_feature,
            hidden_dim=hidden_dim,
            output_dim=output_dim,
            num_heads=num_heads,
            user=user,
            loss=loss,
            temperature=temperature,
            n_negatives=n_negatives,
        )
        self.required_features = (text_feature, image_feature)
        self.fuser: nn.Module | None = None
        self.user_embedding = nn.Parameter(torch.empty(0, output_dim))
        for name in ("text", "image", "indptr", "indices"):
            self.register_buffer(name, torch.empty(0), persistent=False)
        self.register_buffer("item_mask", torch.empty(0, dtype=torch.bool), persistent=False)

    def build(self, split: Split, features: Mapping[str, ItemFeatures]) -> None:
        p = self.params
        text, image = features[p["text_feature"]], features[p["image_feature"]]
        self.fuser = _MODULES[self.fusion](text.dim, image.dim, p["hidden_dim"], p["output_dim"], p["num_heads"])
        self.text, self.image = text.values.clone(), image.values.clone()
        self.item_mask = text.mask & image.mask
        self.text[~self.item_mask] = 0.0
        self.image[~self.item_mask] = 0.0
        self.indptr, self.indices = split.csr(("train",))
        if p["user"] == "embedding":
            g = torch.Generator().manual_seed(p["seed"])
            self.user_embedding = nn.Parameter(0.1 * torch.randn(split.n_users, p["output_dim"], generator=g))

    # ------------------------------------------------------------------ pieces
    def fuse(self, items: torch.Tensor) -> torch.Tensor:
        assert self.fuser is not None
        return self.fuser(self.text[items], self.image[items])

    def _histories(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(row in ``users``, item) for every usable train item of each user (CSR gather)."""
        starts, ends = self.indptr[users], self.indptr[users + 1]
        counts = ends - starts
        rows = torch.repeat_interleave(torch.arange(len(users), device=users.device), counts)
        offsets = torch.arange(int(counts.sum()), device=users.device) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts
        )
        items = self.indices[torch.repeat_interleave(starts, counts) + offsets]
        keep = self.item_mask[items]
        return rows[keep], items[keep]

    def _profile_sums(
        self, users: torch.Tensor, item_vecs: torch.Tensor, rows: torch.Tensor, hist_vecs: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sums = torch.zeros(len(users), item_vecs.shape[1], device=item_vecs.device, dtype=item_vecs.dtype)
        sums.index_add_(0, rows, hist_vecs)
        counts = torch.bincount(rows, minlength=len(users)).to(item_vecs.dtype)
        return sums, counts

    def _all_fused(self) -> torch.Tensor:
        n = self.text.shape[0]
        return torch.cat(
            [self.fuse(torch.arange(s, min(s + 4096, n), device=self.text.device)) for s in range(0, n, 4096)]
        )

    # ------------------------------------------------------------------ training
    def triplet_loss(self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
        p = self.params
        T = p["temperature"]
        if p["loss"] == "paper":
            return self._paper_loss(pos)
        # A positive without both features can never be recommended (it scores -inf) and its fused
        # vector is that of an all-zero input: it teaches nothing about the user, so it is left out.
        usable_pos = self.item_mask[pos]
        if p["user"] == "embedding":
            u = gather_rows(self.user_embedding, users)
            f = self.fuse(torch.cat([pos, neg]))
            fp, fn = f[: len(pos)], f[len(pos) :]
            valid = usable_pos
        else:
            rows, hist = self._histories(users)
            uniq, inv = torch.unique(torch.cat([hist, pos, neg]), return_inverse=True)
            fused = self.fuse(uniq)
            fh = gather_rows(fused, inv[: len(hist)])
            fp = gather_rows(fused, inv[len(hist) : len(hist) + len(pos)])
            fn = gather_rows(fused, inv[len(hist) + len(pos) :])
            sums, counts = self._profile_sums(users, fused, rows, fh)
            pos_in = self.item_mask[pos].to(fused.dtype)  # the positive is in its own history iff usable
            left = counts - pos_in
            u = (sums - fp * pos_in[:, None]) / left.clamp_min(1)[:, None]  # leave-one-out profile
            valid = (left > 0) & usable_pos
        if not valid.any():
            return (fp.sum() + fn.sum()) * 0.0  # keeps the graph; nothing to learn from this batch
        if p["loss"] == "bpr":
            s_pos = F.cosine_similarity(u, fp, dim=1) / T
            s_neg = F.cosine_similarity(u, fn, dim=1) / T
            return -F.logsigmoid(s_pos - s_neg)[valid].mean()
        # sampled softmax against the batch's positives and negatives
        cand = F.normalize(torch.cat([fp, fn]), dim=1)
        logits = F.normalize(u, dim=1) @ cand.T / T
        cand_items = torch.cat([pos, neg])
        same = cand_items[None, :] == pos[:, None]
        same[torch.arange(len(pos)), torch.arange(len(pos))] = False
        same |= ~self.item_mask[cand_items][None, :]  # featureless candidates are not real competitors
        logits = logits.masked_fill(same, -float("inf"))
        target = torch.arange(len(pos), device=logits.device)
        return F.cross_entropy(logits[valid], target[valid])

    def _paper_loss(self, pos: torch.Tensor) -> torch.Tensor:
        k = self.params["n_negatives"]
        # the paper's code trains on items that have both features; so do positives and negatives here
        usable = torch.nonzero(self.item_mask).flatten()
        if len(usable) < 2:
            raise ValueError("the paper loss needs at least two items with both features")
        kept = pos[self.item_mask[pos]]
        if not len(kept):
            return self.fuse(pos[:1]).sum() * 0.0  # keeps the graph; nothing to learn from this batch
        pos = kept
        neg = usable[torch.randint(len(usable), (len(pos), k), device=pos.device)]
        clash = neg == pos[:, None]
        while clash.any():  # the paper draws negatives among items other than the positive
            neg[clash] = usable[torch.randint(len(usable), (int(clash.sum()),), device=pos.device)]
            clash = neg == pos[:, None]
        f = F.normalize(self.fuse(torch.cat([pos, neg.flatten()])), dim=-1)
        fp, fn = f[: len(pos)], f[len(pos) :].view(len(pos), k, -1)
        T = self.params["temperature"]
        pos_sim = (fp * fp).sum(-1, keepdim=True) / T
        neg_sim = torch.einsum("bd,bkd->bk", fp, fn) / T
        target = torch.zeros(len(pos), dtype=torch.long, device=pos.device)
        return F.cross_entropy(torch.cat([pos_sim, neg_sim], dim=1), target)

    # ------------------------------------------------------------------ scoring
    def use_history(self, split: Split, parts: Sequence[str]) -> bool:
        """Profile users from ``parts`` from now on, without retraining (the ``captioned-only``
        evaluation mode builds profiles from train + valid, as the paper's script does). A model
        with learned user embeddings (``user="embedding"``) has no profile: returns False."""
        if "test" in parts:
            raise ValueError("a profile must not include 'test' (that is what is being predicted)")
        if self.params["user"] == "embedding":
            return False
        dev = self.indptr.device
        indptr, indices = split.csr(tuple(parts))
        self.indptr, self.indices = indptr.to(dev), indices.to(dev)
        return True

    def score_users(self, users: torch.Tensor) -> torch.Tensor:
        raw = self.cached("raw", self._all_fused)
        items = self.cached("fused", lambda: F.normalize(raw, dim=1))
        if self.params["user"] == "embedding":
            u = self.user_embedding[users]
        else:
            rows, hist = self._histories(users)
            u, _ = self._profile_sums(users, items, rows, raw[hist])  # sum ∝ mean: cosine ignores scale
        s = F.normalize(u, dim=1) @ items.T
        return s.masked_fill(~self.item_mask[None, :], -float("inf"))


@register_model("attention-fusion")
class AttentionFusionRecommender(FusionRecommender):
    """Attention fusion (softmax weights over text and image)."""

    fusion = "attention"


@register_model("gating-fusion")
class GatingFusionRecommender(FusionRecommender):
    """Gating fusion (per-dimension sigmoid gate between text and image)."""

    fusion = "gating"


@register_model("crossmodal-fusion")
class CrossModalFusionRecommender(FusionRecommender):
    """Cross-modal attention (text ↔ image)."""

    fusion = "crossmodal"
