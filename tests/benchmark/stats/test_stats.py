"""Paired tests, corrections and seed aggregation in benchmark.stats, checked against scipy,
exact enumeration and hand computation."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from benchmark.stats import (
    CORRECTIONS,
    RESULT_KEYS,
    TESTS,
    adjust_pvalues,
    aggregate_seeds,
    bootstrap_means,
    compare,
    signflip_pvalues,
)


def _runs(n: int = 300, seed: int = 0, shifts: dict[str, float] | None = None, discrete: bool = False):
    """Per-user tables for a baseline and shifted runs; discrete values make ties and zeros."""
    rng = np.random.default_rng(seed)
    shifts = shifts or {"base": 0.0, "a": 0.03, "b": -0.01}
    users = rng.permutation(np.arange(1000, 1000 + n))
    out = {}
    for name, s in shifts.items():
        if discrete:
            vals = {
                m: np.clip(rng.integers(0, 5, n) / 4 + (rng.random(n) < abs(s) * 5) * np.sign(s) * 0.25, 0, 1)
                for m in ("recall@10", "ndcg@10")
            }
        else:
            vals = {m: np.clip(rng.random(n) * 0.5 + s, 0, 1) for m in ("recall@10", "ndcg@10")}
        out[name] = pd.DataFrame({"user_id": users, **vals})
    return out


def _aligned(runs, name, metric):
    return runs[name].sort_values("user_id")[metric].to_numpy()


# --- scipy agreement -------------------------------------------------------------------------


@pytest.mark.parametrize("discrete", [False, True])
def test_t_test_matches_scipy(discrete):
    runs = _runs(discrete=discrete)
    res = compare(runs, "base", test="t", n_resamples=500)
    assert len(res) == 4 and [(r["run"], r["metric"]) for r in res] == [
        ("a", "recall@10"),
        ("a", "ndcg@10"),
        ("b", "recall@10"),
        ("b", "ndcg@10"),
    ]
    for r in res:
        x, y = _aligned(runs, r["run"], r["metric"]), _aligned(runs, "base", r["metric"])
        ref = sps.ttest_rel(x, y)
        ci = ref.confidence_interval(0.95)
        assert r["p"] == pytest.approx(ref.pvalue, abs=1e-12, rel=1e-12)
        assert r["ci_low"] == pytest.approx(ci.low, abs=1e-12)
        assert r["ci_high"] == pytest.approx(ci.high, abs=1e-12)
        d = x - y
        assert r["mean_diff"] == pytest.approx(d.mean(), abs=1e-15)
        assert r["effect_size"] == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-12)
        assert r["mean_run"] == pytest.approx(x.mean()) and r["mean_baseline"] == pytest.approx(y.mean())
        assert r["rel_improvement"] == pytest.approx(d.mean() / y.mean(), rel=1e-12)
        assert r["rel_ci_low"] <= r["rel_improvement"] <= r["rel_ci_high"]
        assert r["n_users"] == 300 and r["test"] == "t" and r["baseline"] == "base"
        assert set(r) == set(RESULT_KEYS)


@pytest.mark.parametrize("n", [10, 40, 300])
def test_wilcoxon_matches_scipy_with_zeros_and_ties(n):
    runs = _runs(n=n, discrete=True, seed=n)
    res = compare(runs, "base", test="wilcoxon", n_resamples=500)
    some_zero = False
    for r in res:
        d = _aligned(runs, r["run"], r["metric"]) - _aligned(runs, "base", r["metric"])
        some_zero |= bool(np.any(d == 0))
        ref = sps.wilcoxon(np.round(d, 12), zero_method="pratt", correction=False, method="auto")
        assert r["p"] == pytest.approx(ref.pvalue, abs=1e-12, rel=1e-12)
        # Non-t tests report the bootstrap percentile CI.
        assert r["ci_low"] <= r["mean_diff"] <= r["ci_high"]
    assert some_zero  # the data did exercise the zero-difference rule


def test_wilcoxon_rounding_removes_float_noise():
    # 0.3 - 0.1 and 0.5 - 0.3 are equal in exact arithmetic but not in floats.
    base = pd.DataFrame({"user_id": range(6), "m": [0.1, 0.3, 0.2, 0.0, 0.1, 0.4]})
    run = pd.DataFrame({"user_id": range(6), "m": [0.3, 0.5, 0.2, 0.1, 0.4, 0.9]})
    r = compare({"b": base, "r": run}, "b", test="wilcoxon")[0]
    d = np.array([0.2, 0.2, 0.0, 0.1, 0.3, 0.5])
    assert r["p"] == pytest.approx(sps.wilcoxon(d, zero_method="pratt", correction=False).pvalue, abs=1e-12)


@pytest.mark.parametrize("test", TESTS)
def test_identical_runs_give_p_one(test):
    runs = _runs(shifts={"base": 0.0})
    runs["same"] = runs["base"].sample(frac=1.0, random_state=1)  # same values, other row order
    for r in compare(runs, "base", test=test, n_resamples=1000):
        assert r["p"] == 1.0 and r["p_adjusted"] == 1.0 and not r["significant"]
        assert r["mean_diff"] == 0.0 and r["effect_size"] == 0.0
        assert r["ci_low"] == 0.0 and r["ci_high"] == 0.0
        assert r["rel_improvement"] == 0.0


def test_constant_difference_effect_size_infinite_and_t_ci_degenerate():
    base = pd.DataFrame({"user_id": range(50), "m": np.linspace(0, 0.5, 50)})
    run = base.assign(m=base["m"] + 0.1)
    worse = base.assign(m=base["m"] - 0.1)
    # Regression: every user gaining exactly 0.1 (sd(d) = 0 up to round-off) was reported as
    # effect size 0 ("no effect") next to p ≈ 0; it is the most consistent effect possible.
    res = compare({"b": base, "r": run, "w": worse}, "b", test="t")
    assert res[0]["effect_size"] == np.inf and res[1]["effect_size"] == -np.inf
    r = res[0]
    assert r["p"] == pytest.approx(0.0, abs=1e-12) and r["significant"]
    assert r["ci_low"] == pytest.approx(0.1) and r["ci_high"] == pytest.approx(0.1)


# --- randomization ---------------------------------------------------------------------------


def test_signflip_close_to_exact_enumeration():
    rng = np.random.default_rng(3)
    d = np.round(rng.normal(0.6, 1.0, 12), 3)
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=d.size)))
    stat = np.abs(signs @ d)
    exact = np.mean(stat >= abs(d.sum()) - 1e-12)  # includes the identity vector
    R = 40000
    p = signflip_pvalues(d[:, None], R, np.random.default_rng(0))[0]
    se = np.sqrt(exact * (1 - exact) / R)
    assert 0.02 < exact < 0.5  # a case where the p-value is informative
    assert abs(p - exact) < 4 * se + 1.0 / R


def test_signflip_exact_ties_count():
    # |sum| can only take a few values; the observed one is tied by the all-flip vector and
    # others, so a strict ">" would give a visibly smaller p than the exact answer.
    d = np.array([1.0, 1.0, 1.0, -1.0, 1.0, 0.1 + 0.2, -0.3])
    signs = np.array(list(itertools.product([-1.0, 1.0], repeat=d.size)))
    exact = np.mean(np.abs(signs @ d) >= abs(d.sum()) - 1e-12)
    p = signflip_pvalues(d[:, None], 50000, np.random.default_rng(1))[0]
    assert abs(p - exact) < 0.01


def test_randomization_strong_effect_gives_minimum_p():
    rng = np.random.default_rng(0)
    n = 200
    base = pd.DataFrame({"user_id": np.arange(n), "m": rng.random(n) * 0.5})
    run = base.assign(m=base["m"] + 0.2 + rng.random(n) * 0.01)
    R = 10000
    r = compare({"b": base, "r": run}, "b", test="randomization", n_resamples=R)[0]
    assert r["p"] == 1.0 / (1 + R)


def test_randomization_multi_chunk_and_seeded():
    # 6,000 users: sign vectors come in several chunks; result deterministic per seed.
    runs = _runs(n=6000, shifts={"base": 0.0, "a": 0.004}, seed=5)
    r1 = compare(runs, "base", metrics=["recall@10"], test="randomization", n_resamples=2000, seed=7)[0]
    r2 = compare(runs, "base", metrics=["recall@10"], test="randomization", n_resamples=2000, seed=7)[0]
    t = compare(runs, "base", metrics=["recall@10"], test="t", n_resamples=200)[0]
    assert r1 == r2
    assert 0.05 < t["p"] < 0.95  # an informative case, not both ≈ 0
    assert abs(r1["p"] - t["p"]) < 0.03  # large n: the permutation and t p-values agree


# --- bootstrap -------------------------------------------------------------------------------


def test_bootstrap_ci_covers_truth_at_nominal_rate():
    rng = np.random.default_rng(11)
    truth, covered, sims = 0.05, 0, 150
    for s in range(sims):
        n = 200
        base = rng.random(n) * 0.4
        run = base + truth + rng.normal(0, 0.2, n)
        r = compare(
            {"b": pd.DataFrame({"user_id": range(n), "m": base}), "r": pd.DataFrame({"user_id": range(n), "m": run})},
            "b",
            test="bootstrap",
            n_resamples=1000,
            seed=s,
        )[0]
        covered += r["ci_low"] <= truth <= r["ci_high"]
    assert 0.88 <= covered / sims <= 0.99


def test_bootstrap_p_agrees_with_t_on_large_sample_and_is_minimal_for_strong_effect():
    rng = np.random.default_rng(2)
    n = 4000
    base = rng.random(n)
    z = rng.normal(0.0, 0.3, n)
    run = base + (z - z.mean() + 0.012)  # mean difference exactly 0.012: t ≈ 2.5, p ≈ 0.01
    runs = {"b": pd.DataFrame({"user_id": range(n), "m": base}), "r": pd.DataFrame({"user_id": range(n), "m": run})}
    pb = compare(runs, "b", test="bootstrap", n_resamples=10000)[0]["p"]
    pt = compare(runs, "b", test="t", n_resamples=100)[0]["p"]
    assert 0.001 < pt < 0.2 and abs(pb - pt) < 0.015
    strong = {"b": runs["b"], "r": runs["b"].assign(m=base + 0.5 + rng.random(n) * 0.01)}
    assert compare(strong, "b", test="bootstrap", n_resamples=5000)[0]["p"] == 1.0 / 5001


def test_bootstrap_means_match_explicit_resampling():
    v = np.random.default_rng(0).random((50, 3))
    got = bootstrap_means(v, 7, np.random.default_rng(42))
    rng = np.random.default_rng(42)
    idx = rng.integers(0, 50, size=(7, 50))
    assert np.allclose(got, v[idx].mean(axis=1), atol=1e-14)


def test_relative_improvement_nan_when_baseline_zero():
    base = pd.DataFrame({"user_id": range(20), "m": np.zeros(20)})
    run = base.assign(m=np.linspace(0, 1, 20))
    r = compare({"b": base, "r": run}, "b", n_resamples=200)[0]
    assert np.isnan(r["rel_improvement"]) and np.isnan(r["rel_ci_low"]) and np.isnan(r["rel_ci_high"])


# --- corrections -----------------------------------------------------------------------------


def test_corrections_by_hand():
    p = [0.01, 0.04, 0.03, 0.005]
    assert np.allclose(adjust_pvalues(p, "bonferroni"), [0.04, 0.16, 0.12, 0.02])
    # Holm: sorted 0.005·4, 0.01·3, 0.03·2, 0.04·1 → 0.02, 0.03, 0.06, max(0.04, 0.06)
    assert np.allclose(adjust_pvalues(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    # BH: m·p/j over sorted = 0.02, 0.02, 0.04, 0.04, then running min from the top.
    assert np.allclose(adjust_pvalues(p, "bh"), [0.02, 0.04, 0.04, 0.02])
    assert np.allclose(adjust_pvalues(p, "none"), p)
    assert np.allclose(adjust_pvalues([0.5, 0.9], "bonferroni"), [1.0, 1.0])
    assert adjust_pvalues([], "holm").size == 0


def _holm_loop(p):
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def test_corrections_against_scipy_and_loop():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p = rng.random(int(rng.integers(1, 40))) ** 3
        assert np.allclose(adjust_pvalues(p, "bh"), sps.false_discovery_control(p, method="bh"), atol=1e-15)
        assert np.allclose(adjust_pvalues(p, "holm"), _holm_loop(list(p)), atol=1e-15)


def test_unknown_names_list_allowed():
    runs = _runs(n=20)
    with pytest.raises(ValueError, match="allowed: auto, mixed, t, wilcoxon, randomization, bootstrap"):
        compare(runs, "base", test="mannwhitney")
    with pytest.raises(ValueError, match="allowed: holm, bonferroni, bh, none"):
        compare(runs, "base", correction="fdr")
    with pytest.raises(ValueError, match="allowed"):
        adjust_pvalues([0.1], "sidak")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        adjust_pvalues([0.1, float("nan")], "holm")
    assert CORRECTIONS == ("holm", "bonferroni", "bh", "none")


@pytest.mark.parametrize("correction", CORRECTIONS)
def test_family_is_every_comparison_in_the_call(correction):
    runs = _runs(n=200, shifts={"base": 0.0, "a": 0.02, "b": 0.04, "c": -0.01})
    res = compare(runs, "base", test="t", correction=correction, alpha=0.05, n_resamples=200)
    assert len(res) == 6
    expected = adjust_pvalues([r["p"] for r in res], correction)
    for r, e in zip(res, expected):
        assert r["p_adjusted"] == pytest.approx(e, abs=1e-15)
        assert r["significant"] == (e <= 0.05)


# --- alignment, determinism, errors ----------------------------------------------------------


def test_row_order_and_other_runs_do_not_change_a_comparison():
    runs = _runs()
    full = compare(runs, "base", test="bootstrap", n_resamples=2000, seed=3)
    shuffled = {k: v.sample(frac=1.0, random_state=9) for k, v in runs.items()}
    only_a = compare({"base": shuffled["base"], "a": shuffled["a"]}, "base", test="bootstrap", n_resamples=2000, seed=3)
    for key in ("p", "ci_low", "ci_high", "rel_ci_low", "rel_ci_high", "mean_diff", "effect_size"):
        assert only_a[0][key] == pytest.approx(full[0][key], abs=1e-12)
    other_seed = compare(runs, "base", test="bootstrap", n_resamples=2000, seed=4)
    assert other_seed[0]["ci_low"] != full[0]["ci_low"]


def test_runs_subset_and_baseline_skipped():
    runs = _runs()
    res = compare(runs, "base", runs=["b", "base"], metrics=["ndcg@10"], n_resamples=100)
    assert [(r["run"], r["metric"]) for r in res] == [("b", "ndcg@10")]
    assert compare({"base": runs["base"]}, "base") == []


def test_different_user_sets_are_named():
    runs = _runs(n=50)
    runs["a"] = runs["a"].iloc[3:]
    with pytest.raises(ValueError, match=r"run 'a' .* 3 user\(s\) differ"):
        compare(runs, "base")
    runs = _runs(n=50)
    runs["b"] = pd.concat([runs["b"], runs["b"].iloc[:2].assign(user_id=[-1, -2])])
    with pytest.raises(ValueError, match=r"run 'b' .* 2 user\(s\) differ \(0 missing from the run, 2 not in"):
        compare(runs, "base")


def test_bad_inputs():
    runs = _runs(n=30)
    with pytest.raises(ValueError, match="duplicate"):
        compare({**runs, "a": pd.concat([runs["a"], runs["a"].iloc[:1]])}, "base")
    with pytest.raises(ValueError, match="lacks metric"):
        compare(runs, "base", metrics=["mrr@10"])
    with pytest.raises(ValueError, match="non-finite"):
        bad = runs["a"].copy()
        bad.loc[bad.index[0], "ndcg@10"] = np.nan
        compare({**runs, "a": bad}, "base")
    with pytest.raises(ValueError, match="baseline 'zzz'"):
        compare(runs, "zzz")
    with pytest.raises(ValueError, match="unknown run"):
        compare(runs, "base", runs=["nope"])
    with pytest.raises(ValueError, match="at least 2 users"):
        compare({k: v.iloc[:1] for k, v in runs.items() if k == "base"} | {"a": runs["base"].iloc[:1]}, "base")


def test_results_are_json_serialisable():
    res = compare(_runs(n=40), "base", test="wilcoxon", n_resamples=100)
    back = json.loads(json.dumps(res))
    assert back[0]["metric"] == "recall@10" and isinstance(back[0]["significant"], bool)


# --- seeds -----------------------------------------------------------------------------------


def test_aggregate_seeds_means_and_spread():
    rng = np.random.default_rng(0)
    users = np.arange(30)
    seeds = [
        pd.DataFrame({"user_id": rng.permutation(users), "recall@10": rng.random(30), "ndcg@10": rng.random(30)})
        for _ in range(3)
    ]
    per_user, spread = aggregate_seeds(seeds)
    assert list(per_user.columns) == ["user_id", "recall@10", "ndcg@10"]
    assert per_user["user_id"].tolist() == users.tolist()
    for m in ("recall@10", "ndcg@10"):
        by_user = [s.set_index("user_id")[m].sort_index().to_numpy() for s in seeds]
        assert np.allclose(per_user[m].to_numpy(), np.mean(by_user, axis=0), atol=1e-15)
        seed_means = [s[m].mean() for s in seeds]
        assert spread[m]["mean"] == pytest.approx(np.mean(seed_means))
        assert spread[m]["std"] == pytest.approx(np.std(seed_means, ddof=1))
        assert spread[m]["min"] == pytest.approx(min(seed_means))
        assert spread[m]["max"] == pytest.approx(max(seed_means))
        assert spread[m]["n_seeds"] == 3
    # The averaged table feeds straight into compare().
    other = per_user.assign(**{"recall@10": per_user["recall@10"] + 0.1})
    assert compare({"avg": per_user, "o": other}, "avg", metrics=["recall@10"], n_resamples=100)[0][
        "mean_diff"
    ] == pytest.approx(0.1)


def test_aggregate_seeds_single_seed_and_errors():
    df = pd.DataFrame({"user_id": [1, 2, 3], "m": [0.1, 0.2, 0.3]})
    per_user, spread = aggregate_seeds([df])
    assert np.isnan(spread["m"]["std"]) and spread["m"]["n_seeds"] == 1
    with pytest.raises(ValueError, match="seed 1 does not hold the same users"):
        aggregate_seeds([df, df.iloc[:2]])
    with pytest.raises(ValueError, match="metric columns"):
        aggregate_seeds([df, df.rename(columns={"m": "x"})])
    with pytest.raises(ValueError, match="at least one"):
        aggregate_seeds([])


@pytest.mark.slow
def test_perf_script_small_runs(capsys):
    from benchmark.perf import stats_resampling

    assert stats_resampling.main(["--small"]) == 0
    out = capsys.readouterr().out
    assert "scipy.permutation_test" in out and "speed-up" in out and "peak traced memory" in out
