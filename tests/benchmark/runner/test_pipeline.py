"""The runner end to end on a small demo: every results file, W&B offline logs read back,
identical reruns, a SIGKILL during the model stage resumed to the same leaderboard, and the
`leaderboard`/`claims` commands re-rendering saved results."""

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

import benchmark
from benchmark.cli import main as cli_main
from benchmark.runner.config import load_config
from benchmark.runner.pipeline import run_experiment
from benchmark.runner.wandb_offline import read_history, read_summary

pytestmark = pytest.mark.slow

SMALL = {
    "experiment": "demo-small",
    "description": "small offline demo for tests",
    "seeds": [0],
    "dataset": {
        "name": "demo-small",
        "source": "demo",
        "protocol": "mmrec",
        "split_seed": 0,
        "kcore": 5,
        "demo": {"seed": 0, "n_items": 150, "n_users": 120, "min_interactions": 10, "max_interactions": 14},
    },
    "features": [
        {
            "name": "desc_text",
            "producer": "vlm4rec-text",
            "params": {
                "describer": {"kind": "precomputed", "descriptions_file": "reference_captions.jsonl"},
                "encoder": {"kind": "minilm"},
                "text": "title+description",
            },
        },
        {
            "name": "meta_text",
            "producer": "vlm4rec-text",
            "params": {"encoder": {"kind": "minilm"}, "text": "catalogue"},
        },
        {"name": "pixels", "producer": "pixels"},
    ],
    "models": [
        {
            "name": "VLM4Rec",
            "model": "vlm4rec",
            "params": {"feature": "desc_text"},
            "paper_name": "LLaVA-NeXT 7B text-only (VLM4Rec)",
        },
        {
            "name": "Meta text-only",
            "model": "text-only",
            "params": {"feature": "meta_text"},
            "paper_name": "BERT text-only",
        },
        {"name": "Vision-only", "model": "vision-only", "params": {"feature": "pixels"}, "paper_name": "vision-only"},
        {"name": "Popularity", "model": "popularity"},
        {"name": "BPR-MF", "model": "bpr", "params": {"k": 16}, "train": {"max_epochs": 6}},
        {
            "name": "VBPR",
            "model": "vbpr",
            "params": {"feature": "pixels"},
            "train": {"max_epochs": 3, "batch_size": 256},
        },
    ],
    "evaluation": {"ks": [5, 10], "metrics": ["recall", "ndcg", "hitrate"]},
    "statistics": {"baseline": "VLM4Rec", "n_resamples": 1000, "plot_metric": "recall@10"},
    "logging": {"logger": "wandb"},
}


def write_config(tmp: Path, **changes) -> Path:
    cfg = json.loads(json.dumps(SMALL))
    cfg["results_dir"] = str(tmp / "results")
    cfg["cache_dir"] = str(tmp / "cache")
    cfg.update(changes)
    path = tmp / f"{cfg['experiment']}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runner")
    cfg_path = write_config(tmp)
    result = run_experiment(load_config(cfg_path))
    return tmp, cfg_path, result


def test_demo_run_writes_every_result_file(first_run):
    _, _, result = first_run
    d = result.run_dir
    for name in (
        "config.resolved.yaml",
        "split.json",
        "per_user_metrics.parquet",
        "metrics.json",
        "statistics.json",
        "leaderboard.md",
        "leaderboard.tex",
        "leaderboard.csv",
        "provenance.json",
        "subsets.md",
        "subsets.csv",
    ):
        assert (d / name).is_file(), name
    assert sorted(p.name for p in (d / "plots").glob("*.png")) == ["bars_recall_at_10.png", "metrics_vs_k.png"]
    units = sorted(p.stem for p in (d / "units").glob("*.json"))
    assert units == sorted(["VLM4Rec", "Meta_text-only", "Vision-only", "Popularity", "BPR-MF__seed0", "VBPR__seed0"])
    prov = json.loads((d / "provenance.json").read_text())
    split = json.loads((d / "split.json").read_text())
    assert prov["split_fingerprint"] == split["fingerprint"] == result.split.fingerprint
    assert prov["packages"]["torch"] and prov["packages"]["vlm4rec-bench"]
    # which version wrote the results: in provenance.json and in every unit record
    assert prov["vlm4rec_bench_version"] == benchmark.__version__ and "commit" in prov["git"]
    for rec in (json.loads(p.read_text()) for p in (d / "units").glob("*.json")):
        assert rec["vlm4rec_bench_version"] == benchmark.__version__ and rec["git"] == prov["git"]
    assert set(prov["dataset_checksums"]) == {"filtering.sources.reviews", "filtering.sources.meta"}
    assert all(len(v) == 64 for v in prov["dataset_checksums"].values())
    assert set(prov["wall_seconds"]) >= {"dataset", "features", "models", "statistics", "total"}
    enc = prov["features"]["desc_text"]["provenance"]
    assert enc["encoder"]["model"].endswith("all-MiniLM-L6-v2") and enc["describer"]["describer"] == "precomputed"
    assert prov["features"]["pixels"]["checksum"]
    # each feature's cost, by stage: VLM4Rec's describing and encoding, the pixels' extraction
    assert set(enc["cost"]["stages"]) == {"describe", "encode"}
    assert enc["cost"]["wall_seconds"] >= enc["cost"]["stages"]["encode"] >= 0
    assert set(prov["features"]["pixels"]["provenance"]["cost"]["stages"]) == {"extract"}
    costs = json.loads((d / "costs.json").read_text())["models"]
    assert costs["VLM4Rec"]["features_seconds"] == pytest.approx(enc["cost"]["wall_seconds"])
    # per-user metrics: one row per (model, seed, user), the means in metrics.json derive from them
    per_user = pd.read_parquet(d / "per_user_metrics.parquet")
    metrics = json.loads((d / "metrics.json").read_text())
    for model, means in metrics["means"].items():
        rows = per_user[per_user["model"] == model]
        assert rows.groupby("user_id").ngroups == metrics["n_users"]
        assert means["recall@10"] == pytest.approx(rows.groupby("user_id")["recall@10"].mean().mean())
    subsets = pd.read_csv(d / "subsets.csv")
    overall = subsets[(subsets["model"] == "VLM4Rec") & (subsets["subset"] == "all")].iloc[0]
    assert overall["recall@10"] == pytest.approx(metrics["means"]["VLM4Rec"]["recall@10"], abs=1e-6)
    buckets = subsets[(subsets["model"] == "VLM4Rec") & subsets["subset"].str.startswith("activity")]
    assert buckets["n_users"].sum() == metrics["n_users"]
    assert "cold_items" in set(subsets["subset"])
    stats = json.loads((d / "statistics.json").read_text())
    assert stats["baseline"] == "VLM4Rec" and len(stats["comparisons"]) == 5 * 6
    assert "split fingerprint" in (d / "leaderboard.md").read_text().lower()
    assert "\\toprule" in (d / "leaderboard.tex").read_text()


def test_wandb_offline_run_holds_the_logged_metrics(first_run):
    _, _, result = first_run
    runs = sorted((result.run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 7  # one per (model, seed) unit + the summary run
    unit = json.loads((result.run_dir / "units" / "VLM4Rec.json").read_text())
    found = False
    for r in runs:
        summary = read_summary(r)
        if (
            summary.get("test/recall@10") is not None
            and abs(summary["test/recall@10"] - unit["test"]["recall@10"]) < 1e-12
        ):
            found = True
    assert found, "the VLM4Rec unit's test metrics are not in any offline W&B run"
    # training curves of a Lightning model reach W&B through WandbLogger
    histories = [read_history(r) for r in runs]
    curves = [h for h in histories if any("train/loss" in row for row in h)]
    assert len(curves) == 2  # BPR-MF and VBPR
    for h in curves:
        assert sum("train/loss" in row for row in h) >= 3 and any("valid/recall@20" in row for row in h)
    # the summary run logged the leaderboard table
    assert any(any("leaderboard/_type" in row or "leaderboard" in row for row in h) for h in histories)


def test_same_seed_reruns_are_identical(first_run):
    tmp, cfg_path, result = first_run
    again = run_experiment(load_config(cfg_path), force=True, logger_kind="none")
    assert again.run_dir != result.run_dir
    for name in ("metrics.json", "statistics.json", "leaderboard.md", "leaderboard.csv", "leaderboard.tex"):
        assert (again.run_dir / name).read_bytes() == (result.run_dir / name).read_bytes(), name
    a = pd.read_parquet(result.run_dir / "per_user_metrics.parquet")
    b = pd.read_parquet(again.run_dir / "per_user_metrics.parquet")
    pd.testing.assert_frame_equal(a, b)


def test_rerun_resumes_and_skips_done_units(first_run):
    _, cfg_path, result = first_run
    resumed = run_experiment(load_config(cfg_path), logger_kind="none")
    # the latest run directory of this same config is reused (the --force rerun's, if it ran first)
    latest = sorted(p for p in result.run_dir.parent.iterdir() if (p / "config.hash").exists())[-1]
    assert resumed.run_dir == latest
    assert resumed.units_run == [] and len(resumed.units_skipped) == 6


def test_killed_run_resumes_to_the_same_leaderboard(first_run, tmp_path):
    _, _, result = first_run
    # same config (and cache), its own results dir; the slow-ish trained models come last
    cfg = write_config(tmp_path, cache_dir=str(first_run[0] / "cache"))
    run_dir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "benchmark.cli", "-q", "run", str(cfg), "--run-dir", str(run_dir), "--logger", "none"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    kill_when(cmd, lambda: bool(list((run_dir / "units").glob("*.json"))), env=env, timeout_s=240, poll_s=0.05)
    done_before = {p.stem for p in (run_dir / "units").glob("*.json")}
    assert 1 <= len(done_before) < 6
    assert not (run_dir / "leaderboard.md").exists()
    # no torn files: every finished unit parses and has its per-user table
    for stem in done_before:
        json.loads((run_dir / "units" / f"{stem}.json").read_text())
        assert (run_dir / "units" / f"{stem}.parquet").is_file()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    prov = json.loads((run_dir / "provenance.json").read_text())
    assert set(prov["units_skipped_as_done"]) == done_before
    assert len(prov["units_run"]) == 6 - len(done_before)
    assert (run_dir / "leaderboard.md").read_text() == (result.run_dir / "leaderboard.md").read_text()


def test_demo_split_fingerprint_does_not_depend_on_where_the_cache_is(first_run, tmp_path):
    from benchmark.runner.stages.dataset import build_split

    tmp, cfg_path, result = first_run
    cfg = load_config(cfg_path, [f"cache_dir={tmp_path / 'elsewhere'}"])
    data = build_split(cfg.dataset, cfg.cache_dir)
    assert data.split.fingerprint == result.split.fingerprint
    assert data.checksums == json.loads((result.run_dir / "split.json").read_text())["dataset_checksums"]


def test_leaderboard_command_rerenders_saved_results(first_run, capsys):
    _, _, result = first_run
    rc = cli_main(
        [
            "leaderboard",
            str(result.run_dir),
            "--models",
            "VLM4Rec,Vision-only,Popularity",
            "--baseline",
            "Popularity",
            "--test",
            "wilcoxon",
            "--correction",
            "bonferroni",
            "--format",
            "json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["runs"]) == {"VLM4Rec", "Vision-only", "Popularity"}
    metrics = json.loads((result.run_dir / "metrics.json").read_text())["means"]
    assert out["runs"]["VLM4Rec"]["ndcg@10"] == pytest.approx(metrics["VLM4Rec"]["ndcg@10"])
    assert {t["baseline"] for t in out["tests"]} == {"Popularity"} and {t["test"] for t in out["tests"]} == {"wilcoxon"}
    assert cli_main(["leaderboard", str(result.run_dir), "--models", "Nope"]) == 2


def test_claims_report_sets_published_numbers_beside_ours(first_run, capsys):
    _, _, result = first_run
    assert cli_main(["claims", str(result.run_dir), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    verdicts = {c["id"]: c for c in report["claims"]}
    assert verdicts["vlm4rec-beats-bert"]["verdict"] in ("supported", "not supported", "contradicted")
    # no fusion rows in this small run: nothing to test, nothing contradicts it
    assert verdicts["text-beats-every-fusion"]["verdict"] == "not testable"
    assert verdicts["text-beats-every-fusion"]["n_pairs_tested"] == 0
    pair = verdicts["vlm4rec-beats-bert"]["pairs"][0]
    assert pair["run"] == "VLM4Rec" and pair["baseline"] == "Meta text-only"
    row = next(r for r in report["table"] if r["paper_method"] == "vision-only" and r["metric"] == "recall@10")
    assert row["published"] == 0.1053 and row["ours"] is not None
