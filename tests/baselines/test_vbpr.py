"""VBPR and BPR-MF learn; our VBPR matches Cornac's ``cornac.models.VBPR`` on identical data; the
perf script runs."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from baselines.bpr import BPRMF
from baselines.simple import MostPopular, RandomRecommender
from baselines.vbpr import VBPR
from benchmark.demo.synthetic import make_synthetic
from benchmark.evaluation import evaluate
from benchmark.perf.vbpr import CornacScorer, cornac_train_set, main

logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


def valid_recall(model, split) -> float:
    return evaluate(model, split, part="valid", ks=(20,), metrics=("recall",), progress=False).means()["recall@20"]


@pytest.fixture(scope="module")
def data():
    return make_synthetic(600, 300, 32, seed=0)


@pytest.mark.parametrize(
    "factory",
    [
        lambda: BPRMF(k=32, train=dict(batch_size=256, lr=0.01, max_epochs=12, eval_every=2, patience=2)),
        lambda: VBPR(
            feature="clip_image+text", train=dict(batch_size=256, lr=0.01, max_epochs=12, eval_every=2, patience=2)
        ),
    ],
    ids=["bpr", "vbpr-image+text"],
)
def test_trained_models_beat_random_and_popularity(data, factory):
    split, feats = data
    model = factory().fit(split, feats)
    pop = valid_recall(MostPopular().fit(split, {}), split)
    rnd = valid_recall(RandomRecommender().fit(split, {}), split)
    assert model.best_value > pop + 0.05, (model.best_value, pop)
    assert model.best_value > rnd + 0.15


def test_vbpr_score_is_the_formula(data):
    split, feats = data
    m = VBPR(train={"max_epochs": 1, "batch_size": 512}).fit(split, feats)
    f = feats["clip_image"].values
    u = torch.tensor([0, 9])
    want = (
        m.beta_item
        + (f @ m.beta_prime).squeeze(1)
        + m.gamma_user[u] @ m.gamma_item.T
        + m.theta_user[u] @ (f @ m.emb_matrix).T
    )
    torch.testing.assert_close(m.score(u), want.detach(), rtol=1e-5, atol=1e-5)


@pytest.mark.slow
def test_vbpr_parity_with_cornac():
    """Same data, features, batch size (100), epochs, learning rate and regularisation; both scored
    by our evaluator. Per seed the two differ only by initialisation and sampling noise."""
    import cornac

    ours, theirs = [], []
    for seed in (0, 1, 2):
        split, feats = make_synthetic(400, 200, 32, seed=seed)
        m = VBPR(seed=seed, train={"max_epochs": 8, "eval_every": 8, "patience": 1}).fit(split, feats)
        c = cornac.models.VBPR(
            k=10,
            k2=10,
            n_epochs=8,
            batch_size=100,
            learning_rate=0.005,
            lambda_w=0.01,
            lambda_b=0.01,
            lambda_e=0.0,
            verbose=False,
            seed=seed,
        )
        c.fit(cornac_train_set(split, feats["clip_image"], seed=seed))
        ours.append(valid_recall(m, split))
        theirs.append(valid_recall(CornacScorer(c), split))
        floor = valid_recall(MostPopular().fit(split, {}), split)
        assert ours[-1] > floor and theirs[-1] > floor  # both learned something
    ours_a, theirs_a = np.array(ours), np.array(theirs)
    print(f"VBPR valid Recall@20 ours {ours_a.round(4)} cornac {theirs_a.round(4)}")
    # one validation user is worth 1/400 = 0.0025; seed-to-seed noise here is about ±0.02
    assert abs(ours_a.mean() - theirs_a.mean()) < 0.03
    assert np.abs(ours_a - theirs_a).max() < 0.06


def test_cornac_train_set_keeps_our_ids(data):
    split, feats = data
    ds = cornac_train_set(split, feats["clip_image"])
    assert ds.num_users == split.n_users and ds.num_items == split.n_items
    u, i, _ = ds.uir_tuple
    assert set(zip(u.tolist(), i.tolist())) == set(zip(split.train.user_id, split.train.item_id))
    np.testing.assert_array_equal(ds.item_image.features, feats["clip_image"].values.numpy())


@pytest.mark.slow
def test_perf_script_small(capsys):
    assert main(["--small"]) == 0
    out = capsys.readouterr().out
    assert "epoch time ratio ours/cornac" in out
    assert "ours" in out and "cornac" in out


@pytest.mark.slow
def test_perf_script_profiles_both_fits(capsys):
    """``--profile N``: each fit's top functions by own time, printed after the timed rows."""
    assert main(["--small", "--profile", "5"]) == 0
    out = capsys.readouterr().out
    for name in ("ours", "cornac"):
        section = out.split(f"== cProfile of {name}'s fit")[1]
        assert "tottime" in section and "function calls" in section
