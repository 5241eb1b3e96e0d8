"""Several parsing processes give exactly the sequential reader's rows and report: every kind of
bad line, blank and CRLF lines, a BOM, a last line without a newline, a truncated gzip stream,
strict mode's first error, and block boundaries anywhere."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from fixtures.amazon_files import make_rows, truncate_file, write_ratings_2018

from benchmark.data import parallel_read
from benchmark.data.chunks import ParquetSink
from benchmark.data.read_report import BadInputError
from benchmark.data.readers import read_reviews


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    # every file is "large" and blocks are a few lines, so tasks cut the file everywhere
    monkeypatch.setattr(parallel_read, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel_read, "TASK_LINES", 7)


def messy_2023(path: Path, gz: bool = True, final_newline: bool = False) -> Path:
    rows = make_rows(n_users=30, n_items=20, per_user=5, seed=3)
    lines = [
        json.dumps({"user_id": r.user, "parent_asin": r.item, "rating": r.rating, "timestamp": r.ts * 1000})
        for r in rows
    ]
    lines[0] = "\ufeff" + lines[0]
    lines[5] = "{broken"
    lines[9] = json.dumps({"user_id": "", "parent_asin": "B0X", "rating": 2.0, "timestamp": 5})
    lines[14] = json.dumps({"user_id": "AX", "parent_asin": "B0X", "rating": "bad", "timestamp": 5})
    lines[20] = json.dumps({"user_id": "AX", "parent_asin": "B0X", "rating": 1.0})
    lines[23] = "   "
    lines[31] = lines[31] + "\r"
    lines.insert(40, "")
    lines.insert(41, "[1, 2]")
    text = "\n".join(lines) + ("\n" if final_newline else "")
    if gz:
        with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
            fh.write(text.encode("utf-8"))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def read_both(path: Path, release: str, tmp: Path, strict: bool = False):
    out = {}
    calls = []
    real = parallel_read.read_parallel

    def spy(*args, **kwargs):
        calls.append(kwargs.get("workers", args[4] if len(args) > 4 else None))
        return real(*args, **kwargs)

    parallel_read.read_parallel = spy
    try:
        for workers in (1, 2):
            target = tmp / f"w{workers}.parquet"
            with ParquetSink(target) as sink:
                _, report = read_reviews(path, release, strict=strict, sink=sink, workers=workers)
            out[workers] = (pq.read_table(target), report.to_dict())
    finally:
        parallel_read.read_parallel = real
    assert calls == [2], "the two-worker read must take the parallel path, the one-worker read not"
    return out[1], out[2]


@pytest.mark.parametrize("gz,final_newline", [(True, False), (False, True)])
def test_parallel_reader_equals_sequential(tmp_path, gz, final_newline):
    path = messy_2023(tmp_path / ("r.jsonl.gz" if gz else "r.jsonl"), gz, final_newline)
    (seq, seq_report), (par, par_report) = read_both(path, "2023", tmp_path)
    assert par.equals(seq) and seq.num_rows > 100
    assert par_report == seq_report
    assert set(seq_report["counts"]) >= {"malformed", "empty_id", "wrong_type", "missing_field", "blank"}


def test_truncated_gzip_and_2018_csv(tmp_path):
    path = truncate_file(messy_2023(tmp_path / "t.jsonl.gz"), 0.7)
    (seq, seq_report), (par, par_report) = read_both(path, "2023", tmp_path)
    assert par.equals(seq) and par_report == seq_report and seq_report["counts"]["truncated"] == 1
    csv = write_ratings_2018(tmp_path / "Cat.csv", make_rows(n_users=40, n_items=30, per_user=6, seed=1))
    (seq, seq_report), (par, par_report) = read_both(csv, "2018", tmp_path)
    assert par.equals(seq) and par_report == seq_report and seq.num_rows == 240


def test_strict_stops_at_the_same_first_error(tmp_path):
    path = messy_2023(tmp_path / "s.jsonl.gz")
    errors = []
    for workers in (1, 2):
        with pytest.raises(BadInputError) as err, ParquetSink(tmp_path / f"s{workers}.parquet") as sink:
            read_reviews(path, "2023", strict=True, sink=sink, workers=workers)
        errors.append(str(err.value))
    assert errors[0] == errors[1] and "6" in errors[0]
