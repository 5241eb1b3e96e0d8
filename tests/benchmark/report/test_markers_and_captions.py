"""Leaderboard markers follow the test's own direction; captions name the tests (with what their
randomness covers), the family, the seed flag and mixed code versions (issue 9 §5–§7)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from benchmark.report import comparison_table, leaderboard
from benchmark.stats import aggregate_seeds, compare


def _cells(md: str) -> dict[str, dict[str, str]]:
    lines = [line for line in md.splitlines() if line.startswith("| ")]
    cols = [c.strip() for c in lines[0].strip("|").split("|")][1:]
    return {
        p[0]: dict(zip(cols, p[1:])) for p in ([c.strip() for c in line.strip("|").split("|")] for line in lines[1:])
    }


def _means(per_user: dict[str, pd.DataFrame]) -> dict[str, dict[str, float]]:
    return {k: v.drop(columns="user_id").mean().to_dict() for k, v in per_user.items()}


def test_wilcoxon_marker_follows_the_signed_rank_statistic_not_the_mean():
    # §5 audit case in the leaderboard: 89% of users gain 0.01, 11% lose 0.45 (mean −0.041);
    # Wilcoxon is significant in favour of the run, so the marker is ▲, never ▼.
    rng = np.random.default_rng(0)
    n = 500
    base = rng.uniform(0.45, 0.55, n)
    gain = np.where(np.arange(n) < int(0.89 * n), 0.01, -0.45)
    per_user = {
        "base": pd.DataFrame({"user_id": np.arange(n), "recall@10": base}),
        "run": pd.DataFrame({"user_id": np.arange(n), "recall@10": base + gain}),
    }
    tests = compare(per_user, "base", test="wilcoxon", n_resamples=2000)
    assert tests[0]["mean_diff"] < 0 and tests[0]["significant"]
    cells = _cells(leaderboard(_means(per_user), tests))
    assert cells["run"]["Recall@10"].endswith("▲")
    df = pd.read_csv(io.StringIO(leaderboard(_means(per_user), tests, fmt="csv")))
    assert df.set_index("method").loc["run", "recall@10_significant"] == 1
    assert "▲" in comparison_table(tests)


def _seeded(n: int = 300, seed: int = 1):
    rng = np.random.default_rng(seed)
    users = np.arange(n)
    base = rng.random(n) * 0.3

    def seeds(shift: float, k: int) -> list[pd.DataFrame]:
        return [
            pd.DataFrame(
                {
                    "user_id": users,
                    "recall@10": np.clip(base + shift + rng.normal(0, 0.02) + rng.normal(0, 0.05, n), 0, 1),
                }
            )
            for _ in range(k)
        ]

    return {
        "fixed": pd.DataFrame({"user_id": users, "recall@10": base}),
        "trained": seeds(0.05, 5),
        "other": seeds(0.04, 5),
    }


def test_captions_name_the_tests_and_what_their_randomness_covers():
    data = _seeded()
    seeds = {"trained": [0, 1, 2, 3, 4], "other": [0, 1, 2, 3, 4]}
    spread = {m: aggregate_seeds(v)[1] for m, v in data.items() if isinstance(v, list)}
    means = {
        m: {"recall@10": float(np.mean([f["recall@10"].mean() for f in (v if isinstance(v, list) else [v])]))}
        for m, v in data.items()
    }
    mixed = compare(data, "fixed", seeds=seeds)
    assert {t["test"] for t in mixed} == {"mixed"}
    md = leaderboard(means, mixed, spread=spread)
    foot = md.strip().splitlines()[-1]
    assert "linear mixed model over users and training seeds" in foot
    assert 'Holm correction over the family "vs fixed" of 2 comparisons' in foot
    classic = compare(data, "fixed", test="t", seeds=seeds, n_resamples=500)
    foot = leaderboard(means, classic, spread=spread).strip().splitlines()[-1]
    assert "paired t-test, conditional on the trained models (training randomness not counted)" in foot
    # seed SD ≈ 0.02 against a CI half-width of the same order: both trained rows are flagged
    cells = _cells(leaderboard(means, mixed, spread=spread))
    assert {"trained†", "other†"} <= set(cells) and "fixed (baseline)" in cells


def test_all_pairs_family_is_stated_and_markers_read_from_either_side():
    data = _seeded()
    means = {
        m: {"recall@10": float(np.mean([f["recall@10"].mean() for f in (v if isinstance(v, list) else [v])]))}
        for m, v in data.items()
    }
    rows = compare(data, pairs="all-pairs")  # (trained, fixed), (other, fixed), (other, trained)
    assert [(r["run"], r["baseline"]) for r in rows] == [("trained", "fixed"), ("other", "fixed"), ("other", "trained")]
    # a leaderboard against "trained": its pair with "fixed" is stored with "trained" as the run
    md = leaderboard(means, rows, baseline="trained")
    foot = md.strip().splitlines()[-1]
    assert 'the family "all pairs" of 3 comparisons (2 shown here' in foot
    cells = _cells(md)
    fixed_vs_trained = next(r for r in rows if (r["run"], r["baseline"]) == ("trained", "fixed"))
    assert fixed_vs_trained["significant"] and fixed_vs_trained["direction"] == 1  # trained beats fixed
    assert cells["fixed"]["Recall@10"].endswith("▼")  # so fixed is worse than the baseline "trained"


def test_mixed_code_versions_are_stated():
    md = leaderboard(
        {"a": {"m@1": 0.1}}, caption={"code_versions": ["3 unit(s) at abc123", "2 unit(s) at def456 (dirty)"]}
    )
    assert "Results mix code versions (--allow-mixed): 3 unit(s) at abc123; 2 unit(s) at def456 (dirty)." in md
