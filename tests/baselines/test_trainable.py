"""Lightning base: one train config, validation-only selection, determinism, parameters and clone, grids."""

from __future__ import annotations

import dataclasses
import inspect
import logging

import pytest
import torch
from fixtures.model_tester import check_recommender

from baselines.bpr import BPRMF
from baselines.simple import ItemKNN, MostPopular, RandomRecommender
from baselines.trainable import grid_search
from baselines.trained_fusion import AttentionFusionRecommender
from baselines.vbpr import VBPR
from benchmark.demo.synthetic import make_synthetic
from benchmark.errors import ConfigError
from benchmark.evaluation import evaluate
from benchmark.registry import create_model
from benchmark.train_config import TrainConfig

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
    kw = dict(k=16, seed=5, train=dict(batch_size=256, lr=0.01, max_epochs=12, eval_every=2, patience=2))
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
    train = dict(batch_size=512, lr=0.05, max_epochs=200, eval_every=1, patience=1)
    m = BPRMF(k=16, lambda_w=0.0, train=train).fit(split, feats)
    assert len(m.valid_history) < 200
    assert m.valid_history[-1]["recall@20"] <= m.best_value


def test_grid_search_selects_on_validation(data):
    split, feats = data
    template = BPRMF(k=16, train=dict(batch_size=256, max_epochs=6, eval_every=3, patience=1))
    best, table = grid_search(template, {"train.lr": [1e-5, 0.01]}, split, feats)
    assert list(table.columns) == ["train.lr", "valid_recall@20"] and len(table) == 2
    assert table["valid_recall@20"].is_monotonic_decreasing
    assert table.loc[0, "train.lr"] == 0.01 and best.train_config.lr == 0.01
    assert best.train_config.max_epochs == 6 and best.params["k"] == 16  # the template's other settings
    assert valid_recall(best, split) == pytest.approx(table.loc[0, "valid_recall@20"])
    assert template.n_items == 0  # the template itself is never fitted


def test_registered_and_unknown_params_rejected():
    assert isinstance(create_model("bpr", k=8), BPRMF)
    with pytest.raises(TypeError, match="allowed"):
        create_model("bpr", factors=8)
    with pytest.raises(TypeError, match="allowed: k, lambda_w"):
        create_model("bpr", max_epochs=8)  # a trainer key is not a model parameter
    with pytest.raises(ConfigError, match=r"train\.max_epoch: unknown key; allowed keys here: .*max_epochs"):
        BPRMF(train={"max_epoch": 8})
    with pytest.raises(ConfigError, match="patience"):
        BPRMF(train={"patience": 0})


@pytest.mark.parametrize(
    ("cls", "own"),
    [
        (BPRMF, {"lr": 5e-3, "max_epochs": 100}),
        (VBPR, {"lr": 5e-3, "batch_size": 100}),
        (AttentionFusionRecommender, {"batch_size": 256, "max_epochs": 30, "patience": 3, "gradient_clip_val": 1.0}),
    ],
)
def test_train_config_layers_over_the_class_defaults(cls, own):
    assert cls.train_defaults == own
    assert cls().train_config == TrainConfig(**own)  # the defaults each model had before TrainConfig
    m = cls(train={"max_epochs": 3})
    assert m.train_config == TrainConfig(**dict(own, max_epochs=3))
    given = TrainConfig(max_epochs=2)  # an instance is used as given (the runner resolved its layers)
    assert cls(train=given).train_config is given


def test_get_params_and_clone_follow_the_constructor(data):
    split, feats = data
    m = BPRMF(k=8, lambda_w=0.0, seed=3, train={"max_epochs": 2, "batch_size": 512})
    params = m.get_params()
    assert list(params) == ["k", "lambda_w", "lambda_b", "item_bias", "seed", "train"]
    assert params["k"] == 8 and params["seed"] == 3 and params["train"] == m.train_config
    twin = m.clone()
    assert type(twin) is BPRMF and twin is not m and twin.get_params() == params
    m.fit(split, feats)
    twin.fit(split, feats)
    assert torch.equal(m.score(torch.arange(5)), twin.score(torch.arange(5)))  # same parameters, same model
    other = m.clone(k=4, train={"lr": 0.1})
    assert other.params["k"] == 4 and other.train_config.lr == 0.1
    assert other.train_config.max_epochs == 2 and other.train_config.batch_size == 512  # kept
    assert other.n_items == 0  # unfitted
    with pytest.raises(TypeError, match="unknown parameter"):
        m.clone(factors=4)
    # the training-free models share the mechanism
    knn = ItemKNN(feature="clip_image", neighbours=5)
    assert knn.get_params() == {"feature": "clip_image", "neighbours": 5, "chunk_size": 2048}
    assert knn.clone(neighbours=7).params["neighbours"] == 7


def test_describe_gives_own_params_train_and_selection(data):
    split, feats = data
    m = BPRMF(k=8, seed=2, train={"max_epochs": 2}).fit(split, feats)
    info = m.describe()
    assert info["class"] == "baselines.bpr.BPRMF"
    assert info["params"] == {"k": 8, "lambda_w": 0.01, "lambda_b": 0.01, "item_bias": True, "seed": 2}
    assert info["train"] == TrainConfig(lr=5e-3, max_epochs=2).to_dict()
    assert info["best_epoch"] in (1, 2) and info["best_valid"] == m.best_value
    assert [h["epoch"] for h in info["valid_history"]] == [1, 2]
    assert len(info["state_sha256"]) == 64


def test_the_runner_logger_is_set_not_constructed(tmp_path):
    from pytorch_lightning.loggers import CSVLogger

    assert "logger" not in inspect.signature(BPRMF).parameters
    m = BPRMF()
    assert m.lightning_trainer([]).logger is None  # no logger unless the runner gives one
    logger = CSVLogger(tmp_path)
    m.set_logger(logger)
    assert m.lightning_trainer([]).logger is logger


def test_check_features_is_one_function():
    from baselines.trainable import TrainableRecommender
    from benchmark.recommender import BaseRecommender, ModelParams

    assert TrainableRecommender.check_features is BaseRecommender.check_features is ModelParams.check_features


CONTRACT = [
    ("bpr", {"k": 8}),
    ("vbpr", {"feature": "clip_image+text", "k": 8, "k2": 4}),
    ("attention-fusion", {"text_feature": "text", "hidden_dim": 16, "output_dim": 16}),
    ("gating-fusion", {"text_feature": "text", "hidden_dim": 16, "output_dim": 16, "loss": "softmax"}),
    ("crossmodal-fusion", {"text_feature": "text", "hidden_dim": 16, "output_dim": 16, "user": "embedding"}),
]


@pytest.mark.parametrize(("name", "params"), CONTRACT, ids=[n for n, _ in CONTRACT])
def test_trained_models_meet_the_recommender_contract(data, name, params):
    split, feats = data
    train = {"max_epochs": 2, "batch_size": 512}
    model = check_recommender(lambda: create_model(name, seed=1, train=train, **params), split, feats)
    assert model.clone().get_params() == model.get_params()
