"""The ``align-macridvae`` recipe reproduces the paper's data from the raw 2018 review file.

The reference here is written independently from Align-MacridVAE's description of its
pipeline (``igui/Align-MacridVAE-data`` @ 413dba3): reviews go into an SQLite table one row per
line (``process_review_chunk``, with the notebook's ``date.fromtimestamp`` replaced by the UTC
date), ``find_k_core(iterations=1)`` deletes with ``GROUP BY … HAVING COUNT(*) < 5`` (products,
then reviewers), ``reviews_df`` reads the table back, ``generate_unique_ids`` and
``split_train_test_proportion`` (twice) make the split. Our split must equal it row for row,
ids included.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.amazon_files import Row, item_ids, user_ids, write_reviews_2018

from benchmark.configuration import from_dict
from benchmark.data.readers import read_reviews
from benchmark.data.window import DateWindow, filter_date_window, utc_seconds
from benchmark.errors import ConfigError
from benchmark.prepare import DatasetConfig, dataset_from_mapping, load_dataset
from benchmark.prepare.recipes import RECIPE_VALUES, WINDOWS
from benchmark.protocols import LeakageError, make_split

SEED = 20230219
LO, HI = dt.date(2018, 3, 1), dt.date(2018, 10, 1)


def clothing_rows(n: int = 4000, seed: int = 3) -> list[Row]:
    """Reviews around the window (midnight-UTC timestamps, as the 2018 files), with repeated
    (user, item) reviews and users/items near 5 rows, so that one items-first pass differs from
    an iterative k-core and from users-first."""
    rng = np.random.default_rng(seed)
    users, items = user_ids(260, seed), item_ids(150, seed + 1)
    u = (rng.zipf(1.6, n) - 1) % len(users)
    i = (rng.zipf(1.5, n) - 1) % len(items)
    day0 = utc_seconds(dt.date(2018, 2, 20))
    days = rng.integers(0, 235, n)  # 2018-02-20 .. 2018-10-12: both edges inside the range
    days[:40] = 9  # 2018-03-01, the first day kept
    days[40:80] = 223  # 2018-10-01, the first day dropped
    rows = [Row(users[a], items[b], float(rng.integers(1, 6)), day0 + int(d) * 86400) for a, b, d in zip(u, i, days)]
    repeats = [rows[k] for k in rng.choice(n, n // 10, replace=False)]  # a second review of the same pair
    for k, r in zip(rng.choice(n, len(repeats)), repeats):
        rows.insert(int(k), Row(r.user, r.item, r.rating, r.ts + 86400 * int(rng.integers(0, 3))))
    return rows


def notebook_reference(path: Path, lo: dt.date, hi: dt.date, k: int = 5) -> tuple[dict, pd.Series, pd.Series]:
    """Align-MacridVAE's pipeline, re-implemented: SQLite rows, one k-core pass, the split."""
    df, _ = read_reviews(path, "2018")  # every line, in file order
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE review (id INTEGER PRIMARY KEY, asin TEXT, reviewerID TEXT, ts INTEGER)")
    utc_date = [dt.datetime.fromtimestamp(t, tz=dt.timezone.utc).date() for t in df["timestamp"]]
    db.executemany(
        "INSERT INTO review VALUES (?, ?, ?, ?)",
        [
            (line, a, r, int(t))
            for line, (a, r, t, d) in enumerate(zip(df["item"], df["user"], df["timestamp"], utc_date), start=1)
            if lo <= d < hi
        ],
    )
    db.execute(f"DELETE FROM review WHERE asin IN (SELECT asin FROM review GROUP BY asin HAVING COUNT(*) < {k})")
    db.execute(
        "DELETE FROM review WHERE reviewerID IN "
        f"(SELECT reviewerID FROM review GROUP BY reviewerID HAVING COUNT(*) < {k})"
    )
    reviews = pd.read_sql_query("SELECT * FROM review ORDER BY id", db)

    def unique_ids(series: pd.Series) -> pd.Series:
        uniq = series.unique()
        return pd.Series(index=np.random.default_rng(SEED).permutation(uniq), data=range(len(uniq)))

    def proportion(d: pd.DataFrame, test_prop: float) -> tuple[pd.DataFrame, pd.DataFrame]:
        r = d.copy()
        r["rnd"] = np.random.default_rng(SEED).random(size=len(d))
        held = r.groupby("reviewerID")["rnd"].rank(pct=True) <= test_prop
        return d.loc[~held], d.loc[held]

    train, rest = proportion(reviews, 0.4)
    valid, test = proportion(rest, 0.5)
    parts = {"train": train, "valid": valid, "test": test}
    return parts, unique_ids(reviews["reviewerID"]), unique_ids(reviews["asin"])


def counted(df: pd.DataFrame, user: str, item: str) -> Counter:
    return Counter(zip(df[user], df[item]))


@pytest.fixture(scope="module")
def clothing(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("clothing")
    return write_reviews_2018(d / "Clothing_Shoes_and_Jewelry.json.gz", clothing_rows())


def test_recipe_reproduces_the_notebooks_split_row_for_row_ids_included(clothing, tmp_path):
    ds = dataset_from_mapping({"source": "files", "recipe": "align-macridvae", "reviews": str(clothing)})
    split = load_dataset(ds, tmp_path / "split").split
    parts, uids, iids = notebook_reference(clothing, LO, HI)
    assert split.users["orig_user_id"].tolist() == list(uids.sort_values().index)
    assert split.items["orig_item_id"].tolist() == list(iids.sort_values().index)
    for name, ref in parts.items():
        ours = split.part(name)
        assert counted(ours, "orig_user_id", "orig_item_id") == counted(ref, "reviewerID", "asin"), name
        # dense ids are the notebook's numbering
        assert counted(ours, "user_id", "item_id") == Counter(
            zip(uids.loc[ref["reviewerID"]].to_numpy(), iids.loc[ref["asin"]].to_numpy())
        )
    # the data exercises what the recipe decides: repeats in two parts, items left below 5
    assert split.params["stats"]["pairs_in_two_parts"] > 0
    summary = json.loads((tmp_path / "split" / "summary.json").read_text())
    assert summary["stages"]["kcore"]["items_below_k"] > 0
    assert summary["stages"]["kcore"]["order"] == "items-first"
    assert summary["leakage"]["pair_overlap_allowed"]


def test_each_recipe_choice_matters_on_this_data(clothing, tmp_path):
    """Changing any one of the recipe's choices changes the split: the test above would notice."""
    base = {"source": "files", "reviews": str(clothing), "release": "2018", "protocol": "paper"}
    recipe = {k: v for k, v in RECIPE_VALUES["align-macridvae"].items() if k not in ("release", "protocol")}
    recipe |= {"date_from": "2018-03-01", "date_before": "2018-10-01"}
    exact = load_dataset(dataset_from_mapping(base | recipe), tmp_path / "exact").split
    variants = {
        "iterative": {"kcore_passes": None},
        "users-first": {"kcore_order": "users-first"},
        "deduped": {"dedupe": "earliest"},
        "per-pair": {"protocol_params": {"ids": "permuted"}},
        "window a day later": {"date_from": "2018-03-02", "date_before": "2018-10-02"},
    }
    for name, change in variants.items():
        other = load_dataset(dataset_from_mapping(base | recipe | change), tmp_path / name.replace(" ", "_")).split
        assert other.fingerprint != exact.fingerprint, name
        assert counted(other.test, "orig_user_id", "orig_item_id") != counted(
            exact.test, "orig_user_id", "orig_item_id"
        ), name


def test_streaming_window_equals_the_table_stage_and_counts_timezone_sensitive_reviews(clothing):
    window = DateWindow("2018-03-01", "2018-10-01")
    streamed, report = read_reviews(clothing, "2018", window=window)
    everything, _ = read_reviews(clothing, "2018")
    table, counts = filter_date_window(everything, window)
    pd.testing.assert_frame_equal(streamed, table)
    assert report.filters["date_window"] == counts
    assert report.rows_kept == len(streamed) == counts["kept"]
    assert counts["kept"] + counts["before_window"] + counts["after_window"] == len(everything)
    # midnight-UTC stamps: west of UTC every review moves a day earlier, so the reviews dated
    # date_from would leave and those dated date_before would enter; east of UTC nothing moves
    day = pd.to_datetime(everything["timestamp"], unit="s").dt.date
    assert counts["timezone_sensitive"] == {
        "start": {"would_leave": int((day == LO).sum()), "would_enter": 0},
        "end": {"would_leave": 0, "would_enter": int((day == HI).sum())},
    }
    assert counts["timezone_sensitive"]["start"]["would_leave"] >= 40


def test_window_edges_are_utc_dates_and_shifts_count_both_ways():
    lo = utc_seconds(dt.date(2018, 3, 1))
    ts = np.array([lo - 14 * 3600 - 1, lo - 14 * 3600, lo - 1, lo, lo + 12 * 3600 - 1, lo + 12 * 3600])
    df = pd.DataFrame({"user": "u", "item": "i", "rating": 1.0, "timestamp": ts})
    kept, counts = filter_date_window(df, DateWindow("2018-03-01", None))
    assert kept["timestamp"].tolist() == ts[3:].tolist()
    assert counts["timezone_sensitive"]["start"] == {"would_enter": 2, "would_leave": 2}
    assert counts["timezone_sensitive"]["end"] == {"would_enter": 0, "would_leave": 0}  # unbounded
    with pytest.raises(ValueError, match="date window is empty"):
        DateWindow("2018-03-01", "2018-03-01")


def test_recipe_sets_its_values_and_refuses_conflicting_ones(tmp_path):
    ds = from_dict(
        DatasetConfig, {"source": "files", "recipe": "align-macridvae", "reviews": "x/Baby.json.gz", "meta": "m.json"}
    )
    assert (ds.date_from, ds.date_before) == WINDOWS["Baby"]
    assert (ds.protocol, ds.dedupe, ds.kcore_passes, ds.kcore_order) == ("paper", "all", 1, "items-first")
    assert ds.split_settings().user_kcore == ds.split_settings().item_kcore == 5
    again = from_dict(DatasetConfig, ds.to_dict())  # a resolved config validates to itself
    assert again == ds
    bad = [
        ({"kcore_passes": 3}, "kcore_passes: recipe 'align-macridvae' sets it to 1"),
        ({"protocol": "loo"}, "protocol: recipe 'align-macridvae' sets it to 'paper'"),
        ({"kcore": 10}, "kcore: recipe 'align-macridvae' sets it to unset"),
        ({"protocol_params": {"repeats": "per-pair"}}, "protocol_params.repeats"),
        ({"date_from": "2018-01-02"}, "date_from: recipe"),
        ({"reviews": "Baby_5.json.gz"}, "not the 5-core or the ratings CSV"),
        ({"reviews": "Beauty.json.gz"}, "give date_from and date_before"),
        ({"source": "prepared", "path": "p"}, "needs source 'files'"),
    ]
    for change, message in bad:
        values = {"source": "files", "recipe": "align-macridvae", "reviews": "Baby.json.gz"} | change
        with pytest.raises(ConfigError, match=message):
            from_dict(DatasetConfig, values)
    # a category the notebook did not prepare runs with the config's own window
    own = {"source": "files", "recipe": "align-macridvae", "reviews": "Beauty.json.gz", "date_from": "2018-01-01"}
    assert from_dict(DatasetConfig, own).date_from == "2018-01-01"


def test_date_and_kcore_keys_are_checked():
    for values, message in [
        ({"date_from": "March"}, "date_from: 'March' is not a date"),
        ({"date_from": "2018-05-01", "date_before": "2018-04-01"}, "date window is empty"),
        ({"kcore_passes": 0}, "kcore_passes: must be >= 1"),
        ({"kcore_order": "sideways"}, "kcore_order: 'sideways' is not allowed"),
    ]:
        with pytest.raises(ConfigError, match=message):
            from_dict(DatasetConfig, {"source": "files", "release": "2018", "reviews": "r.json"} | values)
    with pytest.raises(ConfigError, match="date_from: source 'prepared' takes its split as given"):
        from_dict(DatasetConfig, {"source": "prepared", "path": "p", "date_from": "2018-01-01"})


def test_per_row_repeats_are_refused_by_the_leakage_check_unless_asked_for():
    rows = pd.DataFrame(
        {
            "user": ["u"] * 12,
            "item": [f"i{k % 6}" for k in range(12)],  # every pair twice
            "rating": 1.0,
            "timestamp": np.arange(12),
        }
    )
    per_pair = make_split(rows, protocol="paper", seed=1)
    assert per_pair.params.get("repeats") is None  # the default is not recorded
    per_row = make_split(rows, protocol="paper", seed=1, repeats="per-row")
    assert per_row.params["repeats"] == "per-row" and per_row.params["stats"]["pairs_in_two_parts"] > 0
    per_row.params["repeats"] = "per-pair"  # the same parts without the recorded rule leak
    from benchmark.protocols import check_leakage

    with pytest.raises(LeakageError, match="pairs are in both"):
        check_leakage(per_row)


def test_data_prepare_recipe_flag_gives_the_same_split(clothing, tmp_path, capsys):
    from benchmark.cli import main
    from benchmark.split import Split

    out = tmp_path / "cli"
    assert main(["data", "prepare", "--recipe", "align-macridvae", "--reviews", str(clothing), "--out", str(out)]) == 0
    by_config = load_dataset(
        dataset_from_mapping({"source": "files", "recipe": "align-macridvae", "reviews": str(clothing)}), tmp_path / "c"
    ).split
    assert Split.load(out).fingerprint == by_config.fingerprint
