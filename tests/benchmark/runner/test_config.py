"""Config errors: one test per kind of mistake, each checking the message names the key and
what is allowed."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from benchmark.configuration import ConfigError, apply_overrides, from_dict, load_yaml, to_dict
from benchmark.producers import register_feature_producer
from benchmark.recommender import BaseRecommender
from benchmark.registry import register_model
from benchmark.runner.config import ExperimentConfig, load_config, shipped_configs


@register_model("cfgtest-model")
class _CfgModel(BaseRecommender):
    def __init__(self, feature: str = "f", aggregation: str = "mean", seed: int = 0) -> None:
        super().__init__(feature=feature, aggregation=aggregation, seed=seed)


@register_feature_producer("cfgtest-producer")
def _cfg_producer(ctx, dim: int = 4):  # pragma: no cover - never run here
    raise AssertionError


def base() -> dict:
    return {
        "experiment": "t",
        "dataset": {"source": "demo"},
        "features": [{"name": "f", "producer": "cfgtest-producer", "params": {"dim": 3}}],
        "models": [
            {"name": "A", "model": "cfgtest-model", "params": {"feature": "f"}},
            {"name": "B", "model": "cfgtest-model", "params": {"aggregation": "last_n"}},
        ],
    }


def check(data: dict, *needles: str) -> str:
    with pytest.raises(ConfigError) as ei:
        from_dict(ExperimentConfig, data)
    msg = str(ei.value)
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    return msg


def test_valid_config_round_trips():
    cfg = from_dict(ExperimentConfig, base())
    assert cfg.models[1].params == {"aggregation": "last_n"}
    assert cfg.evaluation.ks == [5, 10, 20] and cfg.statistics.test == "auto"
    assert from_dict(ExperimentConfig, to_dict(cfg)) == cfg
    assert cfg.baseline == "A"


def test_unknown_top_level_key_names_allowed_keys():
    d = base() | {"seed": 3}
    check(d, "seed: unknown key", "seeds", "models", "experiment")


def test_unknown_nested_key_has_its_path():
    d = base()
    d["dataset"]["protocl"] = "paper"
    check(d, "dataset.protocl: unknown key", "protocol")


def test_wrong_type_names_key_and_expected_type():
    check(base() | {"seeds": "0,1"}, "seeds: expected a list")
    d = base()
    d["evaluation"] = {"ks": [10, "twenty"]}
    check(d, "evaluation.ks[1]: expected an integer", "'twenty'")
    d = base()
    d["evaluation"] = {"batch_size": True}
    check(d, "evaluation.batch_size: expected an integer")


def test_value_outside_allowed_set_lists_them():
    d = base()
    d["dataset"]["protocol"] = "random"
    check(d, "dataset.protocol", "'random' is not allowed", "paper", "mmrec", "loo", "global-time", "official")
    d = base()
    d["statistics"] = {"correction": "fdr"}
    check(d, "statistics.correction", "holm", "bonferroni", "bh", "none")
    d = base()
    d["evaluation"] = {"metrics": ["recall", "auc"]}
    check(d, "evaluation.metrics[1]", "'auc' is not allowed", "ndcg")
    d = base()
    d["logging"] = {"logger": "comet"}
    check(d, "logging.logger", "'comet' is not allowed", "tensorboard", "wandb", "mlflow")


def test_resampling_tests_need_enough_resamples():
    d = base()
    d["statistics"] = {"test": "randomization", "n_resamples": 999}
    check(d, "statistics.n_resamples", "at least 10000")
    d["statistics"] = {"alpha": 1.5}
    check(d, "statistics.alpha", "between 0 and 1")


def test_missing_required_key():
    d = base()
    del d["experiment"]
    check(d, "experiment: required key is missing")
    d = base()
    del d["models"][0]["model"]
    check(d, "models[0].model: required key is missing")


def test_unknown_model_name_lists_registered_models():
    d = base()
    d["models"][1]["model"] = "cfgtest-nope"
    check(d, "models[1].model", "unknown model 'cfgtest-nope'", "cfgtest-model")


def test_unknown_model_parameter_lists_allowed():
    d = base()
    d["models"][0]["params"]["aggregaton"] = "mean"
    check(d, "models[0].params.aggregaton", "allowed: feature, aggregation")


def test_seed_in_params_is_rejected():
    d = base()
    d["models"][0]["params"]["seed"] = 1
    check(d, "models[0].params.seed", "seeds")


def test_undefined_feature_reference():
    d = base()
    d["models"][0]["params"]["feature"] = "f+clip_image"
    check(d, "models[0].params.feature", "'clip_image' is not defined", "defined: f")


def test_unknown_producer():
    d = base()
    d["features"][0]["producer"] = "nope"
    check(d, "features[0].producer", "unknown feature producer 'nope'", "cfgtest-producer")


def test_duplicate_model_names():
    d = base()
    d["models"][1]["name"] = "A"
    check(d, "models[1].name", "used twice")


def test_baseline_must_be_a_model():
    d = base()
    d["statistics"] = {"baseline": "C"}
    check(d, "statistics.baseline", "'C' is not a model name", "A, B")


def test_source_specific_requirements():
    d = base()
    d["dataset"] = {"source": "files", "release": "2018"}
    check(d, "dataset.reviews: required when source is 'files'")
    d["dataset"] = {"source": "official-2023", "path": "x"}
    check(d, "dataset.category")


def test_invalid_yaml_and_non_mapping(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("experiment: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(p)
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_yaml(p)


def test_overrides_apply_and_report_bad_paths(tmp_path: Path):
    d = apply_overrides(base(), ["seeds=[1,2]", "models.0.params.aggregation=last_n", "evaluation.ks=[10]"])
    cfg = from_dict(ExperimentConfig, d)
    assert cfg.seeds == [1, 2] and cfg.models[0].params["aggregation"] == "last_n" and cfg.evaluation.ks == [10]
    with pytest.raises(ConfigError, match="index 5 out of range"):
        apply_overrides(base(), ["models.5.name=x"])
    with pytest.raises(ConfigError, match="must look like"):
        apply_overrides(base(), ["seeds"])
    p = tmp_path / "c.yaml"
    p.write_text(
        textwrap.dedent("""
        experiment: t
        dataset: {source: demo}
        features: [{name: f, producer: cfgtest-producer}]
        models: [{name: A, model: cfgtest-model}]
    """)
    )
    with pytest.raises(ConfigError, match="models\\[0\\].params.bogus"):
        load_config(p, ["models.0.params.bogus=1"])


def test_unknown_config_name_lists_shipped():
    with pytest.raises(ConfigError, match="shipped configs: .*demo"):
        load_config("no-such-config")


@pytest.mark.parametrize("name", sorted(shipped_configs()))
def test_shipped_configs_validate(name: str):
    cfg = load_config(name)
    assert cfg.experiment


# ------------------------------------------------------------------ issue 12: unit keys, selection, CLI errors
@pytest.mark.parametrize(
    "a,b",
    [("BPR 1", "BPR_1"), ("BPR/1", "BPR 1"), ("bpr", "BPR"), ("Vision-only (CLIP)", "Vision-only _CLIP_")],
)
def test_model_names_with_the_same_unit_file_are_refused_naming_both(a: str, b: str):
    # Regression (defect 3): "BPR 1" and "BPR_1" shared units/BPR_1.json and one model vanished.
    data = base()
    data["models"] = [
        {"name": a, "model": "cfgtest-model", "params": {"feature": "f"}},
        {"name": b, "model": "cfgtest-model", "params": {"feature": "f"}},
    ]
    check(data, "models[1].name", repr(a), repr(b), "unit file name")


def test_model_name_that_looks_like_a_seed_suffix_is_refused():
    data = base()
    data["models"][1]["name"] = "A__seed1"  # "A" with seed 1 writes units/A__seed1.json
    check(data, "models[1].name", "seed suffix")
    data["models"][1]["name"] = "..."
    check(data, "models[1].name", "no usable file name")


def test_select_entries_keeps_drops_and_follows_feature_use():
    from benchmark.runner.config import select_entries

    cfg = from_dict(ExperimentConfig, base())
    assert [m.name for m in select_entries(cfg, models=["B"]).models] == ["B"]
    assert [m.name for m in select_entries(cfg, skip_models=["A"]).models] == ["B"]
    dropped = select_entries(cfg, skip_features=["f"])  # A uses f, so it goes too
    assert [m.name for m in dropped.models] == ["B"] and dropped.features == []
    assert [f.name for f in select_entries(cfg, features=["f"]).features] == ["f"]
    with pytest.raises(ConfigError, match="--models: 'Z' not in the config; allowed: A, B"):
        select_entries(cfg, models=["Z"])
    with pytest.raises(ConfigError, match="no model left"):
        select_entries(cfg, skip_models=["A", "B"])
    data = base()
    data["statistics"] = {"baseline": "A"}
    assert select_entries(from_dict(ExperimentConfig, data), skip_models=["A"]).statistics.baseline is None


def test_directory_as_config_and_bad_yaml_in_overrides_are_config_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    with pytest.raises(ConfigError, match=r"override 'seeds=\[0,1': the value is not valid YAML"):
        load_config("demo", ["seeds=[0,1"])
    binary = tmp_path / "x.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ConfigError, match="not a text"):
        load_yaml(binary)
