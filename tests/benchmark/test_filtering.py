"""Dedupe, iterative k-core and the image filter, checked against plain-Python references."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmark.filtering import KCORE_ORDERS, dedupe, filter_items_with_image, kcore, n_duplicate_pairs
from benchmark.split import empty_catalogue


def _frame(rows: list[tuple[str, str, float, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])


def _naive_kcore(rows: list[tuple], uk: int, ik: int) -> list[tuple]:
    """Textbook fixed point, one row at a time."""
    rows = list(rows)
    while True:
        uc = Counter(r[0] for r in rows)
        ic = Counter(r[1] for r in rows)
        kept = [r for r in rows if (uk <= 1 or uc[r[0]] >= uk) and (ik <= 1 or ic[r[1]] >= ik)]
        if len(kept) == len(rows):
            return kept
        rows = kept


def test_dedupe_earliest_latest_all_with_file_order_ties():
    df = _frame(
        [
            ("a", "x", 1.0, 30),
            ("a", "x", 2.0, 10),
            ("b", "y", 3.0, 5),
            ("a", "x", 4.0, 10),
            ("a", "x", 5.0, 30),
            ("b", "z", 1.0, 7),
        ]
    )
    out, n = dedupe(df)  # earliest is the default
    assert n == 3
    assert out["rating"].tolist() == [2.0, 3.0, 1.0]  # ts 10 tie: the first row in the file wins; input order kept
    out, n = dedupe(df, keep="latest")
    assert n == 3
    assert out["rating"].tolist() == [1.0, 3.0, 1.0]  # ts 30 tie: first in file
    out, n = dedupe(df, keep="all")
    assert n == 0 and len(out) == 6
    assert n_duplicate_pairs(df) == 3
    with pytest.raises(ValueError, match="allowed: earliest, latest, all"):
        dedupe(df, keep="first")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4), st.integers(0, 3)), max_size=40),
    st.sampled_from(["earliest", "latest"]),
)
def test_dedupe_matches_pandas_reference(rows, keep):
    df = _frame([(f"u{u}", f"i{i}", float(k), t) for k, (u, i, t) in enumerate(rows)])
    out, n = dedupe(df, keep=keep)
    ref = (
        df.assign(_pos=range(len(df)))
        .sort_values(["timestamp", "_pos"], ascending=[keep == "earliest", True], kind="stable")
        .drop_duplicates(["user", "item"], keep="first")
        .sort_values("_pos")
    )
    assert out["rating"].tolist() == ref["rating"].tolist()
    assert n == len(df) - len(ref)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 7), st.integers(0, 7)), max_size=80), st.integers(0, 4), st.integers(0, 4))
def test_kcore_equals_naive_fixed_point(pairs, uk, ik):
    rows = [(f"u{u}", f"i{i}", 1.0, k) for k, (u, i) in enumerate(pairs)]
    out, stats = kcore(_frame(rows), user_k=uk, item_k=ik)
    expected = _naive_kcore(rows, uk, ik)
    assert list(out.itertuples(index=False, name=None)) == expected  # same rows, same order
    assert stats.rows_out == len(expected)
    assert sum(it.rows_removed for it in stats.iterations) == len(rows) - len(expected)
    if stats.iterations:
        assert stats.iterations[-1].rows_left == len(expected)
        assert stats.users_out == len({r[0] for r in expected})
        assert stats.items_out == len({r[1] for r in expected})


def test_kcore_needs_several_passes_and_sides_are_separate():
    # u3 has 2 rows; removing it drops item c below 2, which drops u2 below 2, ...
    rows = [
        ("u1", "a", 1, 0),
        ("u1", "b", 1, 1),
        ("u2", "b", 1, 2),
        ("u2", "c", 1, 3),
        ("u3", "c", 1, 4),
        ("u4", "a", 1, 5),
        ("u4", "b", 1, 6),
        ("u1", "d", 1, 7),
    ]
    out, stats = kcore(_frame(rows), user_k=2, item_k=2)
    assert len(stats.iterations) >= 2
    assert set(out["user"]) == {"u1", "u4"} and set(out["item"]) == {"a", "b"}
    # items side disabled: only users with < 2 rows go, in a single pass
    out_u, stats_u = kcore(_frame(rows), user_k=2, item_k=0)
    assert "u3" not in set(out_u["user"]) and len(out_u) == 7 and len(stats_u.iterations) == 1
    out_none, stats_none = kcore(_frame(rows), user_k=0, item_k=0)
    assert len(out_none) == len(rows) and stats_none.iterations == []
    with pytest.raises(ValueError, match="user_k"):
        kcore(_frame(rows), user_k=-1)


def test_kcore_large_input_is_vectorised():
    rng = np.random.default_rng(0)
    n = 300_000
    df = pd.DataFrame(
        {
            "user": rng.zipf(1.6, n).astype(str),
            "item": rng.zipf(1.6, n).astype(str),
            "rating": 1.0,
            "timestamp": np.arange(n),
        }
    )
    out, stats = kcore(df, 5, 5)
    assert out.groupby("user").size().min() >= 5 and out.groupby("item").size().min() >= 5
    assert stats.rows_out == len(out) > 0


def test_image_filter_counts():
    df = _frame([("u", "a", 1, 0), ("u", "b", 1, 1), ("v", "c", 1, 2), ("v", "a", 1, 3), ("w", "d", 1, 4)])
    cat = empty_catalogue(["a", "b", "c"])
    cat["image_url"] = ["http://x/a.jpg", None, "  "]
    out, counts = filter_items_with_image(df, cat)
    assert out["item"].tolist() == ["a", "a"]
    assert counts == {"rows_removed": 3, "items_removed": 3, "items_without_meta": 1}
    with pytest.raises(ValueError, match="image_url"):
        filter_items_with_image(df, cat.drop(columns="image_url"))


def _graph(edges: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": [u for u, _ in edges],
            "item": [i for _, i in edges],
            "rating": 1.0,
            "timestamp": range(len(edges)),
        }
    )


def test_kcore_passes_and_order():
    """k = 2 on a chain where each removal exposes the next: one pass in either order stops
    early (and says what is left below k); repeated passes reach the same core in every order."""
    edges = [("u1", "a"), ("u1", "b"), ("u2", "b"), ("u2", "c"), ("u3", "c"), ("u3", "d"), ("u4", "a"), ("u4", "b")]
    df = _graph(edges)
    full, stats = kcore(df, 2, 2)
    assert stats.users_below_k == stats.items_below_k == 0 and stats.passes is None
    for order in KCORE_ORDERS:
        again, _ = kcore(df, 2, 2, order=order)
        pd.testing.assert_frame_equal(again, full)
    items_first, s_items = kcore(df, 2, 2, passes=1, order="items-first")
    # items a, b, c have >= 2 rows, d has 1: d goes; then u3 has 1 row left and goes
    assert sorted(set(items_first["user"])) == ["u1", "u2", "u4"]
    assert s_items.items_below_k == 1  # c is left with u2 only
    users_first, s_users = kcore(df, 2, 2, passes=1, order="users-first")
    # every user has 2 rows: nobody goes; then d (1 row) goes: u3 is left with one row
    assert sorted(set(users_first["user"])) == ["u1", "u2", "u3", "u4"] and s_users.users_below_k == 1
    simultaneous, _ = kcore(df, 2, 2, passes=1)
    assert len(simultaneous) == len(df) - 1
    with pytest.raises(ValueError, match="passes must be an integer >= 1"):
        kcore(df, 2, 2, passes=0)
    with pytest.raises(ValueError, match="order 'sideways' is not allowed"):
        kcore(df, 2, 2, order="sideways")


def test_kcore_counts_repeat_rows_like_sql_count():
    df = _graph([("u1", "a")] * 3 + [("u2", "a")])
    out, _ = kcore(df, user_k=3, item_k=0)
    assert out["user"].tolist() == ["u1"] * 3
