"""Readers and importers on real Amazon sample files (skipped when ../shared/data is absent).

Every asserted number is computed here with plain gzip/json/pandas, never taken from the
code under test.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.data.interop import import_2023_official, import_mmrec, read_mmrec_maps
from benchmark.data.read_report import WrongFormatError
from benchmark.data.readers import read_meta, read_reviews

pytestmark = pytest.mark.realdata


def json_lines(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


# ------------------------------------------------------------------------ 2018 Magazine_Subscriptions
def test_magazine_5core_reviews(shared_data: Path) -> None:
    p = shared_data / "2018-Magazine_Subscriptions" / "Magazine_Subscriptions_5.json.gz"
    recs = json_lines(p)
    df, rep = read_reviews(p, "2018")
    assert len(df) == len(recs) and rep.n_problems == 0
    assert df["user"].nunique() == len({r["reviewerID"] for r in recs})
    assert df["item"].nunique() == len({r["asin"] for r in recs})
    assert df["timestamp"].tolist() == [r["unixReviewTime"] for r in recs]
    assert df["rating"].astype(float).tolist() == [float(r["overall"]) for r in recs]
    with pytest.raises(WrongFormatError, match="2018 reviews"):
        read_reviews(p, "2023")


def test_magazine_ratings_csv(shared_data: Path) -> None:
    p = shared_data / "2018-Magazine_Subscriptions" / "Magazine_Subscriptions.csv"
    raw = pd.read_csv(p, header=None, names=["item", "user", "rating", "ts"], dtype={"item": str, "user": str})
    df, rep = read_reviews(p, "2018")
    assert len(df) == len(raw) and rep.n_problems == 0
    assert df["user"].tolist() == raw["user"].tolist() and df["item"].tolist() == raw["item"].tolist()
    assert df["timestamp"].tolist() == raw["ts"].tolist()
    assert df["item"].nunique() == raw["item"].nunique() and df["user"].nunique() == raw["user"].nunique()
    with pytest.raises(WrongFormatError, match=r"item,user.*not 2014"):
        read_reviews(p, "2014")


def test_magazine_meta_duplicates_and_html(shared_data: Path) -> None:
    d = shared_data / "2018-Magazine_Subscriptions"
    recs = json_lines(d / "meta_Magazine_Subscriptions.json.gz")
    asins = [r["asin"] for r in recs]
    unique = list(dict.fromkeys(asins))
    seen: set[str] = set()
    first_dup_line = next(k + 1 for k, a in enumerate(asins) if a in seen or seen.add(a))
    html_titles = sum(r.get("title", "").lstrip().startswith("<") for r in recs)

    # repeats of an asin whose record is byte-for-byte the same as its first line (all of them here)
    first_rec: dict[str, str] = {}
    n_identical = 0
    for r in recs:
        key = json.dumps(r, sort_keys=True)
        n_identical += first_rec.setdefault(r["asin"], key) == key and first_rec[r["asin"]] is not key
    df, rep = read_meta(d / "meta_Magazine_Subscriptions.json.gz", "2018")
    assert df["item"].tolist() == unique  # one row per item, first-seen order
    assert rep.counts.get("repeat", 0) + rep.counts.get("duplicate", 0) == len(asins) - len(unique)
    assert rep.counts.get("repeat", 0) >= n_identical > 0
    assert (rep.examples.get("repeat") or rep.examples["duplicate"])[0] == first_dup_line
    assert rep.counts["html_cleaned"] >= html_titles > 0
    for col in ("title", "description", "brand"):
        assert not df[col].str.contains(r"<\s*/?\s*[a-zA-Z][^>]*(?:>|$)", regex=True).any(), col
        assert not df[col].str.contains("&amp;", regex=False).any(), col
    # the 5-core items that have metadata, and those with an image
    five = {r["asin"] for r in json_lines(d / "Magazine_Subscriptions_5.json.gz")}
    with_image = {r["asin"] for r in recs if r.get("imageURLHighRes") or r.get("imageURL")}
    covered = df[df["item"].isin(five)]
    assert len(covered) == len(five & set(asins))
    assert int(covered["image_url"].notna().sum()) == len(five & with_image)
    # the repeats are identical, so nothing is lost and strict reading goes through (regression)
    strict_df, strict_rep = read_meta(d / "meta_Magazine_Subscriptions.json.gz", "2018", strict=True)
    assert strict_df["item"].tolist() == unique and strict_rep.n_problems == 0


# ----------------------------------------------------------------------------------- Gift_Cards
def test_gift_cards_meta_both_layouts(shared_data: Path) -> None:
    d = shared_data / "2018-Gift_Cards"
    new, old = d / "meta_Gift_Cards.json.gz", d / "meta_Gift_Cards.v1-image-field.json.gz"
    new_recs, old_recs = json_lines(new), json_lines(old)
    assert "imageURLHighRes" in new_recs[0] and "image" in old_recs[0]
    items = {r["asin"] for r in new_recs}
    assert items == {r["asin"] for r in old_recs}

    df_new, _ = read_meta(new, "2018")
    df_old, _ = read_meta(old, "2018")
    assert len(df_new) == len(df_old) == len(items)
    assert set(df_new["item"]) == set(df_old["item"]) == items
    a, b = df_new.set_index("item").sort_index(), df_old.set_index("item").sort_index()
    assert (a["title"] == b["title"]).all() and (a["brand"] == b["brand"]).all()
    assert int(a["image_url"].notna().sum()) == len(
        {r["asin"] for r in new_recs if r.get("imageURLHighRes") or r.get("imageURL")}
    )
    assert int(b["image_url"].notna().sum()) == len({r["asin"] for r in old_recs if r.get("image")})
    hi = {r["asin"]: r["imageURLHighRes"][0] for r in new_recs if r.get("imageURLHighRes")}
    assert all(a.loc[k, "image_url"] == v for k, v in hi.items())
    five = {r["asin"] for r in json_lines(d / "Gift_Cards_5.json.gz")}
    assert five <= set(df_new["item"])


# ------------------------------------------------------------------------ 2023 All_Beauty official
def test_all_beauty_official(shared_data: Path) -> None:
    root = shared_data / "2023-All_Beauty"
    parts = {
        p: pd.read_csv(root / "5core" / "last_out_w_his" / f"All_Beauty.{p}.csv", keep_default_na=False)
        for p in ("train", "valid", "test")
    }
    split = import_2023_official(root, "All_Beauty", "last_out_w_his")
    for p, raw in parts.items():
        got = split.part(p)
        assert len(got) == len(raw)
        assert sorted(zip(got["orig_user_id"], got["orig_item_id"], got["timestamp"])) == sorted(
            zip(raw["user_id"], raw["parent_asin"], raw["timestamp"] // 1000)
        )
    all_rows = pd.concat(parts.values())
    assert split.n_users == all_rows["user_id"].nunique()
    assert split.n_items == all_rows["parent_asin"].nunique()
    assert (
        split.params["files"]["All_Beauty.train.csv"]
        == __import__("hashlib")
        .sha256((root / "5core" / "last_out_w_his" / "All_Beauty.train.csv").read_bytes())
        .hexdigest()
    )

    rating_only = root / "5core" / "rating_only" / "All_Beauty.csv"
    raw = pd.read_csv(rating_only)
    df, rep = read_reviews(rating_only, "2023")
    assert len(df) == len(raw) and rep.n_problems == 0
    assert df["timestamp"].tolist() == (raw["timestamp"] // 1000).tolist()
    # the official parts are exactly the rating-only 5-core file, re-cut
    key = lambda f, u, i, t: sorted(zip(f[u], f[i], f[t]))  # noqa: E731
    assert key(all_rows, "user_id", "parent_asin", "timestamp") == key(raw, "user_id", "parent_asin", "timestamp")
    with pytest.raises(WrongFormatError, match="2023 benchmark CSV.*not 2018"):
        read_reviews(rating_only, "2018")


# ---------------------------------------------------------------------------- MMRec baby id maps
def test_mmrec_baby_maps_and_feature_alignment(shared_data: Path, tmp_path: Path) -> None:
    src = shared_data / "mmrec-baby-2014"
    imap = pd.read_csv(src / "i_id_mapping.csv", sep="\t", dtype={"asin": str})
    umap = pd.read_csv(src / "u_id_mapping.csv", sep="\t", dtype={"user_id": str})
    urls = pd.read_csv(src / "baby_url.csv", dtype={"asin": str})
    users, items = read_mmrec_maps(src)
    assert len(items) == len(imap) and len(users) == len(umap)
    assert items == imap.sort_values("itemID")["asin"].tolist()
    assert users == umap.sort_values("userID")["user_id"].tolist()
    assert items == urls.sort_values("itemID")["asin"].tolist()  # the URL table uses the same ids

    # baby.inter is not in the sample: build a folder with the real maps, generated
    # interactions over their ids, and a feature matrix whose row k encodes k.
    d = tmp_path / "baby"
    d.mkdir()
    for f in ("i_id_mapping.csv", "u_id_mapping.csv"):
        os.symlink(src / f, d / f)
    rng = np.random.default_rng(0)
    n = 5000
    inter = pd.DataFrame(
        {
            "userID": rng.integers(0, len(umap), n),
            "itemID": rng.integers(0, len(imap), n),
            "rating": 5.0,
            "timestamp": rng.integers(1_300_000_000, 1_400_000_000, n),
            "x_label": rng.choice([0, 1, 2], n, p=[0.8, 0.1, 0.1]),
        }
    )
    inter.to_csv(d / "baby.inter", sep="\t", index=False)
    feat = np.stack([np.arange(len(imap), dtype=np.float32) + 1, rng.normal(size=len(imap)).astype(np.float32)], 1)
    np.save(d / "image_feat.npy", feat)
    split, feats = import_mmrec(d, "baby")
    assert split.n_items == len(imap) and split.n_users == len(umap)
    f = feats["mmrec_image"].values.numpy()
    by_asin = imap.set_index("asin")["itemID"]
    for asin in imap["asin"].sample(50, random_state=0):
        ours = int(split.items.index[split.items["orig_item_id"] == asin][0])
        assert f[ours, 0] == by_asin[asin] + 1
    test = split.test
    assert len(test) == int((inter["x_label"] == 2).sum())
