"""Claim verdicts on a hand-built results directory with known per-user differences."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
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
    assert v["beats-weak"]["verdict"] == "supported"
    assert v["beats-strong"]["verdict"] == "contradicted"
    # a missing method does not hide a significant contradiction ...
    assert v["beats-all"]["verdict"] == "contradicted" and v["beats-all"]["missing"] == ["Absent"]
    assert v["beats-all"]["n_pairs_tested"] == 2
    # ... but it does stop a claim from being called supported
    assert v["beats-weak-and-absent"]["verdict"] == "not testable"
    assert v["ties"]["verdict"] in ("not supported", "supported")
    pair = v["beats-weak"]["pairs"][0]
    assert pair["mean_diff"] > 0 and pair["ci_low"] > 0 and pair["p_adjusted"] >= pair["p"]
    # Holm over all 6 tested pairs of all claims
    ps = sorted(p["p"] for c in report["claims"] for p in c["pairs"])
    assert len(ps) == 6
    assert "Ours beats Weak — **supported**" in md and "Published relative improvement: +50.0%" in md
