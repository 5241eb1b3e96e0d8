"""The units stage: trainer settings layered into one TrainConfig for models that take ``train``,
seeds for models that take ``seed``, the writing version in every unit record, resuming."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures.amazon_files import make_rows

from benchmark.configuration import ConfigError, from_dict
from benchmark.protocols import make_split
from benchmark.recommender import BaseRecommender
from benchmark.registry import register_model
from benchmark.runner.config import ExperimentConfig
from benchmark.runner.stages.units import UnitInputs, run_units, units_for
from benchmark.runner.tracking import Tracker
from benchmark.train_config import TrainConfig

RECEIVED: list[TrainConfig | None] = []


@register_model("unitstest-trainable")
class _Trainable(BaseRecommender):
    """Popularity scores plus seeded noise; records the trainer settings it was given."""

    train_defaults = {"batch_size": 100, "max_epochs": 9}

    def __init__(self, noise: float = 0.0, seed: int = 0, train: TrainConfig | None = None) -> None:
        super().__init__(noise=noise, seed=seed)
        self.train = train
        self.seed = seed
        RECEIVED.append(train)

    def fit(self, split, features):
        super().fit(split, features)
        self.counts = torch.bincount(
            torch.from_numpy(split.train["item_id"].to_numpy().copy()), minlength=split.n_items
        )
        return self

    def score(self, user_ids):
        g = torch.Generator().manual_seed(self.seed)
        noise = self.params["noise"] * torch.rand(len(user_ids), self.n_items, generator=g)
        return self.counts.float().expand(len(user_ids), -1) + noise


@register_model("unitstest-plain")
class _Plain(_Trainable):
    def __init__(self, noise: float = 0.0) -> None:  # neither seed nor train
        super().__init__(noise=noise)


def config(**changes) -> ExperimentConfig:
    data = {
        "experiment": "units",
        "dataset": {"source": "demo"},
        "seeds": [0, 1],
        "train": {"max_epochs": 3, "batch_size": 50},
        "models": [
            {"name": "T", "model": "unitstest-trainable", "params": {"noise": 0.5}, "train": {"max_epochs": 2}},
            {"name": "P", "model": "unitstest-plain"},
        ],
        "evaluation": {"ks": [5], "metrics": ["recall", "ndcg"], "subsets": False},
    }
    return from_dict(ExperimentConfig, data | changes)


@pytest.fixture(scope="module")
def split():
    rows = make_rows(n_users=20, n_items=12, per_user=6, seed=2)
    df = pd.DataFrame(
        {"user": [r.user for r in rows], "item": [r.item for r in rows], "timestamp": [r.ts for r in rows]}
    )
    return make_split(df.assign(rating=1.0), None, "loo")


def tracker_factory(run_dir):
    return lambda name, cfg: Tracker("none", run_dir, "p", None, group="g", name=name, config=cfg)


def test_trainer_settings_are_layered_into_one_train_config(split, tmp_path):
    cfg = config()
    RECEIVED.clear()
    version = {"vlm4rec_bench_version": "9.9.9", "git": {"commit": "abc", "dirty": False}}
    inputs = UnitInputs(split, {}, cfg.evaluation, tmp_path, version)
    ran, done = run_units(cfg.models, cfg.seeds, cfg.train, inputs, tracker_factory(tmp_path))
    assert ran == ["T__seed0", "T__seed1", "P"] and done == []
    # class defaults (batch 100, epochs 9) ← experiment (batch 50, epochs 3) ← model entry (epochs 2)
    trained = [t for t in RECEIVED if t is not None]
    assert len(trained) == 2 and all(isinstance(t, TrainConfig) for t in trained)
    assert (trained[0].max_epochs, trained[0].batch_size, trained[0].lr) == (2, 50, TrainConfig().lr)
    assert RECEIVED.count(None) == 1  # the plain model got no `train`
    rec = json.loads((tmp_path / "units" / "T__seed1.json").read_text())
    assert rec["seed"] == 1 and rec["params"] == {"noise": 0.5, "seed": 1}
    assert rec["train"]["max_epochs"] == 2 and rec["train"]["batch_size"] == 50
    assert rec["vlm4rec_bench_version"] == "9.9.9" and rec["git"] == {"commit": "abc", "dirty": False}
    plain = json.loads((tmp_path / "units" / "P.json").read_text())
    assert plain["train"] is None and plain["seed"] is None
    per_user = pd.read_parquet(tmp_path / "units" / "T__seed1.parquet")
    assert list(per_user.columns) == ["user_id", "recall@5", "ndcg@5"] and len(per_user) == 20
    assert np.isclose(per_user["recall@5"].mean(), rec["test"]["recall@5"])
    # a second pass finds every unit done
    again = run_units(cfg.models, cfg.seeds, cfg.train, inputs, tracker_factory(tmp_path))
    assert again == ([], ["T__seed0", "T__seed1", "P"])


def test_units_follow_the_constructor():
    cfg = config(seeds=[3, 4, 5])
    cfg.models[0].seeds = [7]
    assert [u.key for u in units_for(cfg.models, cfg.seeds)] == ["T__seed7", "P"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"train": {"max_epoch": 3}}, "train.max_epoch: unknown key"),
        ({"train": {"accelerator": "tpu"}}, "train.accelerator: 'tpu' is not allowed"),
        (
            {"models": [{"name": "T", "model": "unitstest-trainable", "train": {"lr": "fast"}}]},
            "models[0].train.lr: expected a number",
        ),
        (
            {"models": [{"name": "P", "model": "unitstest-plain", "train": {"max_epochs": 2}}]},
            "models[0].train: model 'unitstest-plain' takes no trainer settings",
        ),
        (
            {"models": [{"name": "T", "model": "unitstest-trainable", "params": {"train": {"max_epochs": 2}}}]},
            "models[0].params.train: trainer settings go under the model's `train` key",
        ),
    ],
)
def test_trainer_settings_errors_name_the_key(change, message):
    with pytest.raises(ConfigError) as err:
        config(**change)
    assert message in str(err.value)


def test_a_resume_refuses_to_mix_code_versions_unless_allowed(split, tmp_path):
    # §7 regression: a resumed run reused finished units made by other code, invisibly.
    from benchmark.configuration import to_dict
    from benchmark.errors import IntegrityError
    from benchmark.runner.results import RunResults
    from benchmark.runner.stages.summary import summarise

    old = {"vlm4rec_bench_version": "0.1.0", "git": {"commit": "a" * 40, "dirty": False}, "packages": {"numpy": "1"}}
    new = {"vlm4rec_bench_version": "0.1.0", "git": {"commit": "a" * 40, "dirty": True, "diff_sha256": "d" * 64}}
    new["packages"] = {"numpy": "1"}
    cfg = config(seeds=[0])
    run_units(
        cfg.models,
        cfg.seeds,
        cfg.train,
        UnitInputs(split, {}, cfg.evaluation, tmp_path, old),
        tracker_factory(tmp_path),
    )
    assert json.loads((tmp_path / "units" / "P.json").read_text())["packages"] == {"numpy": "1"}
    more = config(seeds=[0, 1])  # one more seed: T__seed1 would be computed by the new code
    inputs = UnitInputs(split, {}, more.evaluation, tmp_path, new)
    with pytest.raises(IntegrityError) as err:
        run_units(more.models, more.seeds, more.train, inputs, tracker_factory(tmp_path))
    msg = str(err.value)
    assert "T__seed0, P" in msg and "(units this run computes)" in msg and "--allow-mixed" in msg
    assert "commit aaaaaaaaaa (dirty, diff dddddddd)" in msg
    assert not (tmp_path / "units" / "T__seed1.json").exists()
    # nothing to compute: reading the finished units back mixes nothing
    assert run_units(cfg.models, cfg.seeds, cfg.train, inputs, tracker_factory(tmp_path))[0] == []
    # allowed: the units run, and the mixture shows in the leaderboard caption
    allowed = UnitInputs(split, {}, more.evaluation, tmp_path, new, allow_mixed=True)
    assert run_units(more.models, more.seeds, more.train, allowed, tracker_factory(tmp_path))[0] == ["T__seed1"]
    (tmp_path / "config.resolved.yaml").write_text(json.dumps(to_dict(more)))
    (tmp_path / "split.json").write_text(json.dumps({"fingerprint": split.fingerprint}))
    results = RunResults.load(tmp_path)
    assert sorted(len(keys) for keys in results.code_versions().values()) == [1, 2]
    summarise(results, more.statistics)
    board = (tmp_path / "leaderboard.md").read_text()
    assert "Results mix code versions (--allow-mixed): 2 unit(s) by commit aaaaaaaaaa," in board
    assert "1 unit(s) by commit aaaaaaaaaa (dirty, diff dddddddd)" in board


def test_written_by_records_commit_dirty_flag_and_packages():
    from benchmark.runner.provenance import written_by

    w = written_by()
    assert {"vlm4rec_bench_version", "git", "packages"} <= set(w)
    assert {"commit", "dirty"} <= set(w["git"]) and w["packages"]["numpy"] == np.__version__
    if w["git"]["dirty"]:
        assert len(w["git"]["diff_sha256"]) == 64
