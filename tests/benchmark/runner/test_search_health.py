"""The runner with a search policy and the health checks, end to end on a small prepared split:
tuned entries searched on validation (trace, summary, unit records, provenance), chosen settings
re-trained for every seed, budgets in the caption, a deliberately broken model (lr = 0) marked in
every leaderboard file, --strict-health turning warnings into an error, resuming without
re-searching."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from benchmark.cli import main as cli_main
from benchmark.demo.synthetic import make_synthetic
from benchmark.health import HealthError
from benchmark.runner.config import load_config
from benchmark.runner.pipeline import run_experiment
from benchmark.search.study import TRACE_COLUMNS

pytestmark = pytest.mark.slow


def write_inputs(tmp: Path) -> dict:
    split, feats = make_synthetic(160, 90, 8, seed=5)
    split.save(tmp / "split")
    # an image feature for only 70% of the items (a low-coverage feature)
    keep = np.arange(split.n_items) < split.n_items * 7 // 10
    np.save(tmp / "img.npy", feats["clip_image"].values.numpy()[keep])
    (tmp / "img_ids.txt").write_text("\n".join(split.items["orig_item_id"].astype(str)[keep]) + "\n")
    return {
        "experiment": "tuned-small",
        "seeds": [0, 1],
        "dataset": {"name": "syn", "source": "prepared", "path": str(tmp / "split")},
        "features": [
            {
                "name": "img",
                "producer": "import-npy",
                "params": {"npy": str(tmp / "img.npy"), "ids": str(tmp / "img_ids.txt")},
            }
        ],
        "models": [
            {"name": "BPR-MF", "model": "bpr", "train": {"max_epochs": 4}},
            {
                "name": "Broken BPR",
                "model": "bpr",
                "search": "none",
                "train": {"lr": 0.0, "max_epochs": 4, "patience": 1},
            },
            {"name": "ItemKNN", "model": "itemknn", "params": {"feature": "img"}, "search_budget": {"trials": 2}},
            {"name": "Popularity", "model": "popularity"},
        ],
        "search": {"sampler": "tpe", "trials": 3, "prune_startup_trials": 1},
        "evaluation": {"ks": [10, 20], "metrics": ["recall", "ndcg"], "subsets": False},
        "statistics": {"baseline": "Popularity", "n_resamples": 1000},
        "logging": {"logger": "none"},
        "results_dir": str(tmp / "results"),
        "cache_dir": str(tmp / "cache"),
    }


@pytest.fixture(scope="module")
def tuned_run(tmp_path_factory, one_torch_thread):
    tmp = tmp_path_factory.mktemp("tuned")
    cfg = write_inputs(tmp)
    path = tmp / "tuned.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path, run_experiment(load_config(path))


def test_tuned_entries_are_searched_and_the_choice_retrained_for_every_seed(tuned_run):
    _, result = tuned_run
    d = result.run_dir
    assert sorted(p.name for p in (d / "search").iterdir() if p.suffix != ".db-wal" and p.suffix != ".db-shm") == [
        "BPR-MF.json",
        "BPR-MF.parquet",
        "ItemKNN.json",
        "ItemKNN.parquet",
        "optuna.db",
    ]
    trace = pd.read_parquet(d / "search" / "BPR-MF.parquet")
    assert list(trace.columns) == list(TRACE_COLUMNS) and len(trace) == 3
    summary = json.loads((d / "search" / "BPR-MF.json").read_text())
    assert summary["trials"] == 3 and summary["metric"] == "recall@20" and summary["sampler"] == "tpe"
    assert json.loads((d / "search" / "ItemKNN.json").read_text())["trials"] == 2  # its override
    best = summary["best_params"]
    for seed in (0, 1):
        rec = json.loads((d / "units" / f"BPR-MF__seed{seed}.json").read_text())
        assert rec["search"]["best_params"] == best and rec["seed"] == seed
        assert rec["params"]["k"] == best["k"] and rec["train"]["lr"] == best["train.lr"]
        assert rec["train"]["max_epochs"] == 4  # the entry's own train layer stays under the search's
    # seed 0 is the seed the trials trained with: its unit re-trains exactly the chosen trial
    rec0 = json.loads((d / "units" / "BPR-MF__seed0.json").read_text())
    assert rec0["valid"]["recall@20"] == pytest.approx(summary["best_value"])
    for name in ("Broken_BPR__seed0", "Popularity"):
        assert json.loads((d / "units" / f"{name}.json").read_text())["search"] is None
    prov = json.loads((d / "provenance.json").read_text())
    assert prov["search"]["policy"]["trials"] == 3 and set(prov["search"]["models"]) == {"BPR-MF", "ItemKNN"}


def test_broken_model_and_low_coverage_are_flagged_in_every_leaderboard_file(tuned_run):
    _, result = tuned_run
    d = result.run_dir
    md = (d / "leaderboard.md").read_text()
    assert "| Broken BPR ⚠ |" in md and "| Popularity (baseline) |" in md
    assert "budget 3 trials per tuned model; overrides: ItemKNN 2 trials" in md
    assert "Not tuned: Broken BPR, Popularity." in md
    assert "**Health warnings**" in md and "**Tuning**" in md
    assert "Broken BPR — early_stop: selected epoch 1 (seeds 0, 1) (≤ 2)" in md
    assert "Broken BPR — early_stop: stopped at its first patience window" in md
    assert "ItemKNN — feature_coverage: feature img covers 70.0% of the items" in md
    assert "thin_validation" in md and "standard error of its validation recall@20" in md
    tex = (d / "leaderboard.tex").read_text()
    assert r"Broken BPR\textsuperscript{!}" in tex and "Rows marked ! have health warnings" in tex
    csv = pd.read_csv(d / "leaderboard.csv").set_index("method")
    assert "early_stop" in csv.loc["Broken BPR", "health"] and csv.loc["BPR-MF", "tuned_trials"] == 3
    assert (
        json.loads(csv.loc["BPR-MF", "tuned_params"])
        == json.loads((d / "search" / "BPR-MF.json").read_text())["best_params"]
    )
    health = json.loads((d / "health.json").read_text())
    checks = {(w["model"], w["check"]) for w in health["warnings"]}
    assert ("Broken BPR", "early_stop") in checks and ("Broken BPR", "not_above_reference") in checks
    assert ("ItemKNN", "feature_coverage") in checks and ("Popularity", "not_above_reference") not in checks
    refs = json.loads((d / "references.json").read_text())
    assert set(refs["valid"]) == {"random", "popularity"} and refs["validation"]["n_users"] == 160
    assert json.loads((d / "provenance.json").read_text())["health"] == health["warnings"]


def test_strict_health_is_an_error_after_the_files_are_written(tuned_run, capsys, caplog):
    path, result = tuned_run
    with pytest.raises(HealthError, match=r"health warning\(s\) in a strict run .*Broken BPR: selected epoch 1"):
        run_experiment(load_config(path), run_dir=result.run_dir, strict_health=True)
    assert cli_main(["run", str(path), "--run-dir", str(result.run_dir), "--logger", "none", "--strict-health"]) == 2
    assert "health warning(s) in a strict run" in caplog.text and "Traceback" not in capsys.readouterr().err
    assert cli_main(["run", str(path), "--run-dir", str(result.run_dir), "--logger", "none"]) == 0


def test_leaderboard_command_keeps_the_marks_and_notes(tuned_run, capsys):
    _, result = tuned_run
    assert cli_main(["leaderboard", str(result.run_dir), "--models", "Broken BPR,Popularity,BPR-MF"]) == 0
    md = capsys.readouterr().out
    assert "| Broken BPR ⚠ |" in md and "budget 3 trials per tuned model" in md
    assert "ItemKNN" not in md  # notes of models not shown are left out
    assert "Not tuned: Broken BPR, Popularity." in md


def test_a_rerun_resumes_without_searching_again(tuned_run):
    path, result = tuned_run
    stamp = (result.run_dir / "search" / "BPR-MF.json").stat().st_mtime_ns
    again = run_experiment(load_config(path), run_dir=result.run_dir)
    assert again.units_run == [] and (result.run_dir / "search" / "BPR-MF.json").stat().st_mtime_ns == stamp
