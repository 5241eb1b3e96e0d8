"""A saved split refuses every edit it used to load without (issue 12, defect 4): the catalogue
(titles, image URLs, extras) and the original ids stored beside the dense ids."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from benchmark.cli import main
from benchmark.split import NotASplitError, Split, SplitIntegrityError


def _split(tmp_path: Path) -> Path:
    parts = {
        "train": pd.DataFrame(
            {"user": ["u1", "u1", "u2", "u2"], "item": ["a", "b", "a", "c"], "rating": 5.0, "timestamp": [1, 2, 3, 4]}
        ),
        "valid": pd.DataFrame({"user": ["u1"], "item": ["c"], "rating": 4.0, "timestamp": [5]}),
        "test": pd.DataFrame({"user": ["u2"], "item": ["b"], "rating": 3.0, "timestamp": [6]}),
    }
    catalogue = pd.DataFrame(
        {
            "item": ["a", "b", "c"],
            "title": ["Lamp", "Mug", "Chair"],
            "description": ["", "blue", ""],
            "brand": ["", "", "Acme"],
            "categories": [["Home"], [], ["Home", "Seats"]],
            "image_url": ["http://x/a.jpg", None, "img/c.png"],
            "image_urls": [["http://x/a.jpg"], [], ["img/c.png"]],
            "reference_caption": ["a lamp", "a mug", "a chair"],
        }
    )
    everything = pd.concat(list(parts.values()), ignore_index=True)
    split = Split.from_parts(parts, catalogue, "test-protocol", {"seed": 0}, interactions=everything)
    assert split.catalogue_sha256
    split.save(tmp_path / "s")
    return tmp_path / "s"


def _edit(path: Path, column: str, row: int, value: object) -> None:
    df = pd.read_parquet(path)
    df[column] = df[column].astype(object)
    df.at[row, column] = value
    df.to_parquet(path, index=False)


@pytest.mark.parametrize(
    "file,column,value",
    [
        ("items.parquet", "title", "Edited title"),
        ("items.parquet", "image_url", "file:///home/user/private.png"),
        ("items.parquet", "reference_caption", "a changed caption"),
        ("items.parquet", "categories", ["Other"]),
        ("train.parquet", "orig_item_id", "zzz"),
        ("test.parquet", "orig_user_id", "u1"),
        ("interactions.parquet", "orig_item_id", "zzz"),
    ],
)
def test_edited_catalogue_or_original_ids_are_refused(tmp_path: Path, file: str, column: str, value: object) -> None:
    d = _split(tmp_path)
    fingerprint = Split.load(d).fingerprint
    _edit(d / file, column, 0, value)
    with pytest.raises(SplitIntegrityError, match="changed after it was written"):
        Split.load(d)
    assert Split.load(d, verify=False).fingerprint == fingerprint  # the fingerprint alone does not see it


def test_catalogue_checksum_survives_the_parquet_round_trip_and_is_recorded(tmp_path: Path) -> None:
    d = _split(tmp_path)
    meta = json.loads((d / "split.json").read_text())
    loaded = Split.load(d)
    assert meta["catalogue_sha256"] == loaded.catalogue_sha256 == loaded.compute_catalogue_checksum()


def test_split_written_before_catalogue_checksums_loads_with_a_warning(tmp_path: Path, caplog) -> None:
    d = _split(tmp_path)
    meta = json.loads((d / "split.json").read_text())
    del meta["catalogue_sha256"]
    (d / "split.json").write_text(json.dumps(meta))
    assert Split.load(d).catalogue_sha256
    assert "records no catalogue checksum" in caplog.text


@pytest.mark.parametrize("damage", ["corrupt-json", "not-an-object", "missing-part", "garbage-parquet"])
def test_unreadable_split_is_one_integrity_error(tmp_path: Path, damage: str) -> None:
    d = _split(tmp_path)
    if damage == "corrupt-json":
        (d / "split.json").write_text('{"protocol": "x", "fingerp')
    elif damage == "not-an-object":
        (d / "split.json").write_text("[1, 2]")
    elif damage == "missing-part":
        (d / "valid.parquet").unlink()
    else:
        (d / "items.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(SplitIntegrityError, match=str(d)):
        Split.load(d)


def test_not_a_split_folder(tmp_path: Path) -> None:
    with pytest.raises(NotASplitError, match="no split.json"):
        Split.load(tmp_path)
    with pytest.raises(FileNotFoundError):  # still what callers catching the built-in see
        Split.load(tmp_path)


def test_cli_reports_an_edited_split_as_one_line(tmp_path: Path, caplog) -> None:
    d = _split(tmp_path)
    _edit(d / "items.parquet", "title", 1, "Edited")
    rc = main(["data", "export", "recbole", str(d), "--out", str(tmp_path / "x")])
    assert rc == 2
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "catalogue checksum" in errors[0]
