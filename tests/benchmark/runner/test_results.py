"""RunResults.load: the one reader of a run directory (config, units, seed-averaged frames)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from benchmark.cli import main
from benchmark.configuration import ConfigError
from benchmark.runner.config import load_config
from benchmark.runner.results import NotARunDirectory, RunResults
from benchmark.stats import aggregate_seeds


def unit(d: Path, key: str, model: str, seed: int | None, values: np.ndarray, parquet: bool = True) -> None:
    (d / "units").mkdir(parents=True, exist_ok=True)
    if parquet:
        df = pd.DataFrame({"user_id": np.arange(len(values)), "recall@10": values, "ndcg@10": values / 2})
        df.to_parquet(d / "units" / f"{key}.parquet")
    rec = {"model": model, "seed": seed, "valid": {}, "test": {"recall@10": float(values.mean())}}
    (d / "units" / f"{key}.json").write_text(json.dumps(rec))


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    d = tmp_path / "run"
    unit(d, "Plugin", "Plugin", None, rng.uniform(0, 1, 50))
    unit(d, "BPR__seed0", "BPR", 0, rng.uniform(0, 1, 50))
    unit(d, "BPR__seed1", "BPR", 1, rng.uniform(0, 1, 50))
    unit(d, "Killed__seed0", "Killed", 0, rng.uniform(0, 1, 50), parquet=False)  # died before its table
    config = {
        "experiment": "r",
        "dataset": {"name": "d", "source": "demo"},
        # a plug-in model that is not installed where the results are read
        "models": [
            {"name": "BPR", "model": "bpr"},
            {"name": "Plugin", "model": "not-installed-plugin", "params": {"x": 1}, "paper_name": "Their method"},
            {"name": "Killed", "model": "bpr"},
        ],
        "statistics": {"baseline": "Plugin", "test": "wilcoxon"},
    }
    (d / "config.resolved.yaml").write_text(yaml.safe_dump(config))
    (d / "split.json").write_text(json.dumps({"fingerprint": "ab" * 32}))
    return d


def test_load_reads_config_units_and_seed_averages(run_dir):
    with pytest.raises(ConfigError, match="not-installed-plugin"):  # running it needs the plug-in ...
        load_config(run_dir / "config.resolved.yaml")
    r = RunResults.load(run_dir)  # ... reading its results does not
    assert r.config.models[1].model == "not-installed-plugin" and r.config.statistics.test == "wilcoxon"
    assert r.fingerprint == "ab" * 32 and r.provenance is None
    assert r.models == ["BPR", "Plugin"]  # config order; the unit without its table is left out
    assert r.baseline == "Plugin" and r.paper_names() == {"Their method": "Plugin"}
    assert [u.seed for u in r.units["BPR"]] == [0, 1]
    expected, spread = aggregate_seeds(r.seed_frames("BPR"))
    pd.testing.assert_frame_equal(r.per_user("BPR"), expected)
    both = (r.seed_frames("BPR")[0]["recall@10"] + r.seed_frames("BPR")[1]["recall@10"]) / 2
    assert np.allclose(r.per_user("BPR")["recall@10"], both)
    assert r.spread("BPR")["recall@10"]["n_seeds"] == 2 == spread["recall@10"]["n_seeds"]
    assert list(r.averaged()) == ["BPR", "Plugin"]


def test_not_a_run_directory(tmp_path):
    with pytest.raises(NotARunDirectory, match="no split.json"):
        RunResults.load(tmp_path)
    assert main(["leaderboard", str(tmp_path)]) == 2
    assert main(["claims", str(tmp_path)]) == 2


def test_leaderboard_reads_through_it(run_dir, capsys):
    assert main(["leaderboard", str(run_dir), "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out["runs"]) == ["BPR", "Plugin"] and {t["baseline"] for t in out["tests"]} == {"Plugin"}
    r = RunResults.load(run_dir)
    assert out["runs"]["BPR"]["recall@10"] == pytest.approx(r.per_user("BPR")["recall@10"].mean())


def test_leaderboard_counts_seeds_and_states_its_family(run_dir, capsys):
    r = RunResults.load(run_dir)
    frames, seeds = r.seed_inputs()
    assert seeds == {"BPR": [0, 1], "Plugin": [None]} and len(frames["BPR"]) == 2
    assert isinstance(frames["Plugin"], pd.DataFrame)
    args = ["leaderboard", str(run_dir), "--format", "json", "--comparisons", "all-pairs"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["families"][0]["id"] == "all pairs" and out["families"][0]["size"] == 2
    assert {t["test"] for t in out["tests"]} == {"mixed"}  # BPR has two seeds: users and seeds counted
    assert out["tests"][0]["n_seeds"] in ({"run": 1, "baseline": 2}, {"run": 2, "baseline": 1})
    assert main(["leaderboard", str(run_dir), "--test", "t"]) == 0
    assert "conditional on the trained models" in capsys.readouterr().out
