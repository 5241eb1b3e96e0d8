"""Raw files → split (``benchmark.prepare``) end to end: generated 2023 files, config
validation, the ``data prepare`` CLI, real 2018 files."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from benchmark.cli import main
from benchmark.errors import ConfigError
from benchmark.io import sha256_file
from benchmark.prepare import dataset_from_mapping, load_dataset
from benchmark.split import PART_COLUMNS, PARTS, Split


def prepare(values: dict) -> Split:
    """The split a ``data prepare --config`` mapping describes (``out`` is where it goes)."""
    values = dict(values)
    out = values.pop("out")
    return load_dataset(dataset_from_mapping({"source": "files", **values}), out).split


def _write_2023(tmp: Path, n: int = 1500, seed: int = 0) -> tuple[Path, Path, pd.DataFrame]:
    """A small Amazon-2023-layout reviews file (ms timestamps, repeats) and its metadata."""
    rng = np.random.default_rng(seed)
    users = [f"AG{x:05d}" for x in rng.integers(0, 120, n)]
    items = [f"B0{x:08d}" for x in rng.integers(0, 60, n)]
    ts_ms = rng.integers(1_600_000_000, 1_600_500_000, n) * 1000 + rng.integers(0, 1000, n)
    ratings = rng.integers(1, 6, n).astype(float)
    reviews = tmp / "All_Beauty.jsonl.gz"
    with gzip.open(reviews, "wt", encoding="utf-8") as fh:
        for u, i, r, t in zip(users, items, ratings, ts_ms):
            fh.write(
                json.dumps(
                    {
                        "rating": r,
                        "title": "ok",
                        "text": "fine",
                        "images": [],
                        "asin": i,
                        "parent_asin": i,
                        "user_id": u,
                        "timestamp": int(t),
                        "helpful_vote": 0,
                        "verified_purchase": True,
                    }
                )
                + "\n"
            )
    meta = tmp / "meta_All_Beauty.jsonl"
    with open(meta, "w", encoding="utf-8") as fh:
        for k in range(60):
            images = (
                []
                if k % 4 == 0
                else [{"thumb": f"http://x/{k}t.jpg", "large": f"http://x/{k}l.jpg", "hi_res": None, "variant": "MAIN"}]
            )
            fh.write(
                json.dumps(
                    {
                        "main_category": "All Beauty",
                        "title": f"Item {k}",
                        "parent_asin": f"B0{k:08d}",
                        "description": ["nice"],
                        "categories": [],
                        "store": "S",
                        "details": {},
                        "images": images,
                    }
                )
                + "\n"
            )
    truth = pd.DataFrame({"user": users, "item": items, "rating": ratings, "timestamp": ts_ms // 1000})
    return reviews, meta, truth


def _expected_after_filters(truth: pd.DataFrame, uk: int, ik: int, image_items: set[str] | None = None) -> pd.DataFrame:
    """Independent reference: stable sort + drop_duplicates, then a plain k-core loop."""
    df = truth.assign(pos=range(len(truth))).sort_values(["timestamp", "pos"], kind="stable")
    df = df.drop_duplicates(["user", "item"], keep="first").sort_values("pos")
    if image_items is not None:
        df = df[df["item"].isin(image_items)]
    while True:
        uc, ic = df["user"].value_counts(), df["item"].value_counts()
        keep = df["user"].map(uc).ge(uk) & df["item"].map(ic).ge(ik)
        if keep.all():
            return df
        df = df[keep]


def test_prepare_writes_the_split_and_counts_each_stage(tmp_path):
    reviews, meta, truth = _write_2023(tmp_path)
    out = tmp_path / "out"
    split = prepare(
        {
            "release": "2023",
            "reviews": reviews,
            "meta": meta,
            "out": out,
            "protocol": "mmrec",
            "seed": 3,
            "image_only": True,
        }
    )
    for name in ("interactions", "items", "train", "valid", "test", "users"):
        assert (out / f"{name}.parquet").is_file()
    train = pd.read_parquet(out / "train.parquet")
    assert list(train.columns) == list(PART_COLUMNS)
    assert train["orig_user_id"].map(type).eq(str).all()

    image_items = {f"B0{k:08d}" for k in range(60) if k % 4}
    expected = _expected_after_filters(truth, 5, 5, image_items)
    got = pd.concat([pd.read_parquet(out / f"{p}.parquet") for p in PARTS])
    assert sorted(zip(got["orig_user_id"], got["orig_item_id"], got["timestamp"])) == sorted(
        zip(expected["user"], expected["item"], expected["timestamp"])
    )
    assert len(pd.read_parquet(out / "interactions.parquet")) == len(expected)

    summary = json.loads((out / "summary.json").read_text())
    n_dups = int(truth.duplicated(["user", "item"]).sum())
    assert summary["stages"]["read"]["rows"] == len(truth)
    assert summary["stages"]["dedupe"] == {
        "rule": "earliest",
        "removed": n_dups,
        "rows": len(truth) - n_dups,
        "users": truth["user"].nunique(),
        "items": truth["item"].nunique(),
    }
    assert summary["stages"]["image_filter"]["items_removed"] == 15
    n_items = expected["item"].nunique()
    assert summary["stages"]["catalogue"] == {
        "items": n_items,
        "with_meta": n_items,
        "without_meta": 0,
        "with_image_url": n_items,
    }
    assert summary["stages"]["kcore"]["rows_out"] == len(expected)
    assert summary["sources"]["reviews"]["sha256"] == sha256_file(reviews)
    assert summary["read_reports"]["reviews"]["lines_read"] == len(truth)
    assert summary["fingerprint"] == split.fingerprint
    assert split.params["filtering"]["sources"]["meta"]["sha256"] == sha256_file(meta)
    loaded = Split.load(out)  # fingerprint verifies
    assert loaded.fingerprint == split.fingerprint
    assert loaded.items["has_meta"].all()


def test_paper_default_filters_users_only_and_is_reproducible(tmp_path):
    reviews, _, truth = _write_2023(tmp_path, seed=1)
    a = prepare({"release": "2023", "reviews": reviews, "protocol": "paper", "out": tmp_path / "a"})
    b = prepare({"release": "2023", "reviews": reviews, "protocol": "paper", "out": tmp_path / "b"})
    assert a.fingerprint == b.fingerprint and a.params["seed"] == 20230219
    expected = _expected_after_filters(truth, 5, 0)
    assert sum(len(a.part(p)) for p in PARTS) == len(expected)
    assert a.params["filtering"]["user_kcore"] == 5 and a.params["filtering"]["item_kcore"] == 0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"release": "2019"}, "release: '2019' is not allowed; allowed values: 2014, 2018, 2023"),
        ({"protocol": "random"}, "allowed values: paper, mmrec, loo, global-time, user-time, official"),
        ({"dedupe": "first"}, "allowed values: earliest, latest, all"),
        ({"kcore": -1}, "kcore: must be an integer >= 0"),
        ({"colour": "red"}, "colour: unknown key; allowed keys here: category, date_before, date_from, dedupe"),
        ({"image_only": True}, "image_only: needs `meta`"),
        ({"protocol": "official"}, "category: required with protocol 'official'"),
        ({"protocol": "official", "category": "All_Beauty"}, "reviews: with protocol 'official' this is the directory"),
        (
            {"protocol": "official", "category": "All_Beauty", "kcore": 5},
            "kcore: source 'files' with protocol official",
        ),
        ({"category": "All_Beauty"}, "category: only for protocol 'official'"),
        ({"reviews": "nope.jsonl"}, "reviews: nope.jsonl does not exist"),
    ],
)
def test_config_errors_name_the_key_and_allowed_values(tmp_path, values, message):
    reviews, _, _ = _write_2023(tmp_path, n=50)
    base = {"release": "2023", "reviews": str(reviews), "out": tmp_path / "o"}
    with pytest.raises(ConfigError) as err:
        prepare({**base, **values})
    assert message in str(err.value)


def test_cli_flags_and_config_file(tmp_path, capsys):
    reviews, meta, _ = _write_2023(tmp_path, seed=2)
    rc = main(
        [
            "data",
            "prepare",
            "--release",
            "2023",
            "--reviews",
            str(reviews),
            "--protocol",
            "global-time",
            "--param",
            "test_frac=0.2",
            "--kcore",
            "3",
            "--out",
            str(tmp_path / "flags"),
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    split = Split.load(tmp_path / "flags")
    assert split.params["test_frac"] == 0.2 and split.params["filtering"]["user_kcore"] == 3
    assert split.fingerprint in printed and f"test  {len(split.test):>10}" in printed

    cfg = tmp_path / "prep.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "release": 2023,
                "reviews": reviews.name,
                "meta": meta.name,
                "out": "cfgout",
                "protocol": "global-time",
                "protocol_params": {"test_frac": 0.2},
                "kcore": 3,
            }
        )
    )
    assert main(["data", "prepare", "--config", str(cfg)]) == 0
    assert Split.load(tmp_path / "cfgout").fingerprint != split.fingerprint  # meta adds its checksum
    capsys.readouterr()
    with pytest.raises(SystemExit):  # argparse rejects a flag value outside its choices
        main(["data", "prepare", "--config", str(cfg), "--dedupe", "sometimes"])
    # a bad key in the file is a clean CLI error, not a traceback
    cfg.write_text(yaml.safe_dump({"release": 2023, "reviews": reviews.name, "out": "x", "kcores": 5}))
    assert main(["data", "prepare", "--config", str(cfg)]) == 2


def test_cli_bad_protocol_param_is_a_clean_error(tmp_path):
    reviews, _, _ = _write_2023(tmp_path, n=300)
    rc = main(
        [
            "data",
            "prepare",
            "--release",
            "2023",
            "--reviews",
            str(reviews),
            "--protocol",
            "loo",
            "--param",
            "valid_frac=0.1",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert rc == 2
    assert not (tmp_path / "o" / "split.json").exists()


@pytest.mark.realdata
def test_real_2018_magazine_subscriptions(shared_data, tmp_path):
    reviews = shared_data / "2018-Magazine_Subscriptions" / "Magazine_Subscriptions_5.json.gz"
    meta = shared_data / "2018-Magazine_Subscriptions" / "meta_Magazine_Subscriptions.json.gz"
    # strict: the meta's repeated asins are identical lines (notes), so strict reading goes through
    split = prepare(
        {
            "release": "2018",
            "reviews": reviews,
            "meta": meta,
            "strict": True,
            "out": tmp_path / "p",
            "protocol": "loo",
            "kcore": 5,
        }
    )
    with gzip.open(reviews, "rt", encoding="utf-8") as fh:
        recs = [json.loads(line) for line in fh]
    truth = pd.DataFrame(
        {
            "user": [r["reviewerID"] for r in recs],
            "item": [r["asin"] for r in recs],
            "rating": [r["overall"] for r in recs],
            "timestamp": [r["unixReviewTime"] for r in recs],
        }
    )
    expected = _expected_after_filters(truth, 5, 5)
    assert sum(len(split.part(p)) for p in PARTS) == len(expected)
    assert len(split.test) == expected["user"].nunique()  # every 5-core user has ≥ 3 rows: one test row each
    last = expected.sort_values(["user", "timestamp", "item"]).groupby("user").tail(1)
    assert set(zip(split.test["orig_user_id"], split.test["orig_item_id"])) == set(zip(last["user"], last["item"]))
    summary = json.loads((tmp_path / "p" / "summary.json").read_text())
    assert summary["stages"]["dedupe"]["removed"] == int(truth.duplicated(["user", "item"]).sum())
    # how much of the split the metadata covers is reported (independent count from the raw meta)
    with gzip.open(meta, "rt", encoding="utf-8") as fh:
        mrecs = [json.loads(line) for line in fh]
    meta_items = {r["asin"] for r in mrecs}
    with_image = {r["asin"] for r in mrecs if r.get("imageURLHighRes") or r.get("imageURL")}
    split_items = set(expected["item"])
    assert summary["stages"]["catalogue"] == {
        "items": len(split_items),
        "with_meta": len(split_items & meta_items),
        "without_meta": len(split_items - meta_items),
        "with_image_url": len(split_items & with_image),
    }


@pytest.mark.realdata
def test_loo_on_2023_rating_only_reproduces_the_official_last_out_split(shared_data, tmp_path):
    # The release's own leave-last-out files are an independent reference for our `loo` protocol.
    base = shared_data / "2023-All_Beauty" / "5core"
    split = prepare(
        {
            "release": "2023",
            "reviews": base / "rating_only" / "All_Beauty.csv",
            "out": tmp_path / "l",
            "protocol": "loo",
            "kcore": 0,
        }
    )
    for part in PARTS:
        official = pd.read_csv(base / "last_out_w_his" / f"All_Beauty.{part}.csv")
        ours = split.part(part)
        assert sorted(zip(ours["orig_user_id"], ours["orig_item_id"], ours["timestamp"])) == sorted(
            zip(official["user_id"], official["parent_asin"], official["timestamp"] // 1000)
        ), part


@pytest.mark.realdata
def test_official_protocol_dispatches_to_the_importer(shared_data, tmp_path):
    pytest.importorskip("benchmark.data.interop")
    directory = shared_data / "2023-All_Beauty" / "5core"
    split = prepare(
        {
            "release": "2023",
            "reviews": directory,
            "out": tmp_path / "o",
            "protocol": "official",
            "category": "All_Beauty",
            "variant": "last_out_w_his",
        }
    )
    test_csv = pd.read_csv(directory / "last_out_w_his" / "All_Beauty.test.csv")
    assert len(split.test) == len(test_csv)
    assert set(split.test["orig_user_id"]) == set(test_csv["user_id"])
    summary = json.loads((tmp_path / "o" / "summary.json").read_text())
    assert "leakage" in summary and summary["fingerprint"] == split.fingerprint
    assert [r["rows_kept"] for r in summary["read_reports"]["official"]] == [
        len(split.train),
        len(split.valid),
        len(split.test),
    ]


def test_read_kcore_perf_script_runs_small(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark.perf.read_kcore", "--small", "--cache-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.split("scaling table")[1]
    rows = {line.split()[1]: line.split() for line in table.splitlines() if line.strip().startswith("5,000")}
    assert set(rows) == {"ours", "memory", "pandas"}
    assert all(float(r[-2]) > 0 for r in rows.values())  # peak MiB measured
    assert len({r[-1] for r in rows.values()}) == 1  # the three k-cores keep the same rows
    assert "peak" in table and "while reading" in table
    assert not list(tmp_path.glob("*.gz")), "the generated file is deleted after measuring"


def test_implausible_lines_are_counted_and_bounds_recorded(tmp_path):
    # issue 12 defect 11: through data prepare, an implausible rating/timestamp is a counted skip
    reviews, _, truth = _write_2023(tmp_path, n=400)
    lines = gzip.open(reviews, "rt").read().splitlines()
    bad = [dict(json.loads(lines[0]), rating=1e39), dict(json.loads(lines[1]), timestamp=10**30)]
    with gzip.open(reviews, "wt") as fh:
        fh.write("\n".join([*lines, *map(json.dumps, bad)]) + "\n")
    out = tmp_path / "o"
    rc = main(["data", "prepare", "--release", "2023", "--reviews", str(reviews), "--kcore", "2", "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "summary.json").read_text())["read_reports"]["reviews"]
    assert report["counts"] == {"implausible": 2} and report["first_lines"]["implausible"] == [401, 402]
    assert "plausible" not in Split.load(out).params["filtering"]  # defaults: nothing recorded
    out2 = tmp_path / "o2"
    args = ["--release", "2023", "--reviews", str(reviews), "--kcore", "2", "--out", str(out2)]
    assert main(["data", "prepare", *args, "--plausible", "rating=[0,10]"]) == 0
    assert Split.load(out2).params["filtering"]["plausible"]["rating"] == [0.0, 10.0]
    assert main(["data", "prepare", *args, "--plausible", "rating=[9,1]"]) == 2  # one clean error line
