"""Split protocols: exact recipes, leakage checks and property tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark.protocols import LeakageError, check_leakage, make_split
from benchmark.split import PARTS, Split


def _generated(
    n_rows: int = 3000, n_users: int = 300, n_items: int = 200, seed: int = 1, unique: bool = True
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "user": [f"U{x:04d}" for x in rng.zipf(1.4, n_rows) % n_users],
            "item": [f"I{x:04d}" for x in rng.integers(0, n_items, n_rows)],
            "rating": rng.integers(1, 6, n_rows).astype("float32"),
            "timestamp": rng.integers(1_500_000_000, 1_500_100_000, n_rows),
        }
    )
    return df.drop_duplicates(["user", "item"]).reset_index(drop=True) if unique else df


def _triples(df: pd.DataFrame, user: str = "user", item: str = "item") -> set[tuple[str, str, int]]:
    return set(zip(df[user].astype(str), df[item].astype(str), df["timestamp"].astype(int)))


def _split_triples(split: Split, part: str) -> set[tuple[str, str, int]]:
    return _triples(split.part(part), "orig_user_id", "orig_item_id")


# ---------------------------------------------------------------------------------- paper
def test_paper_matches_independent_recipe(tmp_path):
    path = tmp_path / "ratings.csv"
    _generated(seed=7).to_csv(path, index=False)
    seed = 20230219

    # The recipe, written independently in plain pandas on the file as read.
    df = pd.read_csv(path, dtype={"user": str, "item": str})
    counts = df["user"].value_counts()
    df = df[df["user"].isin(counts[counts >= 5].index)]
    df = df.assign(r=np.random.default_rng(seed).random(len(df)))
    rank = df.groupby("user")["r"].rank(pct=True)
    held, train = df[rank <= 0.4], df[rank > 0.4]
    held = held.assign(r=np.random.default_rng(seed).random(len(held)))
    rank2 = held.groupby("user")["r"].rank(pct=True)
    expected = {"train": train, "valid": held[rank2 > 0.5], "test": held[rank2 <= 0.5]}

    split = make_split(pd.read_csv(path, dtype={"user": str, "item": str}), None, "paper")  # default seed
    assert split.params["seed"] == seed
    for part in PARTS:
        assert _split_triples(split, part) == _triples(expected[part]), part
        assert len(split.part(part)) == len(expected[part])
    assert split.params["stats"]["users_below_min_ratings"] == int((counts < 5).sum())
    assert len(split.interactions) == sum(len(v) for v in expected.values())


def test_paper_ratio_is_about_60_20_20():
    split = make_split(_generated(20000, 400, 2000), None, "paper", seed=3)
    n = {p: len(split.part(p)) for p in PARTS}
    total = sum(n.values())
    assert abs(n["train"] / total - 0.6) < 0.03
    assert abs(n["valid"] / total - 0.2) < 0.03 and abs(n["test"] / total - 0.2) < 0.03


# ---------------------------------------------------------------------------------- mmrec
def test_mmrec_per_user_counts_follow_the_rule():
    df = _generated(6000, 200, 3000, seed=2)
    split = make_split(df, None, "mmrec", seed=5)
    per_user = {p: split.part(p).groupby("orig_user_id").size() for p in PARTS}
    for user, n in df.groupby("user").size().items():
        got = [int(per_user[p].get(user, 0)) for p in PARTS]
        if n == 1:
            expected = [1, 0, 0]
        elif n < 10:
            expected = [n - 2, 1, 1]
        else:
            vt = int(n * 0.2)
            expected = [n - vt, vt // 2, vt - vt // 2]
        assert got == expected, (user, n)
    stats = split.params["stats"]
    sizes = df.groupby("user").size()
    assert stats["single_row_users"] == int((sizes == 1).sum())
    assert stats["two_row_users_without_train"] == int((sizes == 2).sum())


# ---------------------------------------------------------------------------------- loo
def test_loo_last_is_test_ties_by_item_id_and_short_users_train_only():
    df = pd.DataFrame(
        [
            ("a", "i3", 5.0, 10),
            ("a", "i1", 5.0, 20),
            ("a", "i9", 5.0, 30),
            ("a", "i2", 5.0, 30),
            ("b", "i1", 4.0, 1),
            ("b", "i2", 4.0, 2),  # only two: stays in train
            ("c", "i5", 3.0, 7),
            ("c", "i4", 3.0, 7),
            ("c", "i6", 3.0, 7),
        ],
        columns=["user", "item", "rating", "timestamp"],
    )
    split = make_split(df, None, "loo")
    test = dict(zip(split.test["orig_user_id"], split.test["orig_item_id"]))
    valid = dict(zip(split.valid["orig_user_id"], split.valid["orig_item_id"]))
    assert test == {"a": "i9", "c": "i6"} and valid == {"a": "i2", "c": "i5"}
    assert set(split.train["orig_user_id"]) == {"a", "b", "c"}
    assert split.params["stats"]["short_users"] == 1
    report = check_leakage(split)
    assert report["ok"] and report["temporal"]["users_late_train"] == 0


def test_temporal_protocols_refuse_repeat_pairs():
    df = _generated(500, 30, 40, unique=False)
    for protocol in ("loo", "global-time"):
        with pytest.raises(ValueError, match="one interaction per"):
            make_split(df, None, protocol)


# ---------------------------------------------------------------------------------- global-time
def test_global_time_fractions_and_cold_counts():
    df = _generated(5000, 300, 400, seed=4)
    split = make_split(df, None, "global-time", valid_frac=0.1, test_frac=0.2)
    cuts = split.params["cuts"]
    t1, t2 = cuts["valid_start"], cuts["test_start"]
    assert split.train["timestamp"].max() < t1 <= split.valid["timestamp"].min()
    assert split.valid["timestamp"].max() < t2 <= split.test["timestamp"].min()
    n = len(df)
    assert abs(len(split.test) - 0.2 * n) <= (df["timestamp"] == t2).sum()
    train_users = set(df.loc[df["timestamp"] < t1, "user"])
    cold_test = set(df.loc[df["timestamp"] >= t2, "user"]) - train_users
    assert split.params["stats"]["cold_users_test"] == len(cold_test)
    assert _split_triples(split, "test") == _triples(df[df["timestamp"] >= t2])


def test_global_time_explicit_cuts_and_bad_params():
    df = _generated(2000, 100, 100, seed=5)
    t1, t2 = 1_500_040_000, 1_500_070_000
    split = make_split(df, None, "global-time", valid_start=t1, test_start=t2)
    assert _split_triples(split, "valid") == _triples(df[(df["timestamp"] >= t1) & (df["timestamp"] < t2)])
    with pytest.raises(ValueError, match="not both"):
        make_split(df, None, "global-time", valid_frac=0.1, valid_start=t1)
    with pytest.raises(ValueError, match="valid_start .* must be <="):
        make_split(df, None, "global-time", valid_start=t2, test_start=t1)


# ---------------------------------------------------------------------------------- errors & checks
def test_unknown_protocol_and_param_are_named():
    df = _generated(200)
    with pytest.raises(ValueError, match="allowed: paper, mmrec, loo, global-time, user-time"):
        make_split(df, None, "random")
    with pytest.raises(ValueError, match="allowed: min_user_ratings"):
        make_split(df, None, "paper", ratio=0.5)


def test_check_leakage_reports_overlap_and_temporal_leaks():
    base = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "rating": 1.0, "timestamp": [1, 2, 3]})
    parts = {"train": base, "valid": base.iloc[[1]], "test": base.iloc[[2]]}
    with pytest.raises(LeakageError, match=r"1 \(user, item\) pairs are in both train and valid.*\('a', 'y'\)"):
        check_leakage(Split.from_parts(parts, None, "paper"))
    everywhere = {"train": base, "valid": base.iloc[[0]], "test": base.iloc[[0, 2]]}
    with pytest.raises(LeakageError) as err:
        check_leakage(Split.from_parts(everywhere, None, "mmrec"))
    assert "2 (user, item) pairs are in both train and test" in str(err.value)
    assert "1 (user, item) pairs are in both valid and test" in str(err.value)
    late = {"train": base.iloc[[1]], "valid": base.iloc[[0]], "test": base.iloc[[2]]}
    with pytest.raises(LeakageError, match="later than their held-out"):
        check_leakage(Split.from_parts(late, None, "loo"))
    with pytest.raises(LeakageError, match="train interactions lie outside"):
        check_leakage(Split.from_parts(late, None, "global-time", {"cuts": {"valid_start": 2, "test_start": 3}}))


def test_random_protocols_keep_repeat_pairs_in_one_part():
    df = _generated(4000, 50, 60, seed=9, unique=False)
    assert df.duplicated(["user", "item"]).any()
    for protocol in ("paper", "mmrec"):
        split = make_split(df, None, protocol, seed=1)  # check_leakage ran inside
        assert sum(len(split.part(p)) for p in PARTS) == len(split.interactions)


# ---------------------------------------------------------------------------------- properties
_rows = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 25), st.integers(0, 50)), min_size=1, max_size=150)


def _from_rows(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["u", "i", "timestamp"])
    df = df.drop_duplicates(["u", "i"]).reset_index(drop=True)
    return pd.DataFrame(
        {
            "user": "u" + df["u"].astype(str),
            "item": "i" + df["i"].astype(str),
            "rating": 1.0,
            "timestamp": df["timestamp"],
        }
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_rows, st.sampled_from(["paper", "mmrec", "loo", "global-time", "user-time"]), st.integers(0, 2**32 - 1))
def test_parts_partition_filtered_input_and_are_disjoint(rows, protocol, seed):
    df = _from_rows(rows)
    split = make_split(df, None, protocol, seed=seed)
    kept = df
    if protocol == "paper":
        sizes = df.groupby("user")["user"].transform("size")
        kept = df[sizes >= 5]
    got = [t for p in PARTS for t in zip(split.part(p)["orig_user_id"], split.part(p)["orig_item_id"])]
    assert sorted(got) == sorted(zip(kept["user"], kept["item"]))  # partition: every row once
    pairs = [set(zip(split.part(p)["user_id"], split.part(p)["item_id"])) for p in PARTS]
    assert not (pairs[0] & pairs[1]) and not (pairs[0] & pairs[2]) and not (pairs[1] & pairs[2])


@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["paper", "mmrec"]))
def test_seeds_reproduce_and_differ(seed, protocol):
    df = _generated(1500, 60, 300, seed=11)
    a = make_split(df, None, protocol, seed=seed)
    b = make_split(df, None, protocol, seed=seed)
    c = make_split(df, None, protocol, seed=seed + 1)
    assert a.fingerprint == b.fingerprint
    assert _split_triples(a, "test") == _split_triples(b, "test")
    assert _split_triples(a, "test") != _split_triples(c, "test")
    assert a.fingerprint != c.fingerprint


def _official(parts: dict, variant: str):
    from benchmark.split import Split

    return Split.from_parts(
        {k: pd.DataFrame(v, columns=["user", "item", "rating", "timestamp"]) for k, v in parts.items()},
        None,
        "official",
        {"variant": variant},
    )


def test_official_last_out_split_is_checked_per_user_in_time():
    from benchmark.protocols import LeakageError, check_leakage

    ok = {"train": [("u", "a", 5, 1), ("u", "b", 5, 2)], "valid": [("u", "c", 5, 3)], "test": [("u", "d", 5, 4)]}
    assert check_leakage(_official(ok, "last_out_w_his"))["temporal"]["users_late_train"] == 0
    bad = {"train": [("u", "a", 5, 1), ("u", "b", 5, 9)], "valid": [("u", "c", 5, 3)], "test": [("u", "d", 5, 4)]}
    with pytest.raises(LeakageError, match="later than their held-out"):
        check_leakage(_official(bad, "last_out"))


def test_official_timestamp_split_parts_must_not_overlap_in_time():
    from benchmark.protocols import LeakageError, check_leakage

    ok = {"train": [("u", "a", 5, 1), ("v", "b", 5, 2)], "valid": [("u", "c", 5, 3)], "test": [("v", "d", 5, 4)]}
    assert check_leakage(_official(ok, "timestamp_w_his"))["temporal"]["train_after_valid_start"] == 0
    bad = {"train": [("u", "a", 5, 1), ("v", "b", 5, 5)], "valid": [("u", "c", 5, 3)], "test": [("v", "d", 5, 6)]}
    with pytest.raises(LeakageError, match="train interactions are later than the first valid"):
        check_leakage(_official(bad, "timestamp"))
