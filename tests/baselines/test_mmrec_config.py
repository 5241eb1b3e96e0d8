"""MMRec's YAML configs read as data: settings, grids as search spaces, override checks."""

from __future__ import annotations

import pytest

from baselines import mmrec_config as mconf
from benchmark.errors import ConfigError


def test_numbers_read_as_mmrec_reads_them(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("reg_weight: [0.0, 1e-05, 1e-4]\ncl_weight: 1e-04\ncf_model: lightgcn\nk: 10\n", encoding="utf-8")
    assert mconf.read_yaml(path) == {
        "reg_weight": [0.0, 1e-5, 1e-4],
        "cl_weight": 1e-4,
        "cf_model": "lightgcn",
        "k": 10,
    }


def test_search_space_is_the_authors_grid(mmrec_src):
    assert mconf.search_space("FREEDOM", mmrec_src) == {"dropout": [0.8, 0.9], "reg_weight": [0.0, 1e-5, 1e-4, 1e-3]}
    smore = mconf.search_space("SMORE", mmrec_src)
    assert smore["image_knn_k"] == [10, 15, 20, 40] and smore["n_ui_layers"] == [3, 4]
    lattice = mconf.search_space("LATTICE", mmrec_src)  # the learning rate is the trainer's
    assert lattice["train.lr"] == [0.0001, 0.0005, 0.001, 0.005] and "learning_rate" not in lattice
    assert mconf.search_space("LGMRec", mmrec_src)["cl_weight"] == [1e-4]  # one-value grids are lists too
    assert "seed" not in mconf.search_space("BM3", mmrec_src)


def test_one_run_takes_each_grids_first_value_or_the_override(mmrec_src):
    settings = mconf.resolve_model_config(mmrec_src, "FREEDOM", {"reg_weight": 1e-4})
    assert settings["dropout"] == 0.8 and settings["reg_weight"] == 1e-4
    assert settings["knn_k"] == 10 and settings["weight_size"] == [64, 64]  # plain lists stay lists
    assert settings["hyper_parameters"] == []


def test_overrides_are_checked_by_name(mmrec_src):
    with pytest.raises(ConfigError, match=r"config.learning_rate: .*train.lr"):
        mconf.resolve_model_config(mmrec_src, "FREEDOM", {"learning_rate": 0.01})
    with pytest.raises(ConfigError, match="config.data_path: fixed by the adapter"):
        mconf.resolve_model_config(mmrec_src, "FREEDOM", {"data_path": "/tmp"})
    with pytest.raises(ConfigError, match=r"config.dropuot: not a setting of MMRec's FREEDOM; allowed: .*dropout"):
        mconf.resolve_model_config(mmrec_src, "FREEDOM", {"dropuot": 0.5})
    # a key the model reads but no YAML sets (FREEDOM's degree_ratio) may be given
    assert mconf.resolve_model_config(mmrec_src, "FREEDOM", {"degree_ratio": 0.5})["degree_ratio"] == 0.5


def test_trainer_settings_in_a_model_yaml_are_reported(mmrec_src):
    own = mconf.model_yaml(mmrec_src, "SLMRec")  # sets weight_decay: 1e-4 outside its grid
    notes = mconf.trainer_settings_ignored(own, {"weight_decay": 0.0, "lr": 1e-3})
    assert any(n.startswith("weight_decay=0.0001") for n in notes)
