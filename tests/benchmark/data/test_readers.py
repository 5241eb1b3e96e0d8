"""Readers of the 2014/2018/2023 Amazon releases on generated files in every real layout."""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.amazon_files import (
    Row,
    make_items,
    make_rows,
    meta_2014,
    meta_2018,
    meta_2023,
    review_2018,
    review_2023,
    truncate_file,
    write_2023_benchmark,
    write_lines,
    write_meta_2014,
    write_meta_2018,
    write_ratings_2014,
    write_ratings_2018,
    write_reviews_2014,
    write_reviews_2018,
    write_reviews_2023,
)

from benchmark.data.read_report import BadInputError, ReadReport, WrongFormatError
from benchmark.data.readers import read_meta, read_reviews, sniff
from benchmark.data.text import clean_html
from benchmark.split import CATALOGUE_COLUMNS, RAW_INTERACTION_COLUMNS

ROWS = make_rows(n_users=12, n_items=10, per_user=5, seed=3)


def expected_frame(rows: list[Row]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user": [r.user for r in rows],
            "item": [r.item for r in rows],
            "rating": np.array([r.rating for r in rows], dtype=np.float32),
            "timestamp": np.array([r.ts for r in rows], dtype=np.int64),
        }
    )


def assert_interactions(df: pd.DataFrame, rows: list[Row]) -> None:
    assert list(df.columns) == list(RAW_INTERACTION_COLUMNS)
    assert df["rating"].dtype == np.float32 and df["timestamp"].dtype == np.int64
    pd.testing.assert_frame_equal(df.reset_index(drop=True), expected_frame(rows), check_dtype=False)


# ------------------------------------------------------------------------------ reviews
@pytest.mark.parametrize("gz", [True, False])
def test_2014_reviews_json(tmp_path: Path, gz: bool) -> None:
    p = write_reviews_2014(tmp_path / "reviews_Toys_5.json.gz", ROWS, gz=gz)
    df, rep = read_reviews(p, "2014")
    assert_interactions(df, ROWS)
    assert rep.lines_read == len(ROWS) and rep.rows_kept == len(ROWS) and rep.counts == {}


def test_2014_ratings_csv(tmp_path: Path) -> None:
    p = write_ratings_2014(tmp_path / "ratings_Toys.csv", ROWS)
    df, rep = read_reviews(p, "2014")
    assert_interactions(df, ROWS)
    assert rep.layout.startswith("an Amazon 2014 ratings CSV")


def test_gzip_detected_by_magic_not_extension(tmp_path: Path) -> None:
    gz_named_plain = write_reviews_2018(tmp_path / "Toys_5.json", ROWS, gz=True)
    plain_named_gz = write_reviews_2018(tmp_path / "Toys.json.gz", ROWS, gz=False)
    assert gz_named_plain.read_bytes()[:2] == b"\x1f\x8b"
    for p in (gz_named_plain, plain_named_gz):
        df, _ = read_reviews(p, "2018")
        assert_interactions(df, ROWS)


def test_2018_ratings_csv_is_item_first(tmp_path: Path) -> None:
    p = write_ratings_2018(tmp_path / "Toys.csv", ROWS)
    df, _ = read_reviews(p, "2018")
    assert_interactions(df, ROWS)


def test_2023_reviews_ms_to_seconds(tmp_path: Path) -> None:
    p = write_reviews_2023(tmp_path / "Toys.jsonl.gz", ROWS)
    raw = [json.loads(line) for line in gzip.open(p, "rt")]
    assert any(r["timestamp"] % 1000 for r in raw)  # sub-second parts exist and must be floored
    df, rep = read_reviews(p, "2023")
    assert df["timestamp"].tolist() == [r["timestamp"] // 1000 for r in raw]
    assert df["item"].tolist() == [r["parent_asin"] for r in raw]
    assert_interactions(df, ROWS)


def test_2023_benchmark_csv_as_reviews(tmp_path: Path) -> None:
    files = write_2023_benchmark(tmp_path, "Toys", ROWS)
    df, rep = read_reviews(files["rating_only"], "2023")
    assert_interactions(df, ROWS)
    train, _ = read_reviews(files["train"], "2023")  # with the extra history column
    assert len(train) == len(ROWS) - 2 * len({r.user for r in ROWS})


# ------------------------------------------------------------------------------ metadata
ITEMS = make_items(sorted({r.item for r in ROWS}), seed=5)


def test_2014_meta_python_literals(tmp_path: Path) -> None:
    p = write_meta_2014(tmp_path / "meta_Toys.json.gz", ITEMS)
    assert gzip.open(p, "rt").readline().startswith("{'asin'")
    df, rep = read_meta(p, "2014")
    assert list(df.columns) == list(CATALOGUE_COLUMNS)
    assert df["item"].tolist() == [it["item"] for it in ITEMS]
    first = df.iloc[0]
    assert first["description"] == " ".join(ITEMS[0]["description"])
    # [[Home, SubX], [Home]] flattened, order kept, duplicates dropped
    assert list(first["categories"]) == ITEMS[0]["categories"]
    for it, (_, row) in zip(ITEMS, df.iterrows()):
        want = it["images"][0] + ".jpg" if it["images"] else None
        assert row["image_url"] == want
        assert list(row["image_urls"]) == ([want] if want else [])


def test_2014_meta_never_evaluates_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = f"{{'asin': __import__('pathlib').Path({str(marker)!r}).touch()}}"
    p = write_lines(tmp_path / "meta_Toys.json", [meta_2014(ITEMS[0]), evil])
    df, rep = read_meta(p, "2014")
    assert not marker.exists()
    assert rep.counts == {"malformed": 1} and rep.examples["malformed"] == [2]
    assert len(df) == 1


@pytest.mark.parametrize("layout", ["imageURL", "image"])
def test_2018_meta_layouts(tmp_path: Path, layout: str) -> None:
    p = write_meta_2018(tmp_path / "meta_Toys.json.gz", ITEMS, layout=layout)
    df, rep = read_meta(p, "2018")
    assert df["item"].tolist() == [it["item"] for it in ITEMS]
    suffix = ".jpg" if layout == "imageURL" else "._SX38_.jpg"  # high-res when the layout has it
    for it, (_, row) in zip(ITEMS, df.iterrows()):
        assert list(row["image_urls"]) == [u + suffix for u in it["images"]]
        assert row["image_url"] == (it["images"][0] + suffix if it["images"] else None)
        assert row["description"] == " ".join(it["description"])
        assert row["brand"] == it["brand"] and list(row["categories"]) == it["categories"]


def test_2018_meta_duplicates_and_html(tmp_path: Path) -> None:
    a, b, c = ITEMS[0], ITEMS[1], ITEMS[2]
    sparse_a = dict(a, brand="", images=[], title='<span class="a-size-medium a-color-secondary"')
    lines = [
        meta_2018(sparse_a),  # 1: a with fewer fields
        meta_2018(dict(b, title="Caf&eacute; <b>Noir</b>")),  # 2: b with HTML
        meta_2018(a),  # 3: a, more fields: replaces line 1
        meta_2018(dict(b, title="Other")),  # 4: b again, tie → first (line 2) kept
        meta_2018(c),  # 5
    ]
    p = write_lines(tmp_path / "meta_Toys.json.gz", lines)
    df, rep = read_meta(p, "2018")
    assert df["item"].tolist() == [a["item"], b["item"], c["item"]]
    assert df.set_index("item").loc[a["item"], "title"] == a["title"]
    assert df.set_index("item").loc[b["item"], "title"] == "Café Noir"
    assert rep.counts["duplicate"] == 2 and rep.examples["duplicate"] == [1, 4]
    assert rep.counts["html_cleaned"] == 2 and rep.examples["html_cleaned"] == [1, 2]
    assert rep.rows_kept == 3


def test_2023_meta_images_and_brand(tmp_path: Path) -> None:
    items = ITEMS
    recs = [json.loads(meta_2023(it)) for it in items]
    for k, rec in enumerate(recs):
        if k % 2 == 0:
            rec["store"] = ""  # brand then comes from details["Brand"]
    p = write_lines(tmp_path / "meta_Toys.jsonl", [json.dumps(r) for r in recs])
    df, _ = read_meta(p, "2023")
    for it, (_, row) in zip(items, df.iterrows()):
        imgs = it["images"]
        if len(imgs) >= 2:  # image 1 is the MAIN variant (with hi_res); image 0 is PT01 without hi_res
            assert row["image_url"] == imgs[1] + "_hires.jpg"
            assert list(row["image_urls"]) == [imgs[0] + "_large.jpg", imgs[1] + "_hires.jpg"]
        elif imgs:  # only a non-MAIN image: first available, best size
            assert row["image_url"] == imgs[0] + "_large.jpg"
        else:
            assert row["image_url"] is None and list(row["image_urls"]) == []
        k = items.index(it)
        assert row["brand"] == (it["brand"] if k % 2 else it["brand"] + " Details")
        assert row["description"] == " ".join(it["description"])


def test_catalogue_survives_parquet(tmp_path: Path) -> None:
    df, _ = read_meta(write_meta_2018(tmp_path / "m.json", ITEMS), "2018")
    df.to_parquet(tmp_path / "items.parquet")
    back = pd.read_parquet(tmp_path / "items.parquet")
    assert back["item"].tolist() == df["item"].tolist()
    assert [list(x) for x in back["image_urls"]] == [list(x) for x in df["image_urls"]]


# ------------------------------------------------------------------------ wrong formats
def test_wrong_release_errors_name_the_format(tmp_path: Path) -> None:
    r23 = write_reviews_2023(tmp_path / "Toys.jsonl.gz", ROWS)
    with pytest.raises(WrongFormatError, match=r"looks like Amazon 2023 reviews \(user_id/parent_asin\), not 2018"):
        read_reviews(r23, "2018")
    r18 = write_reviews_2018(tmp_path / "Toys_5.json.gz", ROWS)
    with pytest.raises(WrongFormatError, match="looks like Amazon 2018 reviews.*not 2023"):
        read_reviews(r18, "2023")
    r14 = write_reviews_2014(tmp_path / "reviews_Toys_5.json.gz", ROWS)
    with pytest.raises(WrongFormatError, match="looks like Amazon 2014 reviews.*not 2018"):
        read_reviews(r14, "2018")
    m14 = write_meta_2014(tmp_path / "meta14.json.gz", ITEMS)
    with pytest.raises(WrongFormatError, match="looks like Amazon 2014 metadata.*not 2018"):
        read_meta(m14, "2018")
    m18 = write_meta_2018(tmp_path / "meta18.json.gz", ITEMS)
    with pytest.raises(WrongFormatError, match="looks like Amazon 2018 metadata.*not 2023"):
        read_meta(m18, "2023")
    with pytest.raises(WrongFormatError, match="metadata.*not reviews; use read_meta"):
        read_reviews(m18, "2018")
    with pytest.raises(WrongFormatError, match="reviews.*not metadata; use read_reviews"):
        read_meta(r18, "2018")
    c18 = write_ratings_2018(tmp_path / "Toys.csv", ROWS)
    with pytest.raises(WrongFormatError, match=r"2018 ratings CSV \(item,user,rating,timestamp\), not 2014"):
        read_reviews(c18, "2014")
    bench = write_2023_benchmark(tmp_path / "b", "Toys", ROWS)["rating_only"]
    with pytest.raises(WrongFormatError, match="2023 benchmark CSV.*not 2014"):
        read_reviews(bench, "2014")
    with pytest.raises(ValueError, match="unknown release"):
        read_reviews(r18, "2020")


def test_unrecognised_file(tmp_path: Path) -> None:
    p = write_lines(tmp_path / "x.json", [json.dumps({"foo": 1})])
    with pytest.raises(WrongFormatError, match="not a recognised Amazon 2018 reviews file"):
        read_reviews(p, "2018")
    assert sniff(p).kind == "unknown"


# ------------------------------------------------------------------------------- bad input
GOOD = [review_2018(r) for r in ROWS[:6]]


def _bad_reviews(tmp_path: Path, kind: str) -> tuple[Path, int, int]:
    """A 2018 reviews file with exactly one bad line of ``kind``; returns (path, bad line, good rows)."""
    lines = [json.dumps(g) for g in GOOD]
    bad_at = 4
    if kind == "malformed":
        lines.insert(bad_at - 1, '{"reviewerID": "A1", "asin": ')
    elif kind == "wrong_type":
        lines.insert(bad_at - 1, json.dumps(dict(GOOD[0], overall="abc")))
    elif kind == "missing_field":
        lines.insert(bad_at - 1, json.dumps({k: v for k, v in GOOD[0].items() if k != "unixReviewTime"}))
    elif kind == "empty_id":
        lines.insert(bad_at - 1, json.dumps(dict(GOOD[0], reviewerID="  ")))
    else:
        raise ValueError(kind)
    return write_lines(tmp_path / "Toys_5.json.gz", lines), bad_at, len(GOOD)


@pytest.mark.parametrize("kind", ["malformed", "wrong_type", "missing_field", "empty_id"])
def test_bad_line_is_counted(tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    p, bad_at, n_good = _bad_reviews(tmp_path, kind)
    with caplog.at_level(logging.WARNING):
        df, rep = read_reviews(p, "2018")
    assert len(df) == n_good
    assert rep.counts == {kind: 1} and rep.examples[kind] == [bad_at]
    assert rep.lines_read == n_good + 1 == rep.rows_kept + rep.n_problems  # nothing silently dropped
    assert kind in rep.format() and str(bad_at) in rep.format()
    assert rep.to_dict()["counts"] == {kind: 1}
    assert any("skipped input" in r.getMessage() and kind in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("kind", ["malformed", "wrong_type", "missing_field", "empty_id"])
def test_bad_line_strict_raises(tmp_path: Path, kind: str) -> None:
    p, bad_at, _ = _bad_reviews(tmp_path, kind)
    with pytest.raises(BadInputError) as err:
        read_reviews(p, "2018", strict=True)
    assert err.value.kind == kind and err.value.line == bad_at and err.value.file == str(p)
    assert f"{p}:{bad_at}: {kind}" in str(err.value)


@pytest.mark.parametrize("layout", ["2018-json", "2023-jsonl", "2018-csv"])
def test_malformed_first_line_is_a_counted_skip_not_a_wrong_format(tmp_path: Path, layout: str) -> None:
    # Regression: the format used to be sniffed from the first line alone, so one cut or garbled
    # first line made the whole file "not a recognised Amazon file".
    rows = ROWS[:8]
    if layout == "2018-json":
        good, release = [json.dumps(review_2018(r)) for r in rows], "2018"
    elif layout == "2023-jsonl":
        good, release = [json.dumps(review_2023(r)) for r in rows], "2023"
    else:
        good, release = [f"{r.item},{r.user},{r.rating},{r.ts}" for r in rows], "2018"
    p = write_lines(tmp_path / "Toys.data", ["garbage that is neither JSON nor CSV", *good])
    df, rep = read_reviews(p, release)
    assert_interactions(df, rows)
    assert rep.counts == {"malformed": 1} and rep.examples["malformed"] == [1]
    with pytest.raises(BadInputError) as err:
        read_reviews(p, release, strict=True)
    assert err.value.kind == "malformed" and err.value.line == 1


def test_utf8_bom_is_not_content(tmp_path: Path) -> None:
    rows = ROWS[:6]
    jsonl = tmp_path / "Toys.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + "\n".join(json.dumps(review_2023(r)) for r in rows).encode() + b"\n")
    df, rep = read_reviews(jsonl, "2023")
    assert_interactions(df, rows) is None and rep.counts == {}
    bench = write_2023_benchmark(tmp_path / "b", "Toys", rows)["rating_only"]
    bench.write_bytes(b"\xef\xbb\xbf" + bench.read_bytes())
    df, rep = read_reviews(bench, "2023")
    assert_interactions(df, rows) is None and rep.counts == {}


def test_wrong_type_in_csv(tmp_path: Path) -> None:
    lines = [f"{r.item},{r.user},{r.rating},{r.ts}" for r in ROWS[:5]]
    lines[2] = f"{ROWS[2].item},{ROWS[2].user},5.0,yesterday"
    lines.append("only,three,fields")
    df, rep = read_reviews(write_lines(tmp_path / "Toys.csv", lines), "2018")
    assert len(df) == 4 and rep.counts == {"wrong_type": 1, "malformed": 1}
    assert rep.examples == {"wrong_type": [3], "malformed": [6]}


def _truncated(tmp_path: Path) -> tuple[Path, list[dict]]:
    rows = make_rows(n_users=200, n_items=50, per_user=10, seed=9)
    recs = [review_2023(r) for r in rows]
    p = write_lines(tmp_path / "Toys.jsonl.gz", [json.dumps(r) for r in recs])
    truncate_file(p, 0.5)
    return p, recs


def test_truncated_gzip_keeps_what_was_read(tmp_path: Path) -> None:
    p, recs = _truncated(tmp_path)
    # independent count: complete lines zlib can still decompress from the cut stream
    data = zlib.decompressobj(wbits=31).decompress(p.read_bytes())
    complete = data.count(b"\n")
    df, rep = read_reviews(p, "2023")
    assert 0 < complete < len(recs)
    assert len(df) == complete
    assert df["user"].tolist() == [r["user_id"] for r in recs[:complete]]
    assert rep.counts == {"truncated": 1} and rep.examples["truncated"] == [complete + 1]


def test_truncated_gzip_strict(tmp_path: Path) -> None:
    p, _ = _truncated(tmp_path)
    with pytest.raises(BadInputError, match="truncated"):
        read_reviews(p, "2023", strict=True)


def test_duplicate_meta_strict(tmp_path: Path) -> None:
    other_title = dict(ITEMS[0], title="A different title")
    p = write_lines(tmp_path / "meta.json", [meta_2018(ITEMS[0]), meta_2018(ITEMS[1]), meta_2018(other_title)])
    df, rep = read_meta(p, "2018")
    assert len(df) == 2 and rep.counts == {"duplicate": 1} and rep.examples["duplicate"] == [3]
    with pytest.raises(BadInputError) as err:
        read_meta(p, "2018", strict=True)
    assert err.value.kind == "duplicate" and err.value.line == 3


def test_identical_meta_repeat_is_a_note_even_when_strict(tmp_path: Path) -> None:
    # Regression: the real 2018 metadata repeats lines verbatim (1,065 in Magazine_Subscriptions,
    # none conflicting); counting them as a problem made --strict unusable on any 2018 meta file.
    lines = [meta_2018(ITEMS[0]), meta_2018(ITEMS[1]), meta_2018(ITEMS[0]), meta_2018(ITEMS[1])]
    p = write_lines(tmp_path / "meta.json", lines)
    for strict in (False, True):
        df, rep = read_meta(p, "2018", strict=strict)
        assert df["item"].tolist() == [ITEMS[0]["item"], ITEMS[1]["item"]]
        assert rep.counts == {"repeat": 2} and rep.examples["repeat"] == [3, 4] and rep.n_problems == 0


def test_meta_missing_and_empty_item(tmp_path: Path) -> None:
    good = json.loads(meta_2018(ITEMS[0]))
    lines = [
        json.dumps(good),
        json.dumps({k: v for k, v in good.items() if k != "asin"}),
        json.dumps(dict(good, asin="")),
    ]
    df, rep = read_meta(write_lines(tmp_path / "meta.json", lines), "2018")
    assert len(df) == 1 and rep.counts == {"missing_field": 1, "empty_id": 1}
    assert rep.examples == {"missing_field": [2], "empty_id": [3]}


def test_blank_lines_are_noted_not_errors(tmp_path: Path) -> None:
    lines = [json.dumps(GOOD[0]), "", json.dumps(GOOD[1])]
    df, rep = read_reviews(write_lines(tmp_path / "r.json", lines), "2018", strict=True)
    assert len(df) == 2 and rep.counts == {"blank": 1} and rep.n_problems == 0


def test_report_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError):
        ReadReport("f").add("oops", 1)


# ----------------------------------------------------------------------------------- html
@pytest.mark.parametrize(
    "raw,clean",
    [
        ('<span class="a-size-medium a-color-secondary"', ""),
        ("tips &amp; tricks, <i>Maximum PC</i><br /><br />more", "tips & tricks, Maximum PC more"),
        ("size < 5 and <3 you", "size < 5 and <3 you"),
        ("AT&T phone", "AT&T phone"),
        ("<script>var x=1;</script>Title<!-- c -->", "Title"),
    ],
)
def test_clean_html(raw: str, clean: str) -> None:
    assert clean_html(raw) == clean


# ------------------------------------------------------------------ issue 12: defects 10, 11, 12 and the header count
def test_a_first_line_over_one_mib_is_sniffed_whole(tmp_path: Path) -> None:
    # Regression (defect 10): the sniffer read at most 1 MiB, dropped the cut first line and
    # refused the whole file although every line was valid.
    items = make_items(["B0LONGLINE", "B0SHORT001"])
    long_item = dict(json.loads(meta_2023(items[0])), description=["x" * (3 << 20)])
    p = write_lines(tmp_path / "meta.jsonl", [json.dumps(long_item), meta_2023(items[1])])
    assert sniff(p).kind == "meta"
    df, rep = read_meta(p, "2023")
    assert df["item"].tolist() == ["B0LONGLINE", "B0SHORT001"] and rep.counts == {}
    assert len(df["description"].iloc[0]) == 3 << 20


@pytest.mark.parametrize(
    "field,value",
    [
        ("rating", 1e39),  # became inf in float32, silently
        ("rating", -3.0),
        ("rating", 7.0),
        ("timestamp", 10**30),  # a raw OverflowError with no file or line
        ("timestamp", 1.0e30),
        ("timestamp", 37_000_000 * 31_557_600 * 1000),  # the year 37 million (2023 files are in ms)
        ("timestamp", -5),
    ],
)
def test_implausible_ratings_and_timestamps_are_a_counted_kind(tmp_path: Path, field: str, value: float) -> None:
    rows = ROWS[:6]
    recs = [review_2023(r) for r in rows]
    recs.insert(2, dict(recs[0], **{field: value}))
    p = write_lines(tmp_path / "r.jsonl", [json.dumps(r) for r in recs])
    df, rep = read_reviews(p, "2023")
    assert_interactions(df, rows)
    assert np.isfinite(df["rating"]).all()
    assert rep.counts == {"implausible": 1} and rep.examples["implausible"] == [3]
    assert rep.lines_read == rep.rows_kept + rep.n_problems
    with pytest.raises(BadInputError) as err:
        read_reviews(p, "2023", strict=True)
    assert err.value.kind == "implausible" and err.value.line == 3 and field in str(err.value)


def test_plausibility_bounds_are_configurable(tmp_path: Path) -> None:
    from benchmark.data.read_report import Plausibility
    from benchmark.errors import ConfigError

    rows = [Row("A1", "I1", 8.0, 1_400_000_000), Row("A1", "I2", 2.0, 1_400_000_100)]
    p = write_lines(tmp_path / "r.json", [json.dumps(review_2018(r)) for r in rows])
    df, rep = read_reviews(p, "2018")
    assert len(df) == 1 and rep.counts == {"implausible": 1}
    wide = Plausibility.from_mapping({"rating": [0, 10], "timestamp": ["2014-01-01", 1_500_000_000]})
    df, rep = read_reviews(p, "2018", plausible=wide)
    assert len(df) == 2 and rep.counts == {} and rep.to_dict()["plausible"]["rating"] == [0.0, 10.0]
    assert wide.timestamp[0] == 1_388_534_400
    narrow = Plausibility.from_mapping({"timestamp": ["2015-01-01", "2016-01-01"]})
    assert read_reviews(p, "2018", plausible=narrow)[1].counts == {"implausible": 2}
    for bad, key in (({"rating": [5, 1]}, "rating"), ({"rating": 3}, "rating"), ({"stars": [1, 5]}, "stars")):
        with pytest.raises(ConfigError, match=f"plausible.{key}"):
            Plausibility.from_mapping(bad)


def test_csv_header_is_a_noted_line_not_a_kept_row(tmp_path: Path) -> None:
    rows = ROWS[:5]
    bench = write_2023_benchmark(tmp_path / "b", "Toys", rows)["rating_only"]
    df, rep = read_reviews(bench, "2023")
    assert_interactions(df, rows)
    assert rep.lines_read == 6 and rep.rows_kept == 5 and rep.counts == {"header": 1} and rep.n_problems == 0


def test_metadata_csv_message_says_what_was_expected(tmp_path: Path) -> None:
    # Regression (defect 12): a metadata CSV was refused as "not an Amazon ratings CSV".
    p = write_lines(tmp_path / "meta.csv", ["parent_asin,title,store", "B01,Lamp,Acme", "B02,Mug,Acme"])
    with pytest.raises(WrongFormatError) as err:
        read_meta(p, "2023")
    msg = str(err.value)
    assert "ratings CSV" not in msg
    assert "expected JSON lines keyed on parent_asin" in msg and "parent_asin,title,store" in msg
