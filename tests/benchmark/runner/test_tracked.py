"""What trackers receive from a run directory (benchmark.runner.tracked), on hand-made files:
Markdown parsing, search traces, health warnings, summary values, costs order."""

from __future__ import annotations

import json

import pandas as pd

from benchmark.report.tables import leaderboard
from benchmark.runner import tracked


def comparison(run: str, metric: str, p_adj: float, direction: int, significant: bool) -> dict:
    return {
        "run": run,
        "baseline": "Base",
        "metric": metric,
        "test": "t",
        "p": p_adj / 2,
        "p_adjusted": p_adj,
        "family": "vs Base",
        "family_size": 2,
        "correction": "holm",
        "alpha": 0.05,
        "significant": significant,
        "direction": direction,
        "mean_run": 0.3,
        "mean_baseline": 0.2,
        "mean_diff": 0.1 * direction,
        "ci_low": -0.01,
        "ci_high": 0.2,
        "estimate": 0.1,
        "effect_size": 0.5,
        "rel_improvement": 0.5,
        "rel_ci_low": 0.1,
        "rel_ci_high": 0.9,
        "n_users": 50,
        "test_label": "paired t-test over users",
    }


def test_run_tables_from_files(tmp_path):
    means = {"Base": {"recall@10": 0.2}, "A|B": {"recall@10": 0.3}, "C": {"recall@10": 0.1}}
    tests = [comparison("A|B", "recall@10", 0.01, 1, True), comparison("C", "recall@10", 0.04, -1, True)]
    tests[1]["mean_diff"] = -0.1
    md = leaderboard(means, tests, fmt="md", baseline="Base", caption={"n_users": 50, "fingerprint": "f"})
    (tmp_path / "leaderboard.md").write_text(md)
    (tmp_path / "leaderboard.csv").write_text(leaderboard(means, tests, fmt="csv", baseline="Base"))
    (tmp_path / "statistics.json").write_text(json.dumps({"baseline": "Base", "comparisons": tests}))
    (tmp_path / "metrics.json").write_text(json.dumps({"means": means}))
    (tmp_path / "search").mkdir()
    pd.DataFrame({"trial": [0, 1], "value": [0.1, 0.2], "params": ['{"k": 8}', '{"k": 16}']}).to_parquet(
        tmp_path / "search" / "BPR-MF.parquet"
    )
    warnings = [{"model": "C", "check": "below_popularity", "message": "C is below popularity"}]
    (tmp_path / "health.json").write_text(json.dumps({"metric": "recall@20", "warnings": warnings}))
    costs = {"models": {"Base": {"total_seconds": 1.0}, "A|B": {"total_seconds": 200.0, "energy_kwh": 0.5}}}
    costs["order"] = ["Base", "A|B"]
    (tmp_path / "costs.json").write_text(json.dumps(costs))

    out = tracked.run_tables(tmp_path)
    board = out.tables["leaderboard"]
    names = [row[0] for row in board[1]]
    assert names == ["Base (baseline)", "A|B", "C"]  # the escaped pipe is one cell again
    recall = board[0].index("Recall@10")
    assert board[1][1][recall].endswith("▲") and board[1][2][recall].endswith("▼")  # as printed
    cols = board[0]
    assert [row[cols.index("model")] for row in board[1]] == ["Base", "A|B", "C"]
    assert board[1][1][cols.index("Cost")] == "3.3 min, 0.5 kWh" and board[1][2][cols.index("Cost")] == "–"
    assert out.tables["search_traces"][1] == [["BPR-MF", 0, 0.1, '{"k": 8}'], ["BPR-MF", 1, 0.2, '{"k": 16}']]
    assert out.tables["health_warnings"] == (
        ["model", "check", "message"],
        [["C", "below_popularity", warnings[0]["message"]]],
    )
    assert [r[0] for r in out.tables["costs"][1]] == ["Base", "A|B"]
    stats_cols, stats_rows = out.tables["statistics"]
    assert stats_cols == ["model", *tracked.STATISTICS_COLUMNS[1:]] and len(stats_rows) == 2
    s = out.summary
    assert s["A|B/recall@10"] == 0.3 and s["A|B/recall@10_significant_vs_baseline"] is True
    assert s["C/recall@10_direction_vs_baseline"] == -1 and s["C/recall@10_p_adjusted_vs_baseline"] == 0.04
    assert "subsets" not in out.tables  # no subsets.csv: no table


def test_summary_values_need_a_direction_to_be_a_finding():
    tests = [comparison("A", "ndcg@10", 0.01, 0, True), comparison("B", "ndcg@10", 0.2, 1, False)]
    s = tracked.summary_values({"A": {"ndcg@10": 0.1}}, tests, "Base")
    assert s["A/ndcg@10_significant_vs_baseline"] is False and s["B/ndcg@10_significant_vs_baseline"] is False
    assert s["B/ndcg@10_direction_vs_baseline"] == 0


def test_plain_values_are_json_safe():
    import numpy as np

    assert tracked._plain(float("nan")) is None and tracked._plain(np.int64(3)) == 3
    assert tracked._plain(pd.NA) is None and tracked._plain(np.array([1, 2])) == "[1, 2]"


def test_fit_device_follows_the_trainer():
    from benchmark.runner.stages.units import fit_device
    from benchmark.train_config import TrainConfig

    assert fit_device(None, "cuda:0") == "cuda:0"  # a model without a trainer: where it is evaluated
    assert fit_device(TrainConfig(accelerator="gpu"), "cpu") == "cuda"
    assert fit_device(TrainConfig(accelerator="cpu"), "cuda:0") == "cpu"
