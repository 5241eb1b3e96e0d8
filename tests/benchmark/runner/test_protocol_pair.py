"""The shipped protocol pair (demo-protocol-mmrec / -global-time) run on a small demo, and the
`sensitivity` report on the two runs: numbers recomputed from the per-user files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from scipy import stats

from benchmark.cli import main
from benchmark.configuration import load_yaml
from benchmark.runner.config import load_config, shipped_configs
from benchmark.runner.pipeline import run_experiment

pytestmark = pytest.mark.slow

SMALL_DEMO = "dataset.demo={seed: 0, n_items: 150, n_users: 120, min_interactions: 10, max_interactions: 14}"


def test_the_pair_differs_only_in_protocol():
    a, b = (load_yaml(shipped_configs()[f"demo-protocol-{p}"]) for p in ("mmrec", "global-time"))
    assert a["dataset"]["protocol"] == "mmrec" and b["dataset"]["protocol"] == "global-time"
    for d in (a, b):
        d.pop("experiment"), d.pop("description"), d["dataset"].pop("protocol")
    assert a == b


def _seed_mean(run: Path, model: str, metric: str) -> float:
    rec = {json.loads(p.read_text())["model"]: p for p in (run / "units").glob("*.json")}
    return float(pd.read_parquet(rec[model].with_suffix(".parquet"))[metric].mean())


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> list[Path]:
    tmp = tmp_path_factory.mktemp("pair")
    runs = []
    for protocol in ("mmrec", "global-time"):
        overrides = [
            SMALL_DEMO,
            f"results_dir={tmp / 'results'}",
            f"cache_dir={tmp / 'cache'}",
            "models.3.train.max_epochs=2",
        ]
        runs.append(run_experiment(load_config(f"demo-protocol-{protocol}", overrides)).run_dir)
    return runs


def test_sensitivity_report_on_the_pair(pair, capsys):
    assert (
        main(["sensitivity", *map(str, pair), "--metric", "recall@20", "--format", "json", "--n-resamples", "500"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    models = out["models"]
    assert models == ["VLM4Rec", "Catalogue text-only", "Vision-only (pixels)", "BPR-MF", "Most popular"]
    a, b = out["sides"]
    assert "mmrec" in a["label"] and "global-time" in b["label"] and a["split_fingerprint"] != b["split_fingerprint"]
    va = [_seed_mean(pair[0], m, "recall@20") for m in models]
    vb = [_seed_mean(pair[1], m, "recall@20") for m in models]
    assert [a["means"][m]["recall@20"] for m in models] == pytest.approx(va)
    assert out["changes"]["BPR-MF"]["recall@20"]["abs"] == pytest.approx(vb[3] - va[3])
    ref = stats.kendalltau(va, vb)
    tau = out["kendall_tau"]
    assert tau["tau"] == pytest.approx(ref.statistic) and tau["ci_low"] <= tau["tau"] <= tau["ci_high"]
    assert a["ranks"] == dict(zip(models, pd.Series(va).rank(ascending=False).tolist()))
    # beyond-accuracy columns of the shipped pair reach the per-user files and the unit records
    assert "aplt@20" in a["means"]["VLM4Rec"] and 0 <= a["means"]["Most popular"]["aplt@20"] <= 1
    rec = json.loads(next((pair[0] / "units").glob("Most*.json")).read_text())
    assert set(rec["run_metrics"]["test"]) >= {"gini@10", "tail_coverage@20"}
    assert main(["sensitivity", *map(str, pair), "--metric", "recall@20", "--n-resamples", "500"]) == 0
    md = capsys.readouterr().out
    assert "Kendall's τ-b between the two orders on Recall@20" in md and "| BPR-MF |" in md
