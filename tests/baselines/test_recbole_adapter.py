"""RecBole 1.2.1 through our split and evaluator: shims, training, id mapping, parity with our BPR."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import recbole
import torch
import yaml

from baselines.recbole_adapter import recbole_device
from benchmark.registry import create_model
from benchmark.split import Split, empty_catalogue
from benchmark.train_config import TrainConfig


def clustered_split(
    n_users: int = 60, n_items: int = 40, n_clusters: int = 4, per_user: int = 8, seed: int = 0, noise: float = 0.0
) -> Split:
    """Users like one cluster of items (a ``noise`` share of picks is uniform over all items);
    original ids are shuffled strings so RecBole's token order differs from our item order."""
    rng = np.random.default_rng(seed)
    names = [f"item-{k:03d}" for k in rng.permutation(n_items)]
    cluster = np.arange(n_items) % n_clusters
    rows = []
    for u in range(n_users):
        own = np.flatnonzero(cluster == u % n_clusters)
        n_noise = int(rng.binomial(per_user, noise))
        picks = list(rng.choice(own, size=per_user - n_noise, replace=False))
        rest = np.setdiff1d(np.arange(n_items), picks)
        picks += list(rng.choice(rest, size=n_noise, replace=False))
        for t, i in enumerate(rng.permutation(picks)):
            rows.append((f"user-{(u * 7919) % n_users:03d}", names[i], 5.0, 1000 + t))
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    pos = df.groupby("user").cumcount()
    size = df.groupby("user")["item"].transform("size")
    parts = {"train": df[pos < size - 2], "valid": df[pos == size - 2], "test": df[pos == size - 1]}
    return Split.from_parts(parts, empty_catalogue(names), "synthetic", {"seed": seed})


# ------------------------------------------------------------------------------------------ shims
def test_numpy_shim_is_needed_and_sufficient() -> None:
    """In a fresh interpreter RecBole's Config fails on numpy 2 without the shim and works with it."""
    code = (
        "import numpy as np\n"
        "from recbole.config import Config\n"
        "cfg = {'data_path': '/nonexistent', 'use_gpu': False}\n"
        "try:\n"
        "    Config(model='BPR', dataset='x', config_dict=cfg)\n"
        "    print('WITHOUT: ok')\n"
        "except AttributeError as exc:\n"
        "    print('WITHOUT: failed', exc)\n"
        "from baselines.recbole_compat import apply_numpy_aliases\n"
        "print('ADDED:', sorted(apply_numpy_aliases()))\n"
        "c = Config(model='BPR', dataset='x', config_dict=cfg)\n"
        "assert c['model'] == 'BPR' and np.float is np.float64\n"
        "print('WITH: ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    if int(np.__version__.split(".")[0]) >= 2:
        assert "WITHOUT: failed" in out.stdout and "float_" in out.stdout
        assert "ADDED: ['complex_', 'float_', 'unicode_']" in out.stdout
    assert "WITH: ok" in out.stdout


def test_quick_start_is_refused_and_scipy_alias_applied() -> None:
    import scipy.sparse as sp

    from baselines.recbole_compat import apply_scipy_aliases, import_recbole

    with pytest.raises(ImportError, match="ray"):
        import_recbole("recbole.quick_start")
    apply_scipy_aliases()
    a = sp.dok_matrix((3, 3), dtype=np.float32)
    a._update({(0, 1): 1.0, (2, 2): 1.0})  # what RecBole's LightGCN/NGCF call
    assert a.toarray()[0, 1] == 1.0 and a.nnz == 2


# ------------------------------------------------------------------------------------------ training
@pytest.mark.parametrize("model", ["BPR", "LightGCN", "NGCF", "MultiVAE"])
def test_models_train_and_score_in_our_item_order(model: str, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything RecBole writes to the working directory would land here
    split = clustered_split()
    rec = create_model(
        f"recbole-{model.lower()}",
        seed=1,
        train={"max_epochs": 2},
        config_overrides={"embedding_size": 16} if model != "MultiVAE" else {"latent_dimension": 16},
    )
    rec.fit(split, {})
    users = torch.arange(split.n_users)
    scores = rec.score(users)
    assert scores.shape == (split.n_users, split.n_items) and scores.dtype == torch.float32
    assert torch.isfinite(scores).all()
    assert rec.best_valid_score is not None
    assert list(tmp_path.iterdir()) == []  # no log_tensorboard/, saved/ or log/ in the working directory


def test_column_alignment_through_token_maps() -> None:
    """Set RecBole's embeddings from its own id->token arrays; our columns must come back as our ids."""
    split = clustered_split(seed=3)
    rec = create_model("recbole-bpr", seed=0, train={"max_epochs": 1}, config_overrides={"embedding_size": 2})
    rec.fit(split, {})
    item_of = {tok: i for i, tok in enumerate(split.items["orig_item_id"])}
    user_of = {tok: u for u, tok in enumerate(split.users["orig_user_id"])}
    item_w = torch.zeros(len(rec.recbole_item_tokens), 2)
    user_w = torch.zeros(len(rec.recbole_user_tokens), 2)
    for internal, tok in enumerate(rec.recbole_item_tokens):
        if tok in item_of:
            item_w[internal] = torch.tensor([float(item_of[tok]), 1.0])
    for internal, tok in enumerate(rec.recbole_user_tokens):
        if tok in user_of:
            user_w[internal] = torch.tensor([1.0, 1000.0 * user_of[tok]])
    with torch.no_grad():
        rec.model.item_embedding.weight.copy_(item_w)
        rec.model.user_embedding.weight.copy_(user_w)
    users = torch.tensor([0, 5, 17])
    scores = rec.score(users)
    want = torch.arange(split.n_items, dtype=torch.float32)[None, :] + 1000.0 * users[:, None].float()
    torch.testing.assert_close(scores, want)
    # our item 7 made the best: it must be column 7 for every user
    with torch.no_grad():
        rec.model.item_embedding.weight[rec.recbole_item_tokens.index(split.items["orig_item_id"][7])] = torch.tensor(
            [1e6, 0.0]
        )
    assert (rec.score(users).argmax(dim=1) == 7).all()


def test_items_recbole_never_saw_score_minus_inf() -> None:
    base = clustered_split(n_users=20, n_items=12, n_clusters=2, per_user=5)
    # an importer-fixed item order can hold an item no part mentions
    parts = {
        p: base.part(p).rename(columns={"orig_user_id": "user", "orig_item_id": "item"})[
            ["user", "item", "rating", "timestamp"]
        ]
        for p in ("train", "valid", "test")
    }
    order = ["ghost-item"] + list(base.items["orig_item_id"])
    split = Split.from_parts(parts, empty_catalogue(order), "synthetic", {}, item_order=order)
    rec = create_model("recbole-bpr", seed=0, train={"max_epochs": 1}, config_overrides={"embedding_size": 4})
    rec.fit(split, {})
    s = rec.score(torch.arange(3))
    assert torch.isneginf(s[:, 0]).all() and torch.isfinite(s[:, 1:]).all()


def test_config_overrides_cannot_move_the_data() -> None:
    with pytest.raises(ValueError, match="data layout"):
        create_model("recbole", model="BPR", config_overrides={"benchmark_filename": ["a"]})


def test_config_overrides_cannot_set_trainer_keys() -> None:
    with pytest.raises(ValueError, match=r"learning_rate: train\.lr; epochs: train\.max_epochs"):
        create_model("recbole-bpr", config_overrides={"learning_rate": 0.1, "epochs": 3, "embedding_size": 8})
    with pytest.raises(ValueError, match="seed argument"):
        create_model("recbole-bpr", config_overrides={"seed": 3})


def recbole_dict(rec, split: Split) -> dict:
    rec.n_users, rec.n_items = split.n_users, split.n_items
    return rec.recbole_config(Path("/data"), "x", Path("/work"))


def test_default_train_config_is_recboles_own() -> None:
    """Without a train config the adapter hands RecBole the values it used before TrainConfig
    (RecBole 1.2.1's overall.yaml defaults, selection on Recall@20), so results are unchanged."""
    split = clustered_split()
    cfg = recbole_dict(create_model("recbole-bpr"), split)
    want = {
        "seed": 2020,
        "epochs": 300,
        "stopping_step": 10,
        "eval_step": 1,
        "learning_rate": 1e-3,
        "weight_decay": 0.0,
        "train_batch_size": 2048,
        "eval_batch_size": 4096,
        "clip_grad_norm": None,
        "metrics": ["Recall", "NDCG"],
        "topk": [20],
        "valid_metric": "Recall@20",
        "use_gpu": False,
        "reproducibility": True,
        "show_progress": False,
    }
    assert {k: cfg[k] for k in want} == want
    overall = yaml.safe_load((Path(recbole.__file__).parent / "properties" / "overall.yaml").read_text())
    for key in ("epochs", "stopping_step", "learning_rate", "train_batch_size", "eval_batch_size", "weight_decay"):
        assert cfg[key] == overall[key], key


def test_train_config_maps_onto_recbole_keys() -> None:
    split = clustered_split()
    train = {
        "max_epochs": 7,
        "patience": 2,
        "eval_every": 3,
        "lr": 0.05,
        "weight_decay": 1e-4,
        "batch_size": 64,
        "eval_batch_size": 128,
        "gradient_clip_val": 5.0,
        "metric": "ndcg",
        "eval_k": 10,
        "enable_progress_bar": True,
        "deterministic": False,
    }
    cfg = recbole_dict(create_model("recbole-lightgcn", seed=4, train=train), split)
    assert {k: cfg[k] for k in ("seed", "epochs", "stopping_step", "eval_step", "learning_rate", "weight_decay")} == {
        "seed": 4,
        "epochs": 7,
        "stopping_step": 2,
        "eval_step": 3,
        "learning_rate": 0.05,
        "weight_decay": 1e-4,
    }
    assert cfg["train_batch_size"] == 64 and cfg["eval_batch_size"] == 128
    assert cfg["clip_grad_norm"] == {"max_norm": 5.0}
    assert cfg["valid_metric"] == "NDCG@10" and cfg["topk"] == [10] and "NDCG" in cfg["metrics"]
    assert cfg["show_progress"] is True and cfg["reproducibility"] is False
    hit = recbole_dict(create_model("recbole-bpr", train={"metric": "hitrate"}), split)
    assert hit["valid_metric"] == "Hit@20" and hit["metrics"] == ["Recall", "NDCG", "Hit"]


def test_devices_map_to_one_recbole_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert recbole_device(TrainConfig()) == (False, "0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert recbole_device(TrainConfig(accelerator="gpu")) == (True, "0")
    assert recbole_device(TrainConfig(accelerator="cuda", devices=[2])) == (True, "2")
    assert recbole_device(TrainConfig(accelerator="auto", devices="1")) == (True, "1")
    for bad in (dict(accelerator="gpu", devices=2), dict(accelerator="gpu", devices=[0, 1]), dict(num_nodes=2)):
        with pytest.raises(ValueError, match="one device"):
            recbole_device(TrainConfig(**bad))
    with pytest.raises(ValueError, match="mps"):
        recbole_device(TrainConfig(accelerator="mps"))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert recbole_device(TrainConfig(accelerator="auto")) == (False, "0")
    with pytest.raises(ValueError, match="no CUDA"):
        create_model("recbole-bpr", train={"accelerator": "gpu"})


def test_get_params_and_clone_keep_the_model_and_train_config() -> None:
    rec = create_model("recbole-ngcf", seed=3, train={"max_epochs": 5}, config_overrides={"embedding_size": 8})
    params = rec.get_params()
    assert params["model"] == "NGCF" and params["seed"] == 3 and params["train"].max_epochs == 5
    twin = rec.clone(train={"lr": 0.01})
    assert twin.params["model"] == "NGCF" and twin.params["config_overrides"] == {"embedding_size": 8}
    assert twin.train_config.max_epochs == 5 and twin.train_config.lr == 0.01
    assert rec.describe()["train"]["max_epochs"] == 5


# ------------------------------------------------------------------------------------------ parity
@pytest.mark.slow
def test_bpr_parity_with_our_lightning_bpr() -> None:
    """Our Lightning BPR and RecBole's BPR, configured alike (32 factors, Adam 1e-2, batch 256, no
    L2, no item bias, early stopping with patience 10 on validation Recall@20), reach test
    Recall@20 within noise of each other on one generated split per seed (3 seeds)."""
    pytest.importorskip("baselines.bpr")
    from benchmark.evaluation import evaluate

    ours, theirs = [], []
    for seed in (0, 1, 2):
        split = clustered_split(n_users=200, n_items=160, n_clusters=4, per_user=12, seed=seed, noise=0.3)
        train = {"lr": 1e-2, "max_epochs": 60, "patience": 10, "batch_size": 256}
        a = create_model("bpr", k=32, lambda_w=0.0, lambda_b=0.0, item_bias=False, seed=seed, train=train).fit(
            split, {}
        )
        b = create_model("recbole-bpr", seed=seed, train=train, config_overrides={"embedding_size": 32})
        b.fit(split, {})
        ours.append(evaluate(a, split, part="test", ks=(20,), progress=False).means()["recall@20"])
        theirs.append(evaluate(b, split, part="test", ks=(20,), progress=False).means()["recall@20"])
    ours_m, theirs_m = float(np.mean(ours)), float(np.mean(theirs))
    print(
        f"test Recall@20, seeds 0-2: ours {np.round(ours, 3).tolist()} (mean {ours_m:.3f}); "
        f"RecBole {np.round(theirs, 3).tolist()} (mean {theirs_m:.3f})"
    )
    chance = 20 / 160
    assert ours_m > 2 * chance and theirs_m > 2 * chance  # both learned the clusters
    assert abs(ours_m - theirs_m) < 0.08  # per-seed spread on 200 test users is about ±0.05


@pytest.mark.gpu
def test_recbole_on_gpu() -> None:
    split = clustered_split()
    rec = create_model(
        "recbole-lightgcn",
        seed=0,
        train={"max_epochs": 2, "accelerator": "gpu"},
        config_overrides={"embedding_size": 16},
    ).fit(split, {})
    assert next(rec.model.parameters()).is_cuda
    s = rec.score(torch.arange(split.n_users, device="cuda"))
    assert s.is_cuda and s.shape == (split.n_users, split.n_items) and torch.isfinite(s).all()
