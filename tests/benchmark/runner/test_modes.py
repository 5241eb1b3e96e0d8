"""A run evaluated in both modes: the leaderboard's full-catalogue results unchanged, the
captioned-only results beside them (per unit, read back, summarised in modes.json/modes.md)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from benchmark.errors import ConfigError
from benchmark.evaluation.captioned import part_users, sample_users
from benchmark.runner.config import load_config
from benchmark.runner.pipeline import run_experiment
from benchmark.runner.results import RunResults

pytestmark = pytest.mark.slow

CONFIG = {
    "experiment": "modes",
    "seeds": [0, 1],
    "dataset": {
        "name": "demo-modes",
        "source": "demo",
        "protocol": "paper",
        "demo": {"seed": 0, "n_items": 150, "n_users": 200, "min_interactions": 10, "max_interactions": 14},
    },
    "features": [{"name": "pixels", "producer": "pixels"}],
    "models": [
        {"name": "Vision-only", "model": "vision-only", "params": {"feature": "pixels"}},
        {"name": "Popularity", "model": "popularity"},
        {"name": "Random", "model": "random"},
    ],
    "evaluation": {
        "ks": [5, 10],
        "metrics": ["recall", "ndcg"],
        "modes": ["full-catalogue", "captioned-only"],
        "captioned": {"user_fraction": 0.5, "sample_seed": 3, "sample_repeats": 50},
    },
    "statistics": {"baseline": "Popularity", "n_resamples": 1000},
    "logging": {"logger": "csv"},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("modes")
    cfg = dict(CONFIG, results_dir=str(tmp / "results"), cache_dir=str(tmp / "cache"))
    path = tmp / "modes.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return run_experiment(load_config(path))


def test_each_unit_is_evaluated_in_both_modes(run):
    res = RunResults.load(run.run_dir)
    assert res.modes() == ["captioned-only"]
    sample = set(sample_users(part_users(run.split, "test"), 0.5, 3))
    for model in ("Vision-only", "Popularity"):
        for unit in res.units[model]:
            rec = unit.record["modes"]["captioned-only"]
            table = unit.modes["captioned-only"]
            assert set(table["user_id"]) <= sample and len(table) == rec["n_users"] > 0
            assert rec["test"]["recall@10"] == pytest.approx(table["recall@10"].mean())
            assert rec["sampling"]["repeats"] == 50 and rec["sampling"]["sample_seed"] == 3
    # the profile model rebuilt its profile from train + valid; popularity has no profile to rebuild
    assert res.units["Vision-only"][0].record["modes"]["captioned-only"]["profile"] == "train+valid"
    assert "no use_history" in res.units["Popularity"][0].record["modes"]["captioned-only"]["profile"]
    # the seeded model runs once per seed in both modes; its per-mode frames are seed-averaged
    assert len(res.units["Random"]) == 2
    averaged = res.per_user("Random", mode="captioned-only")
    frames = res.seed_frames("Random", mode="captioned-only")
    assert averaged["recall@10"].mean() == pytest.approx(
        pd.concat(frames).groupby("user_id")["recall@10"].mean().mean()
    )


def test_the_leaderboard_mode_is_unchanged_and_modes_are_summarised(run):
    d = run.run_dir
    metrics = json.loads((d / "metrics.json").read_text())
    full = RunResults.load(d).per_user("Vision-only")
    assert metrics["means"]["Vision-only"]["recall@10"] == pytest.approx(full["recall@10"].mean())
    modes = json.loads((d / "modes.json").read_text())
    body = modes["captioned-only"]
    assert body["settings"] == {"feature": None, "user_fraction": 0.5, "sample_seed": 3, "sample_repeats": 50}
    row = body["models"]["Vision-only"]
    spread = row["sampling"]["metrics"]["recall@10"]
    assert spread["p2.5"] <= spread["mean"] <= spread["p97.5"]
    assert row["means"]["recall@10"] == pytest.approx(spread["recorded_sample"])
    md = (d / "modes.md").read_text()
    assert "## Evaluation mode `captioned-only`" in md and "| Vision-only |" in md and "50% of the test users" in md


def test_the_first_mode_must_be_the_leaderboards(tmp_path):
    cfg = json.loads(json.dumps(CONFIG))
    cfg["evaluation"]["modes"] = ["captioned-only"]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="evaluation.modes: the first mode is the leaderboard's"):
        load_config(path)
    cfg["evaluation"]["modes"] = ["full-catalogue", "captioned-only"]
    cfg["evaluation"]["captioned"] = {"feature": "llava"}
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match="evaluation.captioned.feature: feature 'llava' is not defined"):
        load_config(path)


PUBLISHED = {
    "source": "test",
    "dataset": "the paper's data",
    "metrics": ["recall@10"],
    "methods": {"Vision": {"recall@10": 0.3}, "Pop": {"recall@10": 0.1}},
    "provenance_caveats": ["the published fusion models cannot run as written"],
    "method_provenance": {
        "Vision": {"expects": {"model": "vision-only", "image": "clip-image", "raw_mean": True}},
        "Pop": {"expects": {"model": "popularity"}},
    },
    "claims": [
        {"id": "v", "text": "Vision beats Pop", "metric": "recall@10", "better": "Vision", "than": ["Pop"]},
    ],
}


def test_claims_report_shows_every_claim_in_both_modes_with_the_remaining_differences(run, tmp_path):
    from benchmark.runner import claims
    from benchmark.runner.results import RunResults

    res = RunResults.load(run.run_dir)
    for m in res.config.models:
        m.paper_name = {"Vision-only": "Vision", "Popularity": "Pop"}.get(m.name)
    path = tmp_path / "pub.yaml"
    path.write_text(yaml.safe_dump(PUBLISHED))
    md, report = claims.claims_report(res, str(path))
    claim = report["claims"][0]
    full = res.per_user("Vision-only")["recall@10"].mean()
    captioned = res.per_user("Vision-only", mode="captioned-only")["recall@10"].mean()
    row = next(r for r in report["table_by_mode"] if r["paper_method"] == "Vision")
    assert row["full-catalogue"]["mean"] == pytest.approx(full)
    assert row["captioned-only"]["mean"] == pytest.approx(captioned)
    assert len(row["captioned-only"]["sample_range"]) == 2
    # the captioned-only verdict is tested on the users both models kept
    pair = claim["modes"]["captioned-only"]["pairs"][0]
    mode_claim = claim["modes"]["captioned-only"]
    assert mode_claim["verdict"] == mode_claim["direction_verdict"]
    assert mode_claim["direction_verdict"] in ("supported", "contradicted", "not significant")
    assert mode_claim["size_verdict"] in ("inside", "outside")  # published 0.3 vs 0.1: +200%
    assert pair["run"] == "Vision-only" and pair["baseline"] == "Popularity"
    diffs = claim["differences"]
    assert any(d.startswith("data: source demo, protocol paper, not the paper's") for d in diffs)
    assert any("image: ours `pixels` from pixels, the paper's from clip-image" in d for d in diffs)
    assert any("aggregation: ours averages L2-normalised item vectors" in d for d in diffs)
    assert not any(d.startswith("Pop") for d in diffs)  # popularity is the paper's popularity here
    assert "ours (captioned-only)" in md and "- `captioned-only`: direction **" in md
    assert "Provenance of the published numbers: the published fusion models cannot run" in md
    assert "Remaining differences from the paper:" in md
