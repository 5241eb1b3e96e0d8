"""Experiment tracking of a small demo run, read back offline: the W&B summary run's tables
(leaderboard with markers and seed spread, statistics, subsets, costs), its summary values, the
unit runs' config and tags, and a resume that replaces the summary run instead of adding one.
Every number is recomputed here from the per-user files (``units/*.parquet``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from benchmark.runner.config import load_config
from benchmark.runner.pipeline import run_experiment
from benchmark.runner.rundir import Unit
from benchmark.runner.wandb_offline import offline_runs, read_config, read_run_info, read_summary, read_table

pytestmark = pytest.mark.slow

CONFIG = {
    "experiment": "track-small",
    "seeds": [0, 1],
    "dataset": {
        "name": "track-small",
        "source": "demo",
        "protocol": "mmrec",
        "split_seed": 0,
        "kcore": 5,
        "demo": {"seed": 0, "n_items": 120, "n_users": 100, "min_interactions": 10, "max_interactions": 14},
    },
    "features": [{"name": "pixels", "producer": "pixels"}],
    "models": [
        {"name": "Popularity", "model": "popularity"},
        {"name": "Vision-only", "model": "vision-only", "params": {"feature": "pixels"}},
        {"name": "BPR-MF", "model": "bpr", "params": {"k": 8}, "train": {"max_epochs": 2}},
    ],
    "evaluation": {"ks": [5, 10], "metrics": ["recall", "ndcg"]},
    "statistics": {"baseline": "Popularity", "n_resamples": 1000},
    "logging": {"logger": "wandb", "tags": ["ci"]},
}
METRICS = ["recall@5", "recall@10", "ndcg@5", "ndcg@10"]


def write_config(tmp: Path, **changes) -> Path:
    cfg = json.loads(json.dumps(CONFIG))
    cfg["results_dir"] = str(tmp / "results")
    cfg["cache_dir"] = str(tmp / "cache")
    cfg.update(changes)
    path = tmp / "track.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory, monkeypatch_module):
    monkeypatch_module.delenv("WANDB_API_KEY", raising=False)
    monkeypatch_module.setenv("WANDB_MODE", "offline")
    tmp = tmp_path_factory.mktemp("tracking")
    cfg_path = write_config(tmp)
    result = run_experiment(load_config(cfg_path))
    return cfg_path, result.run_dir


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def runs_by_job(run_dir: Path) -> dict[str, list[Path]]:
    out: dict[str, list[Path]] = {}
    for r in offline_runs(run_dir / "wandb"):
        out.setdefault(read_run_info(r)["job_type"], []).append(r)
    return out


def per_seed_means(run_dir: Path) -> dict[str, pd.DataFrame]:
    """model → one row per seed: the metric means of that unit's per-user test file."""
    out: dict[str, list[pd.Series]] = {}
    for rec_path in sorted((run_dir / "units").glob("*.json")):
        rec = json.loads(rec_path.read_text())
        per_user = pd.read_parquet(rec_path.with_suffix(".parquet"))
        out.setdefault(rec["model"], []).append(per_user[METRICS].mean())
    return {m: pd.DataFrame(rows) for m, rows in out.items()}


def test_summary_run_tables_carry_the_leaderboard_as_printed(tracked_run):
    _, run_dir = tracked_run
    jobs = runs_by_job(run_dir)
    assert len(jobs["summary"]) == 1 and len(jobs["train"]) == 4  # Popularity, Vision-only, BPR-MF × 2 seeds
    summary_run = jobs["summary"][0]
    table = read_table(summary_run, "leaderboard")
    # the printed rows of leaderboard.md, cell by cell (markers ▲/▼, bold, ± seed SD, "(baseline)")
    md_rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in (run_dir / "leaderboard.md").read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| Method")
    ]
    width = len(md_rows[0])
    assert [row[:width] for row in table["data"]] == md_rows
    assert table["columns"][0] == "Method" and "recall@10_std" in table["columns"]
    bpr = next(row for row in md_rows if row[0].startswith("BPR-MF"))
    assert all(" ± " in cell for cell in bpr[1:])  # two seeds: the spread is printed
    # the plain numbers, recomputed from the per-user files
    seeds = per_seed_means(run_dir)
    cols = table["columns"]
    for row in table["data"]:
        model = row[0].replace(" (baseline)", "").rstrip("†")
        for metric in METRICS:
            assert row[cols.index(metric)] == pytest.approx(seeds[model][metric].mean(), abs=1e-12)
        assert row[cols.index("recall@10_std")] == (
            pytest.approx(seeds[model]["recall@10"].std(ddof=1), abs=1e-12) if len(seeds[model]) > 1 else None
        )


def test_summary_run_statistics_and_summary_values(tracked_run):
    from statsmodels.stats.multitest import multipletests

    _, run_dir = tracked_run
    summary_run = runs_by_job(run_dir)["summary"][0]
    stats = read_table(summary_run, "statistics")
    rows = [dict(zip(stats["columns"], r)) for r in stats["data"]]
    for key in ("p", "p_adjusted", "family_size", "ci_low", "ci_high", "effect_size", "rel_ci_low", "direction"):
        assert key in stats["columns"]
    assert {r["model"] for r in rows} == {"Vision-only", "BPR-MF"} and {r["baseline"] for r in rows} == {"Popularity"}
    assert len(rows) == 2 * len(METRICS) and all(r["family_size"] == len(rows) for r in rows)
    seeds = per_seed_means(run_dir)
    # Holm over the family, by an independent implementation
    holm = multipletests([r["p"] for r in rows], method="holm")[1]
    for r, adj in zip(rows, holm):
        assert r["p_adjusted"] == pytest.approx(adj, rel=1e-9)
        assert r["significant"] == (r["p_adjusted"] <= 0.05)
        diff = seeds[r["model"]][r["metric"]].mean() - seeds["Popularity"][r["metric"]].mean()
        assert r["mean_diff"] == pytest.approx(diff, abs=1e-12)
        assert r["ci_low"] <= r["mean_diff"] <= r["ci_high"]
    bpr = next(r for r in rows if r["model"] == "BPR-MF")
    assert bpr["test"] == "mixed"  # two seeds: users and seeds
    values = read_summary(summary_run)
    for model, frame in seeds.items():
        for metric in METRICS:
            assert values[f"{model}/{metric}"] == pytest.approx(frame[metric].mean(), abs=1e-12)
    for r in rows:
        finding = r["significant"] and r["direction"] != 0
        assert values[f"{r['model']}/{r['metric']}_significant_vs_baseline"] is finding
    assert "Popularity/recall@10_significant_vs_baseline" not in values
    # the subsets table: subsets.csv's rows
    subsets = read_table(summary_run, "subsets")
    expected = pd.read_csv(run_dir / "subsets.csv")
    assert subsets["columns"] == list(expected.columns) and len(subsets["data"]) == len(expected)
    got = pd.DataFrame(subsets["data"], columns=subsets["columns"])
    np.testing.assert_allclose(got["recall@10"].astype(float), expected["recall@10"], rtol=1e-12, equal_nan=True)


def test_unit_runs_carry_config_and_tags(tracked_run):
    _, run_dir = tracked_run
    split = json.loads((run_dir / "split.json").read_text())
    fingerprint = split.get("fingerprint") or split.get("split_fingerprint")
    units = runs_by_job(run_dir)["train"]
    configs = [read_config(r) for r in units]
    assert sorted((c["model_name"], c["seed"]) for c in configs) == [
        ("BPR-MF", 0),
        ("BPR-MF", 1),
        ("Popularity", None),
        ("Vision-only", None),
    ]
    for r, c in zip(units, configs):
        assert c["dataset"] == "track-small" and c["protocol"] == "mmrec" and c["experiment"] == "track-small"
        assert c["split_fingerprint"] == fingerprint and "commit" in c and "params" in c
        info = read_run_info(r)
        assert info["group"] == "track-small" and {"track-small", "mmrec", "ci"} <= set(info["tags"])
    bpr = next(c for c in configs if c["model_name"] == "BPR-MF")
    assert bpr["model"] == "bpr" and bpr["params"]["k"] == 8 and bpr["train"]["max_epochs"] == 2


def test_costs_add_up_the_stages_each_model_depended_on(tracked_run):
    _, run_dir = tracked_run
    costs = json.loads((run_dir / "costs.json").read_text())["models"]
    prov = json.loads((run_dir / "provenance.json").read_text())
    pixels = prov["features"]["pixels"]["provenance"]["cost"]
    assert set(pixels["stages"]) == {"extract"} and pixels["wall_seconds"] >= 0
    assert pixels["device"] == "cpu" and pixels["peak_memory_bytes"] > 0
    units: dict[str, list[dict]] = {}
    for path in (run_dir / "units").glob("*.json"):
        rec = json.loads(path.read_text())
        units.setdefault(rec["model"], []).append(rec)
    for model, recs in units.items():
        fit = sum(r["cost"]["fit"]["wall_seconds"] for r in recs)
        ev = sum(r["cost"]["evaluate"]["wall_seconds"] for r in recs)
        feat = pixels["wall_seconds"] if model == "Vision-only" else 0.0
        row = costs[model]
        assert row["n_units"] == len(recs)
        assert row["fit_seconds"] == pytest.approx(fit) and row["eval_seconds"] == pytest.approx(ev)
        assert row["total_seconds"] == pytest.approx(feat + fit + ev)
        assert row["device"] == "cpu" and row["peak_memory_mb"] > 0
        for r in recs:  # energy: kWh where CodeCarbon measured, else the reason
            stage = r["cost"]["fit"]
            assert stage["energy_kwh"] is not None or stage["energy_note"].startswith("not measured")
    assert costs["Popularity"]["features_seconds"] is None  # it reads no feature
    # the W&B summary run: a cost column in the leaderboard and the cost table
    summary_run = runs_by_job(run_dir)["summary"][0]
    board = read_table(summary_run, "leaderboard")
    cols = board["columns"]
    by_model = {row[cols.index("model")]: row for row in board["data"]}
    for model, row in costs.items():
        assert by_model[model][cols.index("cost_seconds")] == pytest.approx(row["total_seconds"])
        assert by_model[model][cols.index("Cost")].endswith(" s") or " kWh" in by_model[model][cols.index("Cost")]
    table = read_table(summary_run, "costs")
    assert [r[0] for r in table["data"]] == ["Popularity", "Vision-only", "BPR-MF"]


def test_leaderboard_show_cost(tracked_run, capsys):
    from benchmark.cli import main as cli_main

    _, run_dir = tracked_run
    costs = json.loads((run_dir / "costs.json").read_text())["models"]
    assert cli_main(["leaderboard", str(run_dir), "--show-cost"]) == 0
    md = capsys.readouterr().out
    header = next(line for line in md.splitlines() if line.startswith("| Method"))
    assert header.rstrip(" |").endswith("Cost")
    assert cli_main(["leaderboard", str(run_dir), "--show-cost", "--format", "csv"]) == 0
    df = pd.read_csv(__import__("io").StringIO(capsys.readouterr().out))
    for _, row in df.iterrows():
        assert row["cost_seconds"] == pytest.approx(costs[row["method"]]["total_seconds"])
    assert cli_main(["leaderboard", str(run_dir)]) == 0
    assert "Cost" not in capsys.readouterr().out  # only on request: leaderboard.md stays free of wall time


def test_energy_failure_never_fails_a_stage(monkeypatch):
    import codecarbon

    from benchmark.runner import costs

    class Broken:
        def __init__(self, *a, **k):
            raise RuntimeError("no power counters here")

    monkeypatch.setattr(codecarbon, "OfflineEmissionsTracker", Broken)
    monkeypatch.setattr(costs, "_ENERGY_BROKEN", [])
    with costs.measure("cpu") as m:
        sum(range(1000))
    assert m.record["energy_kwh"] is None and "no power counters here" in m.record["energy_note"]
    assert m.record["wall_seconds"] >= 0 and m.record["device"] == "cpu"
    with costs.measure("cpu", energy=False) as off:
        pass
    assert off.record["energy_kwh"] is None and off.record["energy_note"].startswith("off")


def test_resume_replaces_the_summary_run(tracked_run):
    cfg_path, run_dir = tracked_run
    costs_before = json.loads((run_dir / "costs.json").read_text())["models"]
    before = runs_by_job(run_dir)
    first_id = read_run_info(before["summary"][0])["id"]
    again = run_experiment(load_config(cfg_path))
    assert again.run_dir == run_dir and again.units_run == []
    after = runs_by_job(run_dir)
    assert len(offline_runs(run_dir / "wandb")) == 5  # 4 units + 1 summary, as before the resume
    assert len(after["summary"]) == 1 and read_run_info(after["summary"][0])["id"] == first_id
    assert sorted(after["train"]) == sorted(before["train"])
    # the resume loaded the features from the cache: they count with the cost recorded when made
    costs_after = json.loads((run_dir / "costs.json").read_text())["models"]
    assert costs_after == costs_before


# --- MLflow, the same things to a local store --------------------------------------------------


@pytest.fixture(scope="module")
def mlflow_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlflow")
    models = [CONFIG["models"][0], CONFIG["models"][2]]  # Popularity, BPR-MF × 2 seeds (curves, mixed test)
    cfg_path = write_config(tmp, models=models, logging={"logger": "mlflow", "tags": ["ci"], "energy": False})
    result = run_experiment(load_config(cfg_path))
    return cfg_path, result.run_dir, (tmp / "results" / "mlruns").as_uri()


def test_mlflow_logs_units_curves_tables_and_summary(mlflow_run):
    from benchmark.runner import mlflow_tracking as mt

    _, run_dir, uri = mlflow_run
    seeds = per_seed_means(run_dir)
    units = mt.runs(uri, "track-small", "train")
    assert len(units) == 3
    for r in units:
        params, metrics = r.data.params, r.data.metrics
        assert params["dataset"] == "track-small" and params["protocol"] == "mmrec" and "commit" in params
        assert r.data.tags["group"] == "track-small" and r.data.tags["tag.ci"] == "true"
        seed = json.loads(params["seed"])
        per_user = pd.read_parquet(Unit(params["model_name"], seed).per_user_path(run_dir))
        assert metrics["test/recall_at_10"] == pytest.approx(per_user["recall@10"].mean(), abs=1e-12)
    client = mt.client_for(uri)
    bpr = [r for r in units if r.data.params["model_name"] == "BPR-MF"]
    for r in bpr:  # training curves through Lightning's MLFlowLogger, on the unit's own run
        assert len(client.get_metric_history(r.info.run_id, "train/loss")) >= 2
        assert r.data.params["train.max_epochs"] == "2"
    (summary,) = mt.runs(uri, "track-small", "summary")
    board = mt.read_table(uri, summary.info.run_id, "leaderboard")
    md_rows = [
        [c.strip() for c in line.strip().strip("|").split("|")]
        for line in (run_dir / "leaderboard.md").read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| Method")
    ]
    assert [row[: len(md_rows[0])] for row in board["data"]] == md_rows
    stats = mt.read_table(uri, summary.info.run_id, "statistics")
    (row,) = [dict(zip(stats["columns"], r)) for r in stats["data"] if r[1] == "recall@10"]
    diff = seeds["BPR-MF"]["recall@10"].mean() - seeds["Popularity"]["recall@10"].mean()
    assert row["mean_diff"] == pytest.approx(diff, abs=1e-12) and row["test"] == "mixed"
    m = summary.data.metrics
    assert m["BPR-MF/recall_at_10"] == pytest.approx(seeds["BPR-MF"]["recall@10"].mean(), abs=1e-12)
    assert m["BPR-MF/recall_at_10_significant_vs_baseline"] == float(row["significant"] and row["direction"] != 0)
    costs = mt.read_table(uri, summary.info.run_id, "costs")
    assert [r[0] for r in costs["data"]] == ["Popularity", "BPR-MF"]


def test_mlflow_resume_replaces_the_summary_run(mlflow_run):
    from benchmark.runner import mlflow_tracking as mt

    cfg_path, run_dir, uri = mlflow_run
    (first,) = mt.runs(uri, "track-small", "summary")
    again = run_experiment(load_config(cfg_path))
    assert again.run_dir == run_dir and again.units_run == []
    (second,) = mt.runs(uri, "track-small", "summary")
    assert second.info.run_id != first.info.run_id and len(mt.runs(uri, "track-small", "train")) == 3
