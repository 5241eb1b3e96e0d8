"""Lightning base: negative sampling, DataModule, validation-only selection, determinism, grids."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch

from baselines.bpr import BPRMF
from baselines.simple import MostPopular, RandomRecommender
from baselines.trainable import NegativeSampler, TripletDataModule, grid_search
from benchmark.demo.synthetic import make_synthetic
from benchmark.evaluation import evaluate
from benchmark.registry import create_model

logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)


@pytest.fixture(scope="module")
def data():
    return make_synthetic(500, 250, 16, seed=3)


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


def valid_recall(model, split) -> float:
    return evaluate(model, split, part="valid", ks=(20,), metrics=("recall",), progress=False).means()["recall@20"]


def test_negative_sampler_excludes_train_items_and_is_uniform():
    # user 0 owns items 0..7 of 10; user 1 owns item 9
    users = torch.tensor([0] * 8 + [1])
    items = torch.tensor(list(range(8)) + [9])
    s = NegativeSampler(users, items, 10, torch.Generator().manual_seed(0))
    neg0 = s.sample(torch.zeros(20000, dtype=torch.long))
    assert set(neg0.tolist()) == {8, 9}
    share = (neg0 == 8).float().mean().item()
    assert 0.47 < share < 0.53  # uniform over the two allowed items
    neg1 = s.sample(torch.ones(9000, dtype=torch.long))
    assert 9 not in set(neg1.tolist()) and set(neg1.tolist()) == set(range(9))


def test_negative_sampler_rejects_user_with_every_item():
    with pytest.raises(ValueError, match="every item"):
        NegativeSampler(torch.tensor([0, 0, 0]), torch.tensor([0, 1, 2]), 3, torch.Generator())


def test_datamodule_triples_resampled_each_epoch_and_seeded(data):
    split, _ = data
    train = set(zip(split.train.user_id, split.train.item_id))

    def epochs(seed, n=2):
        dm = TripletDataModule(split, batch_size=128, seed=seed)
        out = []
        for _ in range(n):
            batches = list(dm.train_dataloader())
            u, i, j = (torch.cat(t) for t in zip(*batches))
            out.append((u, i, j))
        return dm, out

    dm, (e1, e2) = epochs(7)
    assert len(list(dm.train_dataloader())) == (dm.n_pairs + 127) // 128
    u, i, j = e1
    assert len(u) == dm.n_pairs == len(train)
    assert set(zip(u.tolist(), i.tolist())) == train  # each train pair exactly once per epoch
    assert not any((a, b) in train for a, b in zip(u.tolist(), j.tolist()))  # negatives are unseen
    assert not torch.equal(e1[2], e2[2])  # resampled every epoch
    _, (f1, f2) = epochs(7)
    assert all(torch.equal(a, b) for a, b in zip(e1 + e2, f1 + f2))  # seeded


class _Poison:
    """Stands in for split.test: any use raises, proving fit never reads it."""

    def __getattr__(self, name):
        raise AssertionError(f"fit touched split.test ({name})")

    def __getitem__(self, key):
        raise AssertionError("fit touched split.test")

    def __len__(self):
        raise AssertionError("fit touched split.test")


def test_fit_selects_on_validation_restores_best_and_is_deterministic(data):
    split, feats = data
    poisoned = dataclasses.replace(split, test=_Poison())
    kw = dict(k=16, batch_size=256, lr=0.01, max_epochs=12, eval_every=2, patience=2, seed=5)
    m1 = BPRMF(**kw).fit(poisoned, feats)
    # the restored state is the best one seen on validation
    assert m1.best_value == pytest.approx(max(h["recall@20"] for h in m1.valid_history))
    assert valid_recall(m1, split) == pytest.approx(m1.best_value)
    assert m1.best_epoch == max(m1.valid_history, key=lambda h: h["recall@20"])["epoch"]
    # a real learning check: it beats random and most-popular on validation
    assert m1.best_value > valid_recall(MostPopular().fit(split, {}), split) + 0.03
    assert m1.best_value > valid_recall(RandomRecommender(seed=0).fit(split, {}), split) + 0.1
    m2 = BPRMF(**kw).fit(split, feats)
    users = torch.arange(split.n_users)
    s1, s2 = m1.score(users), m2.score(users)
    assert s1.shape == (split.n_users, split.n_items) and torch.isfinite(s1).all()
    assert torch.equal(s1, s2)  # same seed → identical model on CPU
    m3 = BPRMF(**dict(kw, seed=6)).fit(split, feats)
    assert not torch.equal(s1, m3.score(users))


def test_early_stopping_stops_before_max_epochs(data):
    split, feats = data
    # a learning rate this high overfits fast; patience 1 must stop well before 200 epochs
    m = BPRMF(k=16, batch_size=512, lr=0.05, lambda_w=0.0, max_epochs=200, eval_every=1, patience=1).fit(split, feats)
    assert len(m.valid_history) < 200
    assert m.valid_history[-1]["recall@20"] <= m.best_value


def test_grid_search_selects_on_validation(data):
    split, feats = data
    best, table = grid_search(
        BPRMF,
        {"lr": [1e-5, 0.01]},
        split,
        feats,
        fixed=dict(k=16, batch_size=256, max_epochs=6, eval_every=3, patience=1),
    )
    assert list(table.columns) == ["lr", "valid_recall@20"] and len(table) == 2
    assert table["valid_recall@20"].is_monotonic_decreasing
    assert table.loc[0, "lr"] == 0.01 and best.params["lr"] == 0.01
    assert valid_recall(best, split) == pytest.approx(table.loc[0, "valid_recall@20"])


def test_registered_and_unknown_params_rejected():
    assert isinstance(create_model("bpr", k=8), BPRMF)
    with pytest.raises(TypeError, match="allowed"):
        create_model("bpr", factors=8)
    with pytest.raises(ValueError):
        BPRMF(patience=0)
