"""Claim verdicts on a hand-built results directory with known per-user differences."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from benchmark.runner.claims import claims_report

PUBLISHED = {
    "source": "test",
    "metrics": ["recall@10"],
    "methods": {
        "Ours": {"recall@10": 0.3},
        "Weak": {"recall@10": 0.1},
        "Strong": {"recall@10": 0.2},
        "Absent": {"recall@10": 0.05},
    },
    "claims": [
        {
            "id": "beats-weak",
            "text": "Ours beats Weak",
            "metric": "recall@10",
            "better": "Ours",
            "than": ["Weak"],
            "published_relative_improvement": 0.5,
        },
        {
            "id": "beats-strong",
            "text": "Ours beats Strong",
            "metric": "recall@10",
            "better": "Ours",
            "than": ["Strong"],
        },
        {
            "id": "beats-all",
            "text": "Ours beats everything",
            "metric": "recall@10",
            "better": "Ours",
            "than": ["Weak", "Strong", "Absent"],
        },
        {
            "id": "beats-weak-and-absent",
            "text": "Ours beats Weak and Absent",
            "metric": "recall@10",
            "better": "Ours",
            "than": ["Weak", "Absent"],
        },
        {"id": "ties", "text": "Ours beats Twin", "metric": "recall@10", "better": "Ours", "than": ["Twin"]},
    ],
}


def make_run(tmp: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 400
    base = rng.uniform(0.2, 0.4, n)
    values = {
        "Ours": base,
        "Weak": base - 0.1 + rng.normal(0, 0.02, n),
        "Strong": base + 0.1 + rng.normal(0, 0.02, n),
        "Twin": base + rng.normal(0, 0.05, n),
    }
    d = tmp / "run"
    (d / "units").mkdir(parents=True)
    for name, v in values.items():
        pd.DataFrame({"user_id": np.arange(n), "recall@10": v}).to_parquet(d / "units" / f"{name}.parquet")
        (d / "units" / f"{name}.json").write_text(json.dumps({"model": name, "seed": None}))
    models = [{"name": m, "model": "x", "paper_name": m} for m in ("Ours", "Weak", "Strong")]
    models.append({"name": "Twin", "model": "x", "paper_name": "Twin"})
    (d / "config.resolved.yaml").write_text(
        yaml.safe_dump(
            {
                "experiment": "t",
                "dataset": {"name": "t"},
                "models": models,
                "statistics": {"test": "t", "correction": "holm", "alpha": 0.05},
            }
        )
    )
    (d / "split.json").write_text(json.dumps({"fingerprint": "f" * 64}))
    pub = tmp / "published.yaml"
    PUBLISHED["methods"]["Twin"] = {"recall@10": 0.3}
    pub.write_text(yaml.safe_dump(PUBLISHED))
    return d


def test_verdicts(tmp_path):
    d = make_run(tmp_path)
    md, report = claims_report(d, published=str(tmp_path / "published.yaml"))
    v = {c["id"]: c for c in report["claims"]}
    assert v["beats-weak"]["direction_verdict"] == "supported" == v["beats-weak"]["verdict"]
    assert v["beats-strong"]["direction_verdict"] == "contradicted"
    # a missing method does not hide a significant contradiction ...
    assert v["beats-all"]["direction_verdict"] == "contradicted" and v["beats-all"]["missing"] == ["Absent"]
    assert v["beats-all"]["n_pairs_tested"] == 2
    # ... but it does stop a claim from being called supported
    assert v["beats-weak-and-absent"]["direction_verdict"] == "not testable"
    assert v["ties"]["direction_verdict"] in ("not significant", "supported")
    pair = v["beats-weak"]["pairs"][0]
    assert pair["mean_diff"] > 0 and pair["ci_low"] > 0 and pair["p_adjusted"] >= pair["p"]
    assert pair["test"] == "t" and pair["direction"] == 1
    # §5: the family holds each distinct pair once — 6 claim comparisons, 3 distinct tests
    assert sum(c["n_pairs_tested"] for c in report["claims"]) == 6
    fam = report["family"]
    assert fam["size"] == 3 and fam["n_distinct"] == 3 and fam["n_claim_comparisons"] == 6
    same_pair = [p for c in report["claims"] for p in c["pairs"] if p["baseline"] == "Weak"]
    assert len(same_pair) == 3 and len({p["p_adjusted"] for p in same_pair}) == 1
    assert all(p["family_size"] == 3 for c in report["claims"] for p in c["pairs"])
    assert "the claims' 3 distinct comparisons (6 in the claims" in md and "3 tests, Holm correction" in md
    assert "direction **supported**, size **" in md and "Published relative improvement (stated): +50.0%" in md
    # sizes: stated in the claim, else from the published numbers (Strong 0.2 vs Ours 0.3: +50%)
    assert pair["published_rel"] == 0.5 and pair["published_rel_source"] == "stated in the claim"
    strong = v["beats-strong"]["pairs"][0]
    assert (
        strong["published_rel"] == pytest.approx(0.5) and strong["published_rel_source"] == "from the published numbers"
    )
    assert strong["size_verdict"] == "outside" and v["beats-strong"]["size_verdict"] == "outside"
    assert v["beats-weak-and-absent"]["size_verdict"] in ("inside", "outside")  # Weak's pair has a size


def _two_model_run(
    tmp: Path, better: list[np.ndarray], other: np.ndarray, stats: dict, claim: dict
) -> tuple[Path, Path]:
    """A run with "Better" (one unit per array: seeds 0.., or one unit without seed) and "Other"."""
    d = tmp / "run2"
    (d / "units").mkdir(parents=True)
    users = np.arange(len(other))
    for i, v in enumerate(better):
        key, seed = (f"Better__seed{i}", i) if len(better) > 1 else ("Better", None)
        pd.DataFrame({"user_id": users, "recall@10": v, "ndcg@10": v / 2}).to_parquet(d / "units" / f"{key}.parquet")
        rec = {"model": "Better", "seed": seed, "valid": {}, "test": {"recall@10": float(v.mean())}}
        (d / "units" / f"{key}.json").write_text(json.dumps(rec))
    pd.DataFrame({"user_id": users, "recall@10": other, "ndcg@10": other / 2}).to_parquet(d / "units" / "Other.parquet")
    rec = {"model": "Other", "seed": None, "valid": {}, "test": {"recall@10": float(other.mean())}}
    (d / "units" / "Other.json").write_text(json.dumps(rec))
    models = [{"name": m, "model": "x", "paper_name": m} for m in ("Other", "Better")]
    config = {"experiment": "t2", "dataset": {"name": "t"}, "models": models, "statistics": stats}
    config["evaluation"] = {"ks": [10], "metrics": ["recall", "ndcg"]}
    (d / "config.resolved.yaml").write_text(yaml.safe_dump(config))
    (d / "split.json").write_text(json.dumps({"fingerprint": "e" * 64}))
    pub = {"source": "t", "methods": {"Better": {"recall@10": 0.3}, "Other": {"recall@10": 0.2}}, "claims": [claim]}
    path = tmp / "pub2.yaml"
    path.write_text(yaml.safe_dump(pub))
    return d, path


CLAIM = {"id": "c", "text": "Better beats Other", "metric": "recall@10", "better": "Better", "than": ["Other"]}


def test_size_is_judged_as_well_as_sign(tmp_path):
    # §5 audit case: "beats BERT by 54.9%" while we measure about +19.7% with a tight CI: the
    # direction holds, the size does not — two verdicts, not one "supported".
    rng = np.random.default_rng(1)
    n = 20000
    other = rng.uniform(0.1, 0.3, n)
    better = other * 1.197 + rng.normal(0, 0.01, n)
    claim = dict(CLAIM, published_relative_improvement=0.549)
    d, pub = _two_model_run(tmp_path, [better], other, {"test": "t"}, claim)
    md, report = claims_report(d, published=str(pub))
    (c,) = report["claims"]
    p = c["pairs"][0]
    assert 0.18 < p["rel_ci_low"] < p["rel_improvement"] < p["rel_ci_high"] < 0.21
    assert c["direction_verdict"] == "supported" and c["size_verdict"] == "outside"
    assert "direction **supported**, size **outside**" in md and "| +54.9% | outside |" in md


def test_wilcoxon_claim_is_not_contradicted_by_the_mean(tmp_path):
    # §5 audit case: 89% of users improve, the mean is −0.041; under Wilcoxon the claim was
    # "contradicted" (sign from the mean, significance from the ranks). Now the direction is the
    # test's own and the report says that the mean points the other way.
    rng = np.random.default_rng(2)
    n = 500
    other = rng.uniform(0.45, 0.55, n)
    better = other + np.where(np.arange(n) < int(0.89 * n), 0.01, -0.45)
    d, pub = _two_model_run(tmp_path, [better], other, {"test": "wilcoxon"}, CLAIM)
    md, report = claims_report(d, published=str(pub))
    (c,) = report["claims"]
    p = c["pairs"][0]
    assert p["mean_diff"] == pytest.approx(-0.0406, abs=5e-4) and p["significant"] and p["direction"] == 1
    assert c["direction_verdict"] == "supported" and p["mean_disagrees"]
    assert "points the other way from the wilcoxon test's own statistic" in md


def test_seeds_are_counted_and_the_run_family_gives_the_same_adjusted_p(tmp_path):
    # a trained "Better" with 3 seeds: the default test counts them, and says so; with
    # --family run the claim's adjusted p is exactly the run's statistics.json value (§6).
    from benchmark.runner.results import RunResults
    from benchmark.runner.stages.summary import summarise

    rng = np.random.default_rng(3)
    n = 300
    other = rng.uniform(0.1, 0.3, n)
    seeds = [other + 0.02 + rng.normal(0, 0.01) + rng.normal(0, 0.03, n) for _ in range(3)]
    stats = {"comparisons": "all-pairs", "correction": "bh"}
    d, pub = _two_model_run(tmp_path, seeds, other, stats, CLAIM)
    results = RunResults.load(d)
    summarise(results, results.config.statistics, ["recall@10", "ndcg@10"])
    stored = json.loads((d / "statistics.json").read_text())
    assert stored["families"][0]["id"] == "all pairs" and stored["families"][0]["size"] == 2
    row = next(r for r in stored["comparisons"] if r["metric"] == "recall@10")
    md, report = claims_report(d, published=str(pub), family="run")
    p = report["claims"][0]["pairs"][0]
    assert p["test"] == "mixed" and "users and training seeds (run: 3 seeds" in p["test_label"]
    assert p["p_adjusted"] == row["p_adjusted"] and p["family"] == "all pairs"
    assert p["run"] == "Better" and p["mean_diff"] == pytest.approx(
        -row["mean_diff"] if row["run"] == "Other" else row["mean_diff"]
    )
    assert 'the run\'s own family "all pairs"' in md and "linear mixed model over users and training seeds" in md
    with pytest.raises(ValueError, match="family 'run' uses the run's own test"):
        claims_report(d, published=str(pub), family="run", test="t")


def test_several_runs_side_by_side(tmp_path):
    d = make_run(tmp_path)
    md, report = claims_report([d, d], published=str(tmp_path / "published.yaml"))
    assert [r["label"] for r in report["runs"]] == ["t (run)", "t (run)"]
    assert md.count("| ours: ") == 2 and "- `t (run), full-catalogue`: direction **supported**" in md
    assert "- Remaining differences from the paper (t (run)):" in md


def test_cli_states_both_verdicts_and_refuses_overrides_of_the_run_family(tmp_path, capsys):
    from benchmark.cli import main

    d = make_run(tmp_path)
    pub = str(tmp_path / "published.yaml")
    assert main(["claims", str(d), "--published", pub, "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {c["direction_verdict"] for c in out["claims"]} >= {"supported", "contradicted", "not testable"}
    assert all(c["size_verdict"] in ("inside", "outside", "n/a") for c in out["claims"])
    assert main(["claims", str(d), "--published", pub, "--family", "run", "--test", "t"]) == 2


def test_cli_logs_the_verdict_table_to_wandb_offline(tmp_path, capsys, monkeypatch):
    from benchmark.cli import main
    from benchmark.runner.wandb_offline import offline_runs, read_config, read_run_info, read_summary, read_table

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    d = make_run(tmp_path)
    pub = str(tmp_path / "published.yaml")
    for _ in range(2):  # checking the claims again replaces the claims run
        assert main(["claims", str(d), "--published", pub, "--format", "json", "--logger", "wandb"]) == 0
        report = json.loads(capsys.readouterr().out)
    (run,) = offline_runs(d / "wandb")
    info = read_run_info(run)
    assert info["job_type"] == "claims" and info["group"] == "t"
    assert read_config(run)["results_artifact"] == "results-t"  # offline: the link to the results is named
    table = read_table(run, "claims")
    rows = [dict(zip(table["columns"], r)) for r in table["data"]]
    for claim in report["claims"]:
        mine = [r for r in rows if r["claim"] == claim["id"] and r["mode"] == "full-catalogue"]
        assert {r["direction_verdict"] for r in mine} == {claim["direction_verdict"]}
        assert {r["size_verdict"] for r in mine} == {claim["size_verdict"]}
        for pair in claim["pairs"]:
            row = next(r for r in mine if r["pair"] == f"{pair['run']} vs {pair['baseline']}")
            assert row["p_adjusted"] == pytest.approx(pair["p_adjusted"], rel=1e-12)
            assert row["published_rel"] == pair["published_rel"]
            assert row["rel_ci_low"] <= row["rel_improvement"] <= row["rel_ci_high"]
    summary = read_summary(run)
    supported = sum(c["direction_verdict"] == "supported" for c in report["claims"])
    assert summary["claims/n_supported"] == supported
    assert main(["claims", str(d), "--published", pub, "--logger", "none"]) == 0
    assert len(offline_runs(d / "wandb")) == 1
