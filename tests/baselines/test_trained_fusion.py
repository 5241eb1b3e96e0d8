"""Trained fusion models: they learn users (beat random and most-popular on validation), and the
paper's loss option reproduces the paper code's objective."""

from __future__ import annotations

import logging

import pytest
import torch

from baselines.simple import MostPopular, RandomRecommender
from baselines.trained_fusion import AttentionFusion, CrossModalAttention, FusionRecommender, GatingFusion
from benchmark.demo.synthetic import make_synthetic
from benchmark.evaluation import evaluate
from benchmark.registry import create_model

logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)

SMALL = dict(
    hidden_dim=32, output_dim=32, num_heads=4, train=dict(batch_size=256, max_epochs=4, eval_every=2, patience=2)
)


@pytest.fixture(scope="module")
def data():
    split, feats = make_synthetic(500, 300, 24, text_dim=20, seed=4)
    return split, feats


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


def valid_recall(model, split) -> float:
    return evaluate(model, split, part="valid", ks=(20,), metrics=("recall",), progress=False).means()["recall@20"]


@pytest.fixture(scope="module")
def floors(data):
    split, _ = data
    return (valid_recall(MostPopular().fit(split, {}), split), valid_recall(RandomRecommender().fit(split, {}), split))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["attention-fusion", "gating-fusion", "crossmodal-fusion"])
def test_fusion_beats_random_and_popularity(data, floors, name):
    split, feats = data
    model = create_model(name, **SMALL).fit(split, feats)
    pop, rnd = floors
    assert model.best_value > pop + 0.05, (model.best_value, pop)
    assert model.best_value > rnd + 0.1
    s = model.score(torch.arange(10))
    assert s.shape == (10, split.n_items) and torch.isfinite(s).all()


def test_softmax_objective_learns(data, floors):
    split, feats = data
    model = create_model("gating-fusion", loss="softmax", **SMALL).fit(split, feats)
    assert model.best_value > floors[0] + 0.05


def test_learned_user_embedding_option_trains(data, floors):
    split, feats = data
    model = create_model(
        "attention-fusion", user="embedding", **dict(SMALL, train=dict(SMALL["train"], lr=0.01, eval_every=4))
    )
    model.fit(split, feats)
    assert model.best_value > floors[1] + 0.08  # learns users from scratch (more slowly than profiles)


def test_paper_loss_positive_term_is_constant(data):
    """The paper's contrastive positive is an item with itself: the loss ignores users entirely."""
    split, feats = data
    m = create_model("attention-fusion", loss="paper", **SMALL)
    m.n_users, m.n_items = split.n_users, split.n_items
    m.build(split, feats)
    pos = torch.arange(8)
    torch.manual_seed(0)
    a = m.triplet_loss(torch.zeros(8, dtype=torch.long), pos, pos + 1)
    torch.manual_seed(0)
    b = m.triplet_loss(torch.arange(8) + 100, pos, pos + 50)  # other users, other sampled negatives
    assert torch.allclose(a, b)  # neither the user nor the DataModule's negative enters it
    f = torch.nn.functional.normalize(m.fuse(pos), dim=-1)
    assert torch.allclose((f * f).sum(-1), torch.ones(8), atol=1e-5)
    fitted = create_model("attention-fusion", loss="paper", **dict(SMALL, train=dict(SMALL["train"], max_epochs=2)))
    fitted.fit(split, feats)
    assert torch.isfinite(fitted.score(torch.arange(4))).all()


@pytest.mark.parametrize("cls", [AttentionFusion, GatingFusion, CrossModalAttention])
def test_modules_shapes_and_nonnegative_output(cls):
    m = cls(20, 24, 32, 16, 4)
    out = m(torch.randn(5, 20), torch.randn(5, 24))
    assert out.shape == (5, 16) and (out >= 0).all()  # the paper's head ends in ReLU


def test_missing_features_and_bad_options(data):
    split, feats = data
    with pytest.raises(KeyError, match="clip_text"):
        create_model("gating-fusion", text_feature="clip_text", **SMALL).fit(split, feats)
    with pytest.raises(ValueError, match="loss"):
        FusionRecommender(loss="triplet")
    with pytest.raises(ValueError, match="user"):
        FusionRecommender(user="mean")


@pytest.mark.parametrize(
    "opts",
    [dict(loss="bpr"), dict(loss="softmax"), dict(loss="bpr", user="embedding"), dict(loss="paper")],
    ids=["bpr", "softmax", "embedding", "paper"],
)
def test_items_without_features_are_not_trained_on(data, opts):
    """A positive lacking a feature scores -inf at evaluation; its fused vector is that of a zero input.
    Training on it would only pull profiles towards that constant vector, so it adds no loss."""
    from benchmark.features import ItemFeatures

    split, feats = data
    text = feats["text"]
    mask = text.mask.clone()
    mask[::2] = False  # even items have no text feature
    feats = dict(feats, text=ItemFeatures(text.name, text.values, mask, text.provenance))
    m = create_model("attention-fusion", **dict(SMALL, **opts))
    m.n_users, m.n_items = split.n_users, split.n_items
    m.build(split, feats)
    train = split.train
    odd = train[train.item_id % 2 == 1].head(16)
    even = train[train.item_id % 2 == 0].head(16)
    users_e, pos_e = torch.tensor(even.user_id.to_numpy()), torch.tensor(even.item_id.to_numpy())
    neg = torch.full_like(pos_e, 1)  # an item with features
    torch.manual_seed(0)
    only_featureless = m.triplet_loss(users_e, pos_e, neg)
    assert only_featureless.item() == 0.0
    only_featureless.backward()  # still a graph, so Lightning's step works
    assert all(p.grad is None or not p.grad.any() for p in m.parameters())
    # a mixed batch gives the same loss as its usable rows alone
    users_o, pos_o = torch.tensor(odd.user_id.to_numpy()), torch.tensor(odd.item_id.to_numpy())
    neg_o = (pos_o + 2) % split.n_items
    torch.manual_seed(1)
    alone = m.triplet_loss(users_o, pos_o, neg_o)
    torch.manual_seed(1)
    mixed = m.triplet_loss(torch.cat([users_o, users_e]), torch.cat([pos_o, pos_e]), torch.cat([neg_o, neg]))
    if opts["loss"] != "softmax":  # in-batch softmax: the featureless positives are masked candidates too
        torch.testing.assert_close(mixed, alone)
    else:
        assert torch.isfinite(mixed)


def test_use_history_profiles_users_from_other_parts_without_retraining(data):
    """The captioned-only evaluation mode profiles users from train + valid, as the paper's
    script does: the fused item vectors stay, the profile is the sum of the history's raw fused
    vectors (cosine ignores the scale of the mean)."""
    split, feats = data
    model = create_model("attention-fusion", **dict(SMALL, train=dict(SMALL["train"], max_epochs=1)))
    model.fit(split, feats)
    users = torch.arange(20)
    before = model.score(users)
    assert model.use_history(split, ("train", "valid")) is True
    after = model.score(users)
    with torch.no_grad():
        raw = model._all_fused()
    indptr, indices = split.csr(("train", "valid"))
    for u in range(20):
        hist = indices[indptr[u] : indptr[u + 1]]
        hist = hist[model.item_mask[hist]]
        prof = torch.nn.functional.normalize(raw[hist].sum(0), dim=0)
        expected = torch.nn.functional.normalize(raw, dim=1) @ prof
        torch.testing.assert_close(after[u], expected.masked_fill(~model.item_mask, -float("inf")))
    assert not torch.equal(before, after)
    with pytest.raises(ValueError, match="must not include 'test'"):
        model.use_history(split, ("train", "test"))
    embedding = create_model(
        "attention-fusion", user="embedding", **dict(SMALL, train=dict(SMALL["train"], max_epochs=1))
    )
    assert embedding.fit(split, feats).use_history(split, ("train", "valid")) is False
