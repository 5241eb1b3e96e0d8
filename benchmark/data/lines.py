"""Streaming line reader for plain or gzip files (detected by magic bytes, not extension).

A truncated gzip stream (``EOFError``/``zlib.error``/``BadGzipFile`` mid-stream) does not lose
what was read: every complete line before the cut is yielded, and the cut is reported as
``truncated`` at the line number where reading stopped (the partial last line is not parsed).

Gzip is inflated by ISA-L (``isal``, about 4× zlib's speed: a third of the time of reading a
review file went to zlib) when it is installed. ISA-L hands out decoded data a MiB at a time and
drops the part-decoded MiB when a stream is damaged, so on any error the standard ``gzip``
module reads the file again, skips the bytes already handed out and continues to its own error:
what a damaged file yields (bytes, error type and message) is exactly the standard reader's.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from benchmark.data.read_report import BadInputError, ReadReport

try:
    from isal import igzip as _fast_gzip
except ImportError:  # no wheel for this platform: the standard module does it all, slower
    _fast_gzip = None

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
CHUNK = 1 << 20
#: files larger than this get a progress bar (bytes of the file on disk)
PROGRESS_MIN_BYTES = 64 << 20


def is_gzip(path: str | os.PathLike[str]) -> bool:
    """True when the file starts with the gzip magic bytes."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


def _chunks(raw: BinaryIO, gz: bool) -> Iterator[bytes]:
    if gz:
        yield from _gzip_blocks(raw)
    else:
        while block := raw.read(CHUNK):
            yield block


def _gzip_blocks(raw: BinaryIO) -> Iterator[bytes]:
    """The decoded bytes of the gzip file ``raw`` (positioned at its start), block by block."""
    handed_out = 0
    if _fast_gzip is not None:
        start = raw.tell()
        try:
            fast = _fast_gzip.GzipFile(fileobj=raw, mode="rb")
            while block := fast.read1(CHUNK):
                handed_out += len(block)
                yield block
            return
        except Exception:  # noqa: BLE001 - any damage: the standard reader below decides what it is
            raw.seek(start)
    # read1: one decompression step per call, so data decoded before a truncation point is
    # returned before the error (read(n) would discard its partial result).
    stream = gzip.GzipFile(fileobj=raw, mode="rb")
    while handed_out > 0:  # the same deflate data decodes to the same bytes: skip those already out
        skipped = len(stream.read1(min(handed_out, CHUNK)))
        if not skipped:
            raise EOFError("the standard gzip reader ended before the data ISA-L had decoded")
        handed_out -= skipped
    while block := stream.read1(CHUNK):
        yield block


def iter_line_chunks(path: str | os.PathLike[str], report: ReadReport) -> Iterator[tuple[int, list[bytes], bool]]:
    """Yield ``(number of the first line, raw lines, final)`` block by block (1-based numbers;
    lines without their newline, not yet cleaned: :func:`lines_of` applies the rules).

    ``final`` marks the last line of a file that does not end with a newline (it is yielded only
    when it is not blank). ``report.lines_read`` counts the lines of the blocks handed out; a
    truncated gzip stream ends the iteration after reporting ``truncated``.
    """
    p = Path(path)
    size = p.stat().st_size
    gz = is_gzip(p)
    lineno = 0
    rest = b""
    with (
        open(p, "rb") as raw,
        tqdm(total=size, unit="B", unit_scale=True, desc=p.name, disable=size < PROGRESS_MIN_BYTES, leave=False) as bar,
    ):
        last_pos = 0
        try:
            for block in _chunks(raw, gz):
                pos = raw.tell()  # goes back when a damaged gzip is read again (see _gzip_blocks)
                if pos > last_pos:
                    bar.update(pos - last_pos)
                    last_pos = pos
                parts = (rest + block).split(b"\n")
                rest = parts.pop()
                if parts:
                    report.lines_read = lineno + len(parts)
                    yield lineno + 1, parts, False
                    lineno += len(parts)
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError) as exc:
            if not gz:
                raise
            # The bytes after the last newline belong to a line that was cut off.
            report.lines_read = lineno + (1 if rest else 0)
            report.add("truncated", lineno + 1, f"compressed stream ended early ({type(exc).__name__}: {exc})")
            return
    if rest.strip():
        report.lines_read = lineno + 1
        yield lineno + 1, [rest], True


def lines_of(first: int, parts: list[bytes], final: bool, report: ReadReport) -> Iterator[tuple[int, bytes]]:
    """The ``(line_number, line)`` pairs of one block of :func:`iter_line_chunks`: a BOM on line 1
    removed (encoding, not content), one ``\\r`` line end removed, blank lines counted as ``blank``
    and skipped."""
    lineno = first - 1
    for line in parts:
        lineno += 1
        if lineno == 1 and line.startswith(UTF8_BOM):
            line = line[len(UTF8_BOM) :]
        if final:  # a last line without a newline (known not to be blank)
            yield lineno, line.rstrip(b"\r")
            continue
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip():
            report.add("blank", lineno)
            continue
        yield lineno, line


def iter_lines(path: str | os.PathLike[str], report: ReadReport) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line_number, line_bytes)`` (1-based, without the newline) of a plain or gz file.

    ``report.lines_read`` is kept up to date. Blank lines are counted as ``blank`` and not
    yielded. A truncated gzip stream ends the iteration after reporting ``truncated``.
    """
    for first, parts, final in iter_line_chunks(path, report):
        yield from lines_of(first, parts, final, report)


#: the longest first line the sniffer reads before giving up (real metadata lines reach several MiB)
SNIFF_MAX_LINE_BYTES = 256 << 20


def head_lines(
    path: str | os.PathLike[str], n: int = 20, max_bytes: int = 1 << 20, max_line_bytes: int = SNIFF_MAX_LINE_BYTES
) -> list[bytes]:
    """The first ``n`` non-blank lines (for format sniffing); tolerant of truncation.

    Reading stops after ``n`` lines, or after ``max_bytes`` once at least one line is complete:
    ``max_bytes`` bounds the sample, never a line, so a first line over ``max_bytes`` is still
    sniffed whole. Only a first line over ``max_line_bytes`` is refused (:class:`BadInputError`).
    """
    gz = is_gzip(path)
    blocks: list[bytes] = []
    size = newlines = 0
    cut = False
    with open(path, "rb") as raw:
        try:
            for block in _chunks(raw, gz):
                blocks.append(block)
                size += len(block)
                newlines += block.count(b"\n")
                if newlines >= n or (size >= max_bytes and newlines) or size >= max_line_bytes:
                    cut = True
                    break
        except (EOFError, zlib.error, gzip.BadGzipFile, OSError):
            cut = True
    buf = b"".join(blocks)
    segments = buf.split(b"\n")
    if cut and len(segments) > 1:
        segments.pop()  # possibly a partial line
    elif cut and size >= max_line_bytes:
        raise BadInputError(str(path), 1, "malformed", f"first line is longer than {max_line_bytes} bytes")
    out: list[bytes] = []
    for line in segments:
        if line.strip():
            out.append(line.rstrip(b"\r"))
        if len(out) >= n:
            break
    return out
