"""The MMRec adapter: MMRec's models on our split and features, selected on our validation part."""

from __future__ import annotations

import importlib.util
import inspect
import json
import logging

import numpy as np
import pytest
import torch
from fixtures.model_tester import check_recommender

from baselines import mmrec_memory
from baselines.mmrec_adapter import MMREC_MODELS, MMRecRecommender
from baselines.mmrec_compat import MMRecUnavailableError
from baselines.mmrec_data import user_graph_dict
from benchmark.demo.synthetic import make_synthetic
from benchmark.errors import ConfigError
from benchmark.evaluation import evaluate
from benchmark.registry import MODELS, UnknownParameterError, create_model

FOUR = ("FREEDOM", "SMORE", "LGMRec", "BM3")
FAST = {"max_epochs": 3, "patience": 2, "batch_size": 256, "eval_batch_size": 256}


@pytest.fixture(scope="module")
def data():
    split, feats = make_synthetic(160, 90, 16, text_dim=12, seed=3)
    return split, {"image": feats["clip_image"], "text": feats["text"]}


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


def make(model: str, src, seed: int = 0, **train):
    return create_model(
        f"mmrec-{model.lower()}",
        image_feature="image",
        text_feature="text",
        mmrec_src=str(src),
        seed=seed,
        train={**FAST, **train},
    )


def users(split) -> torch.Tensor:
    return torch.arange(split.n_users)


# ------------------------------------------------------------------------------------- end to end
@pytest.mark.parametrize("model", FOUR)
def test_model_trains_selects_on_valid_and_scores(data, mmrec_src, model):
    split, feats = data
    # the shared contract: shapes, batch independence, same seed same scores, blind to split.test
    rec = check_recommender(lambda: make(model, mmrec_src), split, feats)
    assert 1 <= rec.best_epoch <= 3 and len(rec.loss_history) >= rec.best_epoch
    values = [h["recall@20"] for h in rec.valid_history]
    assert rec.best_value == max(values) and values.index(rec.best_value) + 1 == rec.best_epoch
    # the best epoch's whole state is back: validation gives the selected value again
    assert rec.validation_score(split, "recall", 20, 256) == pytest.approx(rec.best_value, abs=1e-12)
    scores = rec.score(users(split)[:7])
    assert scores.shape == (7, split.n_items) and torch.isfinite(scores).all()
    test = evaluate(rec, split, part="test", ks=(20,), metrics=("recall", "ndcg"), progress=False)
    assert 0 <= test.means()["recall@20"] <= 1
    info = json.loads(json.dumps(rec.describe()))
    assert info["train"]["max_epochs"] == 3 and info["train"]["lr"] == 1e-3
    assert info["mmrec"]["settings"]["model"] == model and info["mmrec"]["v_feat"] == "image"
    assert len(info["mmrec"]["model_file_sha256"]) == 64


def test_grid_defaults_and_overrides_reach_mmrec(data, mmrec_src):
    split, feats = data
    rec = create_model(
        "mmrec-freedom",
        image_feature="image",
        text_feature="text",
        config={"reg_weight": 1e-4, "knn_k": 5},
        mmrec_src=str(mmrec_src),
        train={**FAST, "max_epochs": 1, "lr": 0.01, "batch_size": 64, "weight_decay": 0.1},
    ).fit(split, feats)
    s = rec.mmrec_settings
    assert (s["dropout"], s["reg_weight"], s["knn_k"]) == (0.8, 1e-4, 5)  # FREEDOM's first dropout, overrides
    assert (s["learning_rate"], s["train_batch_size"], s["weight_decay"], s["epochs"]) == (0.01, 64, 0.1, 1)


def test_same_seed_same_scores_other_seed_differs(data, mmrec_src):
    split, feats = data
    a = make("BM3", mmrec_src, seed=1, max_epochs=2).fit(split, feats).score(users(split))
    b = make("BM3", mmrec_src, seed=1, max_epochs=2).fit(split, feats).score(users(split))
    c = make("BM3", mmrec_src, seed=2, max_epochs=2).fit(split, feats).score(users(split))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_sampling_at_inference_does_not_depend_on_batching(data, mmrec_src):
    split, feats = data  # LGMRec draws Gumbel noise in every forward, scoring included
    rec = make("LGMRec", mmrec_src, max_epochs=1).fit(split, feats)
    whole = rec.score(users(split))
    parts = torch.cat([rec.score(users(split)[i : i + 50]) for i in range(0, split.n_users, 50)])
    assert torch.equal(whole, parts)


def test_curves_go_to_the_logger(data, mmrec_src):
    class Recorder:
        def __init__(self):
            self.rows, self.saved = [], False

        def log_metrics(self, metrics, step):
            self.rows.append((step, dict(metrics)))

        def save(self):
            self.saved = True

    split, feats = data
    rec = make("BM3", mmrec_src, max_epochs=2, eval_every=2)
    logger = Recorder()
    rec.set_logger(logger)
    rec.fit(split, feats)
    assert [s for s, _ in logger.rows] == [1, 2] and logger.saved
    assert set(logger.rows[0][1]) == {"train/loss"} and set(logger.rows[1][1]) == {"train/loss", "valid/recall@20"}


# ------------------------------------------------------------------------------------- settings
def test_registered_names_and_parameters():
    for model in MMREC_MODELS:
        cls = MODELS.get(f"mmrec-{model.lower()}")
        assert cls.mmrec_model == model and "model" not in inspect.signature(cls).parameters
    assert MODELS.attribute("mmrec-freedom", "train_defaults")["patience"] == 21  # MMRec's stopping_step 20
    with pytest.raises(UnknownParameterError, match="model"):
        create_model("mmrec-freedom", model="BM3")
    with pytest.raises(ConfigError, match="model: MMRec's model class name is required"):
        create_model("mmrec")
    assert create_model("mmrec", model="BM3").params["model"] == "BM3"


def test_multimodal_models_need_a_feature(data, mmrec_src):
    split, _ = data
    with pytest.raises(ConfigError, match="give image_feature and/or text_feature"):
        create_model("mmrec-freedom", mmrec_src=str(mmrec_src), train=FAST).fit(split, {})
    with pytest.raises(KeyError, match="needs item features 'clip'"):
        create_model("mmrec-freedom", image_feature="clip", mmrec_src=str(mmrec_src)).fit(split, {})


def test_one_device_only(data, mmrec_src):
    split, feats = data
    with pytest.raises(ConfigError, match="train.devices: MMRec models train on one device"):
        make("FREEDOM", mmrec_src, devices=2).fit(split, feats)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA device"):
            make("FREEDOM", mmrec_src, accelerator="cuda").fit(split, feats)


def test_models_that_cannot_run_on_our_split_are_refused(data, mmrec_src):
    split, feats = data
    with pytest.raises(MMRecUnavailableError, match="item_graph_dict_file"):
        make("DAMRS", mmrec_src).fit(split, feats)


# ------------------------------------------------------------------------------------- memory
def test_estimate_counts_dense_item_graphs():
    need, dense = mmrec_memory.estimate_bytes("LATTICE", 19_445, 35_000, {"image": 768, "text": 384}, {})
    assert dense == 13 * 4 * 35_000**2 and need > dense
    assert mmrec_memory.estimate_bytes("BM3", 19_445, 35_000, {"image": 768}, {})[1] == 0


def test_a_model_that_will_not_fit_is_refused_before_building(data, mmrec_src, monkeypatch, caplog):
    split, feats = data
    monkeypatch.setattr(mmrec_memory, "available_bytes", lambda device: 1000)
    built = []
    monkeypatch.setattr(MMRecRecommender, "_train", lambda *a: built.append(1))
    with caplog.at_level(logging.INFO, logger="baselines.mmrec_memory"):
        with pytest.raises(mmrec_memory.InsufficientMemoryError, match=r"estimated peak memory .* GiB.*refused"):
            make("LATTICE", mmrec_src).fit(split, feats)
    assert not built and "estimated peak memory" in caplog.text


# ------------------------------------------------------------------------------------- data
def test_user_graph_matches_brute_force():
    rng = np.random.default_rng(0)
    u, i = rng.integers(0, 12, 60), rng.integers(0, 9, 60)
    graph = user_graph_dict(u, i, 13, top=4)  # user 12 has no items: no neighbours
    sets = [set(i[u == x]) for x in range(13)]
    for a in range(13):
        counts = {b: len(sets[a] & sets[b]) for b in range(13) if b != a and sets[a] & sets[b]}
        want = sorted(counts, key=lambda b: (-counts[b], b))[:4]
        assert graph[a] == [want, [float(counts[b]) for b in want]]


# ------------------------------------------------------------------------------------- all models
@pytest.mark.slow
@pytest.mark.parametrize("model", MMREC_MODELS)
def test_every_mmrec_model_runs_or_is_refused_clearly(data, mmrec_src, model):
    split, feats = data
    rec = make(model, mmrec_src, max_epochs=1)
    if model == "DAMRS":
        with pytest.raises(MMRecUnavailableError, match="item_graph_dict_file"):
            rec.fit(split, feats)
        return
    if model == "PGL" and importlib.util.find_spec("sparsesvd") is None:
        with pytest.raises(MMRecUnavailableError, match="sparsesvd"):
            rec.fit(split, feats)
        return
    if model in ("MMGCN", "GRCN", "DualGNN", "DRAGON", "MVGAE") and importlib.util.find_spec("torch_geometric") is None:
        pytest.skip("torch_geometric is not installed")
    rec.fit(split, feats)
    assert torch.isfinite(rec.score(users(split)[:5])).all()


# ------------------------------------------------------------------------------------- parity
@pytest.mark.slow
def test_exactly_mmrecs_own_main_on_the_same_files(mmrec_src):
    """MMRec's main.py (its trainer, its evaluator) and the adapter give the same test numbers."""
    from baselines.mmrec_parity import parity

    table = parity(["FREEDOM"], [0], epochs=2, patience=2, n_users=150, n_items=80, mmrec_src=str(mmrec_src))
    row = table.iloc[0]
    assert row["mmrec_best_epoch"] == row["ours_best_epoch"]
    for key in ("recall@20", "ndcg@20"):
        assert row[f"mmrec_{key}"] == pytest.approx(row[f"ours_{key}"], abs=1e-4)


@pytest.mark.gpu
@pytest.mark.parametrize("model", ("FREEDOM", "SMORE"))
def test_trains_on_the_gpu(data, mmrec_src, model):
    split, feats = data
    rec = make(model, mmrec_src, accelerator="gpu", max_epochs=2).fit(split, feats)
    assert rec.score(users(split)[:3]).device.type == "cuda"
    assert rec.mmrec_settings["use_gpu"] is True


def test_items_without_a_feature_get_the_mean(tmp_path, data):
    from baselines.mmrec_data import FEATURE_FILES, write_inputs
    from benchmark.features import ItemFeatures

    split, feats = data
    mask = np.ones(split.n_items, dtype=bool)
    mask[[0, 5]] = False
    image = ItemFeatures("image", feats["image"].values, mask)
    write_inputs(tmp_path, split, {"image": image}, user_graph=False)
    written = np.load(tmp_path / FEATURE_FILES["image"])
    np.testing.assert_allclose(written[[0, 5]], np.tile(image.values.numpy()[mask].mean(0), (2, 1)), rtol=1e-6)
    np.testing.assert_array_equal(written[mask], image.values.numpy()[mask])


def test_params_and_clone_from_the_signature():
    rec = create_model("mmrec-freedom", image_feature="image", config={"knn_k": 5}, train={"max_epochs": 4})
    params = rec.get_params()
    assert "model" not in params and params["config"] == {"knn_k": 5} and params["train"].max_epochs == 4
    other = rec.clone(train={"lr": 0.01}, config={"knn_k": 7})
    assert type(other) is type(rec) and other.params["model"] == "FREEDOM"
    assert (other.train_config.max_epochs, other.train_config.lr, other.params["config"]) == (4, 0.01, {"knn_k": 7})
    generic = create_model("mmrec", model="BM3").clone(seed=3)
    assert generic.params["model"] == "BM3" and generic.params["seed"] == 3
