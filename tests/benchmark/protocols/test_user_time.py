"""The per-user temporal ratio split (``user-time``): recipe against a plain per-user reference,
its leakage check, determinism, and the dataset config option."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmark.configuration import from_dict
from benchmark.prepare.config import DatasetConfig
from benchmark.protocols import PROTOCOLS, LeakageError, check_leakage, make_split
from benchmark.split import Split


def _generated(n_rows: int = 3000, n_users: int = 150, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        {
            "user": [f"U{x:04d}" for x in rng.zipf(1.3, n_rows) % n_users],
            "item": [f"I{x:04d}" for x in rng.integers(0, 300, n_rows)],
            "rating": 1.0,
            "timestamp": rng.integers(0, 500, n_rows),  # many ties
        }
    )
    return df.drop_duplicates(["user", "item"]).reset_index(drop=True)


def _reference(df: pd.DataFrame) -> dict[tuple[str, str], str]:
    """User by user: sort by (timestamp, item id), MMRec's 8:1:1 sizes, earliest train."""
    out = {}
    for user, rows in df.groupby("user"):
        rows = rows.sort_values(["timestamp", "item"])
        n = len(rows)
        if n == 1:
            sizes = (1, 0, 0)
        elif n < 10:
            sizes = (n - 2, 1, 1)
        else:
            vt = int(n * 0.2)
            sizes = (n - vt, vt // 2, vt - vt // 2)
        labels = ["train"] * sizes[0] + ["valid"] * sizes[1] + ["test"] * sizes[2]
        out.update({(user, item): lab for item, lab in zip(rows["item"], labels)})
    return out


def test_user_time_matches_the_per_user_reference_and_passes_its_leakage_check():
    df = _generated()
    split = make_split(df, None, "user-time", seed=5)
    got = {
        (u, i): part
        for part in ("train", "valid", "test")
        for u, i in zip(split.part(part)["orig_user_id"], split.part(part)["orig_item_id"])
    }
    assert got == _reference(df)
    report = check_leakage(split)
    assert report["temporal"]["users_late_train"] == 0 and report["temporal"]["users_checked"] > 0
    assert split.params["tie_break"] == "item_id" and split.params["stats"]["single_row_users"] >= 0
    # deterministic: another seed and shuffled rows give the same parts
    again = make_split(df.sample(frac=1, random_state=1), None, "user-time", seed=9)
    pd.testing.assert_frame_equal(again.test[["user_id", "item_id"]], split.test[["user_id", "item_id"]])
    # the same part sizes per user as the random mmrec protocol: only the order differs
    mm = make_split(df, None, "mmrec", seed=0)
    for part in ("train", "valid", "test"):
        assert split.part(part).groupby("user_id").size().equals(mm.part(part).groupby("user_id").size())


def test_user_time_leakage_check_and_refusals():
    base = pd.DataFrame({"user": ["a", "a", "a"], "item": ["x", "y", "z"], "rating": 1.0, "timestamp": [1, 2, 3]})
    late = {"train": base.iloc[[2]], "valid": base.iloc[[0]], "test": base.iloc[[1]]}
    with pytest.raises(LeakageError, match="later than their held-out"):
        check_leakage(Split.from_parts(late, None, "user-time"))
    with pytest.raises(ValueError, match="protocol 'user-time' needs one interaction per"):
        make_split(pd.concat([base, base.iloc[[0]]]), None, "user-time")
    with pytest.raises(ValueError, match="allowed: valid_test_frac, small_user_threshold"):
        make_split(base, None, "user-time", valid_frac=0.1)


def test_user_time_is_a_dataset_config_protocol():
    assert "user-time" in PROTOCOLS
    ds = from_dict(DatasetConfig, {"name": "demo", "source": "demo", "protocol": "user-time"})
    assert ds.protocol == "user-time" and ds.split_settings().seed == 0
