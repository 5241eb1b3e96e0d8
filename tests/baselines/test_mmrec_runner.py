"""MMRec's models through the runner: FREEDOM, SMORE, LGMRec and BM3 as rows of a small demo
experiment, and a run killed (SIGKILL) in the models stage resumed to the same results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from fixtures.killing import kill_when

from benchmark.runner.config import load_config
from benchmark.runner.pipeline import run_experiment

pytestmark = pytest.mark.slow

FOUR = ("FREEDOM", "SMORE", "LGMRec", "BM3")


def write_config(tmp: Path, mmrec_src: Path, cache: Path) -> Path:
    cfg = {
        "experiment": "mmrec-small",
        "seeds": [0],
        "dataset": {
            "name": "demo-mmrec",
            "source": "demo",
            "protocol": "mmrec",
            "split_seed": 0,
            "kcore": 5,
            "demo": {"seed": 0, "n_items": 150, "n_users": 120, "min_interactions": 10, "max_interactions": 14},
        },
        "features": [
            {
                "name": "meta_text",
                "producer": "vlm4rec-text",
                "params": {"encoder": {"kind": "minilm"}, "text": "catalogue"},
            },
            {"name": "pixels", "producer": "pixels"},
        ],
        "train": {"max_epochs": 3, "patience": 2, "batch_size": 256, "eval_batch_size": 256},
        "models": [
            {
                "name": name,
                "model": f"mmrec-{name.lower()}",
                "params": {"image_feature": "pixels", "text_feature": "meta_text", "mmrec_src": str(mmrec_src)},
            }
            for name in FOUR
        ],
        "evaluation": {"ks": [10, 20], "metrics": ["recall", "ndcg"]},
        "statistics": {"baseline": "FREEDOM", "n_resamples": 1000},
        "logging": {"logger": "none"},
        "results_dir": str(tmp / "results"),
        "cache_dir": str(cache),
    }
    path = tmp / "mmrec-small.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory, mmrec_src):
    tmp = tmp_path_factory.mktemp("mmrec-runner")
    cfg = write_config(tmp, mmrec_src, tmp / "cache")
    return tmp, run_experiment(load_config(cfg), logger_kind="none")


def test_mmrec_models_are_rows_of_a_run(reference):
    _, result = reference
    board = (result.run_dir / "leaderboard.md").read_text()
    for name in FOUR:
        assert name in board
        unit = json.loads((result.run_dir / "units" / f"{name}__seed0.json").read_text())
        info = unit["model_info"]
        assert info["train"]["max_epochs"] == 3 and info["best_epoch"] >= 1
        assert info["mmrec"]["settings"]["model"] == name and unit["train"]["patience"] == 2


def test_killed_in_the_models_stage_resumes_to_the_same_results(reference, tmp_path, mmrec_src):
    ref_tmp, result = reference
    cfg = write_config(tmp_path, mmrec_src, ref_tmp / "cache")  # same data and features cache
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "benchmark.cli", "-q", "run", str(cfg), "--run-dir", str(run_dir), "--logger", "none"]
    # the killed fit cannot remove its temporary MMRec folder: keep it inside the test's directory
    (tmp_path / "tmp").mkdir()
    env = dict(os.environ, PYTHONUNBUFFERED="1", TMPDIR=str(tmp_path / "tmp"))
    kill_when(cmd, lambda: bool(list((run_dir / "units").glob("*.json"))), env=env, timeout_s=300)
    done_before = {p.stem for p in (run_dir / "units").glob("*.json")}
    assert 1 <= len(done_before) < len(FOUR)
    assert not (run_dir / "leaderboard.md").exists()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    prov = json.loads((run_dir / "provenance.json").read_text())
    assert set(prov["units_skipped_as_done"]) == done_before
    assert len(prov["units_run"]) == len(FOUR) - len(done_before)
    assert (run_dir / "leaderboard.md").read_text() == (result.run_dir / "leaderboard.md").read_text()
    pd.testing.assert_frame_equal(
        pd.read_parquet(run_dir / "per_user_metrics.parquet"),
        pd.read_parquet(result.run_dir / "per_user_metrics.parquet"),
    )
