"""The out-of-core engine (DuckDB) writes exactly the split the in-memory pandas pipeline
writes: same files, same fingerprint, same ``summary.json`` (but for the time taken) — on
generated inputs of every shape each protocol, dedupe rule and filter can meet, and on the real
release samples. The pandas pipeline (:func:`benchmark.prepare.files.prepare_files`) is the
reference."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fixtures.amazon_files import (
    Row,
    item_ids,
    make_items,
    user_ids,
    write_meta_2023,
    write_ratings_2018,
    write_reviews_2018,
    write_reviews_2023,
)

from benchmark.errors import ConfigError
from benchmark.prepare import DatasetConfig, dataset_from_mapping
from benchmark.prepare.engine import prepare_files_out_of_core
from benchmark.prepare.files import prepare_files
from benchmark.split import Split


def messy_rows(n: int = 2500, seed: int = 0) -> list[Row]:
    """Power-law users and items, repeat pairs, timestamp ties within a user, users with one or
    two rows, ids whose byte order differs from their case-folded order."""
    rng = np.random.default_rng(seed)
    users = user_ids(260, seed) + ["a-lower", "Zeta", "Émile", "AB"]
    items = item_ids(120, seed + 1) + ["b0lower", "B0ÉCLAIR"]
    u = np.minimum(rng.zipf(1.3, n) - 1, len(users) - 1)
    i = np.minimum(rng.zipf(1.2, n) - 1, len(items) - 1)
    ts = 1_500_000_000 + rng.integers(0, 400, n) * 3600  # few distinct hours: many ties
    r = rng.integers(1, 6, n).astype(float)
    return [Row(users[a], items[b], float(c), int(t)) for a, b, c, t in zip(u, i, r, ts)]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("identity")
    rows = messy_rows()
    reviews = write_reviews_2023(tmp / "Cat.jsonl.gz", rows)
    # two bad lines: counted in the read report both pipelines record
    with open(tmp / "Cat_bad.jsonl", "w", encoding="utf-8") as fh:
        fh.write(Path(reviews).read_bytes().decode("latin-1")[:0])
    lines = [
        json.dumps({"user_id": r.user, "parent_asin": r.item, "rating": r.rating, "timestamp": r.ts * 1000})
        for r in rows
    ]
    lines.insert(7, "{not json")
    lines.insert(100, json.dumps({"user_id": "", "parent_asin": "B0X", "rating": 3.0, "timestamp": 1}))
    (tmp / "Cat_bad.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = sorted({r.item for r in rows})
    meta = write_meta_2023(tmp / "meta_Cat.jsonl", make_items(items[: len(items) * 3 // 4], seed=3))
    return {
        "reviews": Path(reviews),
        "bad": tmp / "Cat_bad.jsonl",
        "meta": Path(meta),
        "r2018": Path(write_reviews_2018(tmp / "Cat_2018.json.gz", rows)),
        "csv2018": Path(write_ratings_2018(tmp / "Cat.csv", rows)),
    }


def assert_same_split(ds: DatasetConfig, tmp: Path) -> dict[str, Any]:
    """Run both pipelines; every file of the two split folders must hold the same data (or
    both must fail with the same message)."""
    try:
        ref = prepare_files(ds, tmp / "ref")
    except (ConfigError, ValueError) as exc:
        with pytest.raises(type(exc)) as eng_error:
            prepare_files_out_of_core(ds, tmp / "eng")
        assert str(eng_error.value) == str(exc)
        return {}
    fp = prepare_files_out_of_core(ds, tmp / "eng", threads=2)
    assert fp == ref.fingerprint
    eng = Split.load(tmp / "eng")  # re-computes the fingerprint from the files
    for name in ("train", "valid", "test", "users", "items", "interactions"):
        a = pd.read_parquet(tmp / "ref" / f"{name}.parquet")
        b = pd.read_parquet(tmp / "eng" / f"{name}.parquet")
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=name)
    assert json.loads((tmp / "ref" / "split.json").read_text()) == json.loads((tmp / "eng" / "split.json").read_text())
    sa, sb = (json.loads((tmp / d / "summary.json").read_text()) for d in ("ref", "eng"))
    assert sa.pop("seconds") >= 0 and sb.pop("seconds") >= 0
    assert set(sb.pop("stage_seconds")) == {"sources", "read", "filter", "split", "write"}
    assert sa == sb
    assert eng.fingerprint == ref.fingerprint
    assert not list((tmp / "eng").glob(".prepare-tmp-*")), "temp folder left behind"
    return sb


CASES: list[dict[str, Any]] = [
    {"protocol": "paper"},
    {"protocol": "paper", "dedupe": "all"},
    {"protocol": "paper", "kcore": 0, "protocol_params": {"min_user_ratings": 2, "holdout_frac": 0.5}},
    {"protocol": "paper", "dedupe": "latest", "image_only": True, "meta": "meta", "split_seed": 7},
    {"protocol": "mmrec"},
    {"protocol": "mmrec", "dedupe": "all", "kcore": 2},
    {"protocol": "mmrec", "kcore": 0, "split_seed": 11, "protocol_params": {"small_user_threshold": 4}},
    {"protocol": "mmrec", "image_only": True, "meta": "meta", "user_kcore": 3, "item_kcore": 2},
    {"protocol": "loo"},
    {"protocol": "loo", "kcore": 0, "dedupe": "latest"},
    {"protocol": "user-time"},
    {"protocol": "user-time", "kcore": 0, "dedupe": "latest", "protocol_params": {"small_user_threshold": 4}},
    {"protocol": "user-time", "kcore": 2, "protocol_params": {"valid_test_frac": 0.5}},
    {"protocol": "global-time", "kcore": 2},
    {"protocol": "global-time", "kcore": 0, "protocol_params": {"valid_frac": 0.25, "test_frac": 0.05}},
    {"protocol": "global-time", "protocol_params": {"valid_start": 1_500_500_000, "test_start": 1_501_000_000}},
    # the options of the Align-MacridVAE recipe, one by one and together
    {"protocol": "mmrec", "date_from": "2017-07-16", "date_before": "2017-07-27"},
    {"protocol": "mmrec", "kcore_passes": 1, "kcore_order": "items-first"},
    {"protocol": "loo", "kcore": 3, "kcore_passes": 2, "kcore_order": "users-first"},
    {"protocol": "paper", "dedupe": "all", "protocol_params": {"repeats": "per-row"}},
    {"protocol": "paper", "protocol_params": {"ids": "permuted"}, "split_seed": 5},
    {
        "protocol": "paper",
        "dedupe": "all",
        "kcore": 5,
        "kcore_passes": 1,
        "kcore_order": "items-first",
        "date_from": "2017-07-18",
        "meta": "meta",
        "protocol_params": {"repeats": "per-row", "ids": "permuted"},
    },
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items() if k != "meta"))
def test_engine_writes_the_reference_split(files, tmp_path, case):
    values = {"source": "files", "release": "2023", "reviews": str(files["reviews"]), **case}
    if "meta" in case:
        values["meta"] = str(files["meta"])
    assert_same_split(dataset_from_mapping(values), tmp_path)


@pytest.mark.parametrize(
    ("release", "key", "protocol"),
    [("2023", "bad", "mmrec"), ("2018", "r2018", "paper"), ("2018", "csv2018", "loo")],
)
def test_every_layout_and_its_read_report(files, tmp_path, release, key, protocol):
    ds = dataset_from_mapping({"source": "files", "release": release, "reviews": str(files[key]), "protocol": protocol})
    summary = assert_same_split(ds, tmp_path)
    if key == "bad":
        assert summary["read_reports"]["reviews"]["counts"] == {"empty_id": 1, "malformed": 1}


def test_same_errors_as_the_reference(files, tmp_path):
    base = {"source": "files", "release": "2023", "reviews": str(files["reviews"])}
    for values, error in (
        ({"protocol": "loo", "dedupe": "all"}, ValueError),  # repeats refused by a temporal protocol
        ({"protocol": "global-time", "protocol_params": {"valid_frac": 0.7, "test_frac": 0.3}}, ValueError),
        ({"protocol": "mmrec", "kcore": 400}, ConfigError),  # nothing left after the k-core
        ({"protocol": "paper", "protocol_params": {"holdout": 0.3}}, ValueError),
    ):
        ds = dataset_from_mapping({**base, **values})
        with pytest.raises(error) as ref:
            prepare_files(ds, tmp_path / "ref")
        with pytest.raises(error) as eng:
            prepare_files_out_of_core(ds, tmp_path / "eng")
        assert str(eng.value) == str(ref.value)
        assert not (tmp_path / "eng" / "split.json").exists()
        assert not list((tmp_path / "eng").glob(".prepare-tmp-*")), "temp folder left after a failure"


def test_a_small_budget_spills_and_gives_the_same_split(files, tmp_path):
    ds = dataset_from_mapping(
        {"source": "files", "release": "2023", "reviews": str(files["reviews"]), "protocol": "paper"}
    )
    assert_same_split(dataclasses.replace(ds, memory_budget="256MiB"), tmp_path)


@pytest.mark.parametrize("held_rows", [0, 570], ids=["never-held", "held-after-the-first-steps"])
@pytest.mark.parametrize("kcore", [{"kcore": 3}, {"kcore": 5, "kcore_passes": 2, "kcore_order": "items-first"}])
def test_kcore_streamed_or_held_gives_the_same_split(files, tmp_path, monkeypatch, held_rows, kcore):
    """The k-core holds the surviving codes only once they fit its share of the budget: with no
    room (every step streams the table) and with room for 570 rows (the ~800 deduplicated rows
    are streamed first, the survivors held later) the split is still the reference one."""
    from benchmark.prepare.engine import filters

    real_init, real_count = filters._AliveRows.__init__, filters._AliveRows.count
    held: list[bool] = []

    def capped(self, ws, src, max_rows):
        real_init(self, ws, src, held_rows)

    def count(self, alive):
        out = real_count(self, alive)
        held.append(self.held is not None)
        return out

    monkeypatch.setattr(filters._AliveRows, "__init__", capped)
    monkeypatch.setattr(filters._AliveRows, "count", count)
    ds = dataset_from_mapping(
        {"source": "files", "release": "2023", "reviews": str(files["reviews"]), "protocol": "mmrec", **kcore}
    )
    assert_same_split(ds, tmp_path)
    assert held[0] is False and held[-1] is (held_rows > 0)  # both ways were taken


REAL = [
    ("2018-AMAZON_FASHION/AMAZON_FASHION_5.json.gz", "2018", None),
    ("2018-All_Beauty/All_Beauty_5.json.gz", "2018", None),
    ("2018-Appliances/Appliances_5.json.gz", "2018", None),
    ("2018-Gift_Cards/Gift_Cards_5.json.gz", "2018", "2018-Gift_Cards/meta_Gift_Cards.json.gz"),
    ("2018-Magazine_Subscriptions/Magazine_Subscriptions.csv", "2018", None),
    (
        "2018-Magazine_Subscriptions/Magazine_Subscriptions_5.json.gz",
        "2018",
        "2018-Magazine_Subscriptions/meta_Magazine_Subscriptions.json.gz",
    ),
    ("2023-All_Beauty/5core/rating_only/All_Beauty.csv", "2023", None),
]


@pytest.mark.realdata
@pytest.mark.parametrize(
    ("reviews", "release", "meta"),
    REAL,
    ids=[r[0].split("/")[0] + "-" + r[0].rsplit(".", 2)[0].split("/")[-1] for r in REAL],
)
def test_real_files_give_the_reference_split(shared_data, tmp_path, reviews, release, meta):
    for k, protocol in enumerate(("paper", "mmrec", "loo", "global-time")):
        values = {"source": "files", "release": release, "reviews": str(shared_data / reviews), "protocol": protocol}
        if meta:
            values |= {"meta": str(shared_data / meta), "image_only": protocol == "mmrec"}
        if protocol == "loo":
            values["kcore"] = 0
        assert_same_split(dataset_from_mapping(values), tmp_path / str(k))
