"""The line reader's gzip path: ISA-L when installed, and on a damaged stream exactly what the
standard ``gzip`` module gives (same lines, same ``truncated`` report, same detail)."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from benchmark.data import lines as L
from benchmark.data.read_report import ReadReport

# > 3 MiB decoded: ISA-L hands out 1 MiB blocks, so a damage point falls inside a later block
_DATA = b"".join(b'{"user_id": "u%d", "text": "%s"}\n' % (i, b"x" * (i % 97)) for i in range(60_000))
_GOOD = gzip.compress(_DATA, compresslevel=1)


def _flip(blob: bytes, at: int) -> bytes:
    return blob[:at] + bytes([blob[at] ^ 0xFF]) + blob[at + 1 :]


DAMAGES = {
    "intact": _GOOD,
    "cut in the middle": _GOOD[: len(_GOOD) // 2],
    "cut in the trailer": _GOOD[:-3],
    "CRC flipped": _flip(_GOOD, len(_GOOD) - 8),
    "size flipped": _flip(_GOOD, len(_GOOD) - 1),
    "deflate data flipped": _flip(_GOOD, len(_GOOD) // 3),
    "trailing garbage": _GOOD + b"garbage!",
    "zero padding": _GOOD + b"\0" * 64,
    "two members": _GOOD + gzip.compress(b'{"user_id": "last"}\n'),
    "header only": _GOOD[:10],
}


def _read(path: Path) -> tuple[list[tuple[int, bytes]], dict, dict, int]:
    rep = ReadReport(file=str(path))
    got = list(L.iter_lines(path, rep))
    return got, rep.counts, rep.details, rep.lines_read


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_fast_gzip_reads_exactly_what_the_standard_module_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    if L._fast_gzip is None:
        pytest.skip("isal is not installed: the standard module is the only path")
    p = tmp_path / "reviews.jsonl.gz"
    p.write_bytes(DAMAGES[damage])
    fast = _read(p)
    monkeypatch.setattr(L, "_fast_gzip", None)
    standard = _read(p)
    assert fast == standard
    if damage in ("intact", "zero padding", "two members"):
        assert fast[1] == {}
    else:  # every damaged case is reported, after the lines read before the damage
        assert fast[1] == {"truncated": 1}


def test_fast_gzip_is_used_when_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if L._fast_gzip is None:
        pytest.skip("isal is not installed")
    opened = []
    real = L._fast_gzip.GzipFile

    def spy(*args: object, **kwargs: object) -> object:
        opened.append(kwargs.get("fileobj"))
        return real(*args, **kwargs)

    monkeypatch.setattr(L._fast_gzip, "GzipFile", spy)
    p = tmp_path / "r.gz"
    p.write_bytes(_GOOD)
    assert b"".join(line + b"\n" for _, line in L.iter_lines(p, ReadReport(file=str(p)))) == _DATA
    assert len(opened) == 1
