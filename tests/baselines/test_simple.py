"""Most-popular, random and content ItemKNN, checked against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from baselines.simple import ItemKNN, RandomRecommender
from benchmark.demo.synthetic import make_synthetic
from benchmark.evaluation import evaluate
from benchmark.features import ItemFeatures
from benchmark.registry import create_model


@pytest.fixture(scope="module")
def data():
    return make_synthetic(400, 200, 16, seed=11)


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


def valid_recall(model, split) -> float:
    return evaluate(model, split, part="valid", ks=(20,), metrics=("recall",), progress=False).means()["recall@20"]


def test_popularity_counts_distinct_train_users(data):
    split, _ = data
    m = create_model("popularity").fit(split, {})
    expected = np.zeros(split.n_items)
    for item, users in split.train.groupby("item_id")["user_id"]:
        expected[item] = len(set(users))
    s = m.score(torch.tensor([0, 5]))
    assert s.shape == (2, split.n_items)
    np.testing.assert_array_equal(s[0].numpy(), expected)
    assert torch.equal(s[0], s[1])


def test_random_is_seeded_uniform_and_batch_independent(data):
    split, _ = data
    a = RandomRecommender(seed=1).fit(split, {})
    full = a.score(torch.arange(split.n_users))
    part = a.score(torch.tensor([7, 3]))
    assert torch.equal(full[[7, 3]], part)
    assert torch.equal(full, RandomRecommender(seed=1).fit(split, {}).score(torch.arange(split.n_users)))
    assert not torch.equal(full, RandomRecommender(seed=2).fit(split, {}).score(torch.arange(split.n_users)))
    assert float(full.min()) >= 0.0 and float(full.max()) < 1.0
    assert abs(float(full.mean()) - 0.5) < 0.01
    # random ranking: Recall@20 close to 20 / n_items (minus the few masked train items)
    assert valid_recall(a, split) == pytest.approx(20 / split.n_items, abs=0.04)


def _brute_knn(split, vec: np.ndarray, k: int | None) -> np.ndarray:
    v = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    sim = v @ v.T
    if k is not None:
        np.fill_diagonal(sim, -np.inf)
        keep = np.zeros_like(sim, dtype=bool)
        top = np.argsort(-sim, axis=1, kind="stable")[:, :k]
        np.put_along_axis(keep, top, True, axis=1)
        sim = np.where(keep, sim, 0.0)
    out = np.zeros((split.n_users, split.n_items))
    for u, items in split.train.groupby("user_id")["item_id"]:
        out[u] = sim[sorted(set(items))].sum(axis=0)
    return out


@pytest.mark.parametrize("k", [None, 15])
def test_itemknn_matches_brute_force(data, k):
    split, feats = data
    m = ItemKNN("clip_image", neighbours=k).fit(split, feats)
    got = m.score(torch.arange(split.n_users)).numpy()
    want = _brute_knn(split, feats["clip_image"].values.numpy().astype(np.float64), k)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_itemknn_missing_feature_scores_minus_inf_and_learns(data):
    split, feats = data
    f = feats["clip_image"]
    mask = torch.ones(split.n_items, dtype=torch.bool)
    mask[:3] = False
    holed = {"clip_image": ItemFeatures("clip_image", f.values, mask)}
    s = ItemKNN("clip_image", neighbours=10).fit(split, holed).score(torch.tensor([0, 1]))
    assert torch.isneginf(s[:, :3]).all() and torch.isfinite(s[:, 3:]).all()
    knn = valid_recall(ItemKNN("clip_image+text").fit(split, feats), split)
    assert knn > valid_recall(RandomRecommender().fit(split, {}), split) + 0.1


def test_itemknn_errors(data):
    split, feats = data
    with pytest.raises(KeyError, match="clip_text"):
        ItemKNN("clip_text").fit(split, feats)
    with pytest.raises(ValueError):
        ItemKNN(neighbours=0)
