"""A synthetic leave-one-out split with real collaborative and content structure, plus item features.

Where the demo catalogue (:mod:`benchmark.demo.generator`) writes raw Amazon-layout files with
images for the whole pipeline, :func:`make_synthetic` builds a :class:`~benchmark.split.Split`
and aligned :class:`~benchmark.features.ItemFeatures` directly in memory, at any size: the
tests of trainable models use it (small, seconds) and ``benchmark.perf.vbpr`` times VBPR on it
(paper-sized). Same arguments → identical split and features.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from benchmark.features import ItemFeatures
from benchmark.split import Split

GENERATOR = "benchmark.demo.synthetic.make_synthetic"


def make_synthetic(
    n_users: int = 600,
    n_items: int = 300,
    dim: int = 32,
    text_dim: int | None = None,
    n_topics: int = 10,
    latent_dim: int = 16,
    min_per_user: int = 5,
    max_per_user: int = 12,
    feature_noise: float = 0.5,
    hidden_weight: float = 1.0,
    popularity_weight: float = 0.5,
    sharpness: float = 2.0,
    seed: int = 0,
) -> tuple[Split, dict[str, ItemFeatures]]:
    """A leave-one-out split (last → test, second last → valid) with real collaborative and content
    structure, and two item feature sets aligned to it: ``clip_image`` ``[n_items × dim]`` and
    ``text`` ``[n_items × text_dim]`` (default ``dim``).

    Affinity ``a_ui = sharpness · (p_u·z_i + hidden_weight · q_u·h_i) + popularity_weight · log-pop_i``,
    where ``z_i`` is the item's topic latent (visible, noisily, in both feature sets through two
    different random linear maps), ``h_i`` a hidden collaborative latent no feature shows, and
    ``p_u``/``q_u`` the user's preferences (a blend of one or two topics). Each user draws
    ``min_per_user..max_per_user`` distinct items without replacement, proportionally to
    ``exp(a_ui)`` (Gumbel top-k); their order (timestamps) is random.
    """
    if min_per_user < 3:
        raise ValueError("min_per_user must be >= 3 (train, valid and test each need an item)")
    if max_per_user > n_items:
        raise ValueError(f"max_per_user ({max_per_user}) exceeds n_items ({n_items})")
    # One generator, drawn from in a fixed order (latents, interactions, features): same seed, same data.
    g = torch.Generator().manual_seed(seed)
    lat = _latents(g, n_users, n_items, n_topics, latent_dim, min_per_user, max_per_user)
    users, items = _draw(g, lat, max_per_user, hidden_weight, popularity_weight, sharpness)
    present = np.unique(items)  # items nobody drew are not part of the split
    item_order = [f"i{i:07d}" for i in present]
    split = Split.from_parts(
        _leave_one_out(users, items),
        None,
        "synthetic-loo",
        {"generator": GENERATOR, "n_users": n_users, "n_items": n_items, "seed": seed},
        item_order=item_order,
    )
    img, txt = _feature_views(g, lat["z"][torch.from_numpy(present)], dim, text_dim or dim, feature_noise)
    prov = {"generator": GENERATOR, "seed": seed}
    feats = {
        "clip_image": ItemFeatures("clip_image", img, None, dict(prov, part="image")),
        "text": ItemFeatures("text", txt, None, dict(prov, part="text")),
    }
    return split, feats


def _latents(
    g: torch.Generator,
    n_users: int,
    n_items: int,
    n_topics: int,
    latent_dim: int,
    min_per_user: int,
    max_per_user: int,
) -> dict[str, torch.Tensor]:
    """Item topic latents ``z``, hidden item factors ``h``, log-popularity, user preferences ``p``/``q``
    and each user's number of interactions."""
    centroids = torch.randn(n_topics, latent_dim, generator=g)
    item_topic = torch.randint(n_topics, (n_items,), generator=g)
    z = centroids[item_topic] + 0.5 * torch.randn(n_items, latent_dim, generator=g)
    z = z / z.norm(dim=1, keepdim=True)
    h = torch.randn(n_items, latent_dim, generator=g) / latent_dim**0.5
    pop = -torch.log(torch.arange(1, n_items + 1, dtype=torch.float32))[torch.randperm(n_items, generator=g)]
    t1 = torch.randint(n_topics, (n_users,), generator=g)
    t2 = torch.randint(n_topics, (n_users,), generator=g)
    mix = torch.rand(n_users, 1, generator=g)
    p = mix * centroids[t1] + (1 - mix) * centroids[t2] + 0.3 * torch.randn(n_users, latent_dim, generator=g)
    p = p / p.norm(dim=1, keepdim=True) * 3.0
    q = torch.randn(n_users, latent_dim, generator=g)
    counts = torch.randint(min_per_user, max_per_user + 1, (n_users,), generator=g)
    return {"z": z, "h": h, "pop": pop, "p": p, "q": q, "counts": counts}


def _draw(
    g: torch.Generator,
    lat: dict[str, torch.Tensor],
    max_per_user: int,
    hidden_weight: float,
    popularity_weight: float,
    sharpness: float,
) -> tuple[np.ndarray, np.ndarray]:
    """``(user, item)`` index pairs: each user's distinct items by Gumbel top-k, in random order."""
    p, q, z, h, pop, counts = (lat[k] for k in ("p", "q", "z", "h", "pop", "counts"))
    n_users = p.shape[0]
    rows_u: list[np.ndarray] = []
    rows_i: list[np.ndarray] = []
    for start in range(0, n_users, 2048):
        stop = min(start + 2048, n_users)
        a = sharpness * (p[start:stop] @ z.T + hidden_weight * (q[start:stop] @ h.T)) + popularity_weight * pop
        u01 = torch.rand(a.shape, generator=g).clamp_(1e-12, 1 - 1e-12)
        top = torch.topk(a - torch.log(-torch.log(u01)), max_per_user, dim=1).indices
        take = torch.arange(max_per_user)[None, :] < counts[start:stop, None]
        # random order within the user's draws → random timestamps
        order = torch.argsort(torch.rand(top.shape, generator=g), dim=1)
        top = torch.gather(top, 1, order)
        take = torch.gather(take, 1, order)
        uu = torch.arange(start, stop)[:, None].expand_as(top)
        rows_u.append(uu[take].numpy())
        rows_i.append(top[take].numpy())
    return np.concatenate(rows_u), np.concatenate(rows_i)


def _leave_one_out(users: np.ndarray, items: np.ndarray) -> dict[str, pd.DataFrame]:
    """Raw parts: timestamps follow each user's (shuffled) order; last → test, second last → valid."""
    df = pd.DataFrame({"u": users, "i": items})
    df["rank"] = df.groupby("u").cumcount()
    df["n"] = df.groupby("u")["i"].transform("size")
    df["timestamp"] = 1_600_000_000 + df["rank"].astype("int64") * 3600
    df["user"] = [f"u{u:07d}" for u in df["u"]]
    df["item"] = [f"i{i:07d}" for i in df["i"]]
    df["rating"] = 1.0
    cols = ["user", "item", "rating", "timestamp"]
    return {
        "test": df.loc[df["rank"] == df["n"] - 1, cols],
        "valid": df.loc[df["rank"] == df["n"] - 2, cols],
        "train": df.loc[df["rank"] < df["n"] - 2, cols],
    }


def _feature_views(
    g: torch.Generator, z: torch.Tensor, dim: int, text_dim: int, noise: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Image and text features: the topic latents through two random linear maps, plus noise."""
    latent_dim = z.shape[1]
    w_img = torch.randn(latent_dim, dim, generator=g) / latent_dim**0.5
    w_txt = torch.randn(latent_dim, text_dim, generator=g) / latent_dim**0.5
    img = z @ w_img + noise * torch.randn(len(z), dim, generator=g) / dim**0.5 * 4
    txt = z @ w_txt + noise * torch.randn(len(z), text_dim, generator=g) / text_dim**0.5 * 4
    return img, txt
