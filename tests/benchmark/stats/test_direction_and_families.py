"""Direction from each test's own statistic (§5), the Hodges–Lehmann estimate, and families:
all pairs, deduplicated pairs, one correction per family (§5, §6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.stats import (
    adjust_pvalues,
    all_pairs,
    compare,
    dedupe_pairs,
    family_record,
    hodges_lehmann,
    signed_rank_sum,
)


def _frame(values: np.ndarray, metric: str = "recall@10") -> pd.DataFrame:
    return pd.DataFrame({"user_id": np.arange(len(values)), metric: values})


def test_wilcoxon_direction_is_its_statistic_not_the_mean():
    # §5 audit case: 89% of users improve a little, 11% lose a lot; the mean difference is
    # −0.041 but the signed-rank test (significant) says the run is *better*. The comparison
    # must not read as "significantly worse" (the verdict was "contradicted").
    rng = np.random.default_rng(0)
    n = 500
    base = rng.uniform(0.45, 0.55, n)
    gain = np.where(np.arange(n) < int(0.89 * n), 0.01, -0.45)
    rows = compare({"b": _frame(base), "r": _frame(base + gain)}, "b", test="wilcoxon", n_resamples=2000)
    (r,) = rows
    assert r["mean_diff"] == pytest.approx(-0.0406, abs=5e-4) and r["significant"]
    assert r["direction"] == 1 and r["estimate"] == pytest.approx(0.01)
    assert signed_rank_sum(gain) > 0
    # the t-test on the same data points the other way, by its own statistic (the mean)
    (t,) = compare({"b": _frame(base), "r": _frame(base + gain)}, "b", test="t")
    assert t["direction"] == -1 and t["significant"]


@pytest.mark.parametrize("kind", ["normal", "discrete", "mostly_zero"])
@pytest.mark.parametrize("n", [1, 2, 7, 60, 301])
def test_hodges_lehmann_matches_brute_force(kind, n):
    rng = np.random.default_rng(n)
    d = {
        "normal": rng.normal(size=n),
        "discrete": rng.integers(-3, 4, n) / 4.0,
        "mostly_zero": np.where(rng.random(n) < 0.8, 0.0, rng.normal(size=n)),
    }[kind]
    walsh = np.add.outer(d, d)[np.triu_indices(n)] / 2.0
    assert hodges_lehmann(d) == pytest.approx(float(np.median(walsh)), abs=1e-12)


def test_bootstrap_direction_comes_from_its_ci():
    rng = np.random.default_rng(1)
    base = rng.random(400)
    up = compare({"b": _frame(base), "r": _frame(base + 0.05 + rng.normal(0, 0.1, 400))}, "b", test="bootstrap")[0]
    assert up["ci_low"] > 0 and up["direction"] == 1
    flat = compare({"b": _frame(base), "r": _frame(base + rng.normal(0, 0.1, 400))}, "b", test="bootstrap")[0]
    assert flat["ci_low"] < 0 < flat["ci_high"] and flat["direction"] == 0


def _three_runs(n: int = 200) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(2)
    base = rng.random(n)
    return {
        name: pd.DataFrame({"user_id": np.arange(n), "recall@10": base + s + rng.normal(0, 0.05, n), "ndcg@10": base})
        for name, s in (("a", 0.0), ("b", 0.01), ("c", 0.02), ("d", -0.01))
    }


def test_all_pairs_is_one_family_and_matches_the_same_family_given_explicitly():
    runs = _three_runs()
    rows = compare(runs, pairs="all-pairs", metrics=["recall@10"], correction="holm")
    assert [(r["run"], r["baseline"]) for r in rows] == all_pairs(["a", "b", "c", "d"])
    assert len(rows) == 6 and {r["family_size"] for r in rows} == {6} and {r["family"] for r in rows} == {"all pairs"}
    assert [r["p_adjusted"] for r in rows] == pytest.approx(list(adjust_pvalues([r["p"] for r in rows], "holm")))
    # the same family given as explicit pairs, some the other way round: same adjusted p per pair
    flipped = [(b, r) if i % 2 else (r, b) for i, (r, b) in enumerate(all_pairs(["a", "b", "c", "d"]))]
    again = compare(runs, pairs=flipped, metrics=["recall@10"], correction="holm", family="all pairs")
    by_pair = {frozenset((r["run"], r["baseline"])): r for r in again}
    for r in rows:
        twin = by_pair[frozenset((r["run"], r["baseline"]))]
        assert twin["p_adjusted"] == pytest.approx(r["p_adjusted"], rel=1e-12)
        sign = 1 if twin["run"] == r["run"] else -1
        assert twin["mean_diff"] == pytest.approx(sign * r["mean_diff"], abs=1e-15)
        assert twin["direction"] == sign * r["direction"]
    # a baseline given with all-pairs is the baseline of its pairs
    with_base = compare(runs, "c", pairs="all-pairs", metrics=["recall@10"])
    assert all(r["baseline"] == "c" for r in with_base if "c" in (r["run"], r["baseline"]))


def test_a_pair_is_tested_once():
    assert dedupe_pairs([("a", "b"), ("c", "b"), ("b", "a"), ("a", "b")]) == [("a", "b"), ("c", "b")]
    with pytest.raises(ValueError, match="itself"):
        dedupe_pairs([("a", "a")])
    with pytest.raises(ValueError, match="listed twice"):
        compare(_three_runs(), pairs=[("a", "b"), ("b", "a")])
    with pytest.raises(ValueError, match="unknown run 'z'"):
        compare(_three_runs(), pairs=[("a", "z")])
    with pytest.raises(ValueError, match="unknown pairs"):
        compare(_three_runs(), pairs="some")


def test_family_record_states_size_correction_and_members():
    rows = compare(_three_runs(), "a", correction="bh", alpha=0.1)
    fam = family_record(rows)
    assert fam["id"] == "vs a" and fam["size"] == 6 and fam["correction"] == "bh" and fam["alpha"] == 0.1
    assert fam["pairs"] == [["b", "a"], ["c", "a"], ["d", "a"]] and fam["metrics"] == ["recall@10", "ndcg@10"]
    assert fam["tests"] == ["t"] and "6 comparisons (3 pair(s) × 2 metric(s))" in fam["description"]
    assert {(r["family"], r["family_size"], r["correction"], r["alpha"]) for r in rows} == {("vs a", 6, "bh", 0.1)}
