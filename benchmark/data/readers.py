"""Entry points of the data layer: ``read_reviews`` / ``read_meta`` for any release and layout.

The layout of a file is *sniffed* from its first lines (gzip or plain, by magic bytes), never
taken from its name: JSON reviews vs a ratings-only CSV (2014, 2018), JSON lines vs the
official benchmark CSV (2023), the two 2018 metadata image layouts. A file of another release
or of the other kind (metadata given as reviews) raises :class:`WrongFormatError` saying what
it looks like, e.g. "looks like Amazon 2023 reviews (user_id/parent_asin), not 2018".

Both functions return the table and a :class:`ReadReport`; a warning summarises skipped lines.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from benchmark.data import amazon2014, amazon2018, amazon2023
from benchmark.data.lines import UTF8_BOM, head_lines
from benchmark.data.read_report import BadInputError, Plausibility, ReadReport, WrongFormatError
from benchmark.data.records import InteractionSink, LineError, parse_json, parse_json_or_literal
from benchmark.data.window import DateWindow

RELEASES: tuple[str, ...] = ("2014", "2018", "2023")
log = logging.getLogger(__name__)

_ITEM_LIKE = re.compile(r"^(B[0-9A-Z]{9}|[0-9]{9}[0-9X])$")
_USER_LIKE = re.compile(r"^A[0-9A-Z]{9,}$")


@dataclass(frozen=True)
class Sniffed:
    """What a file looks like: its kind, the releases it is compatible with, and a description."""

    kind: str  # "reviews" | "ratings_csv" | "benchmark_csv" | "meta" | "unknown"
    releases: tuple[str, ...]
    description: str
    item_first: bool | None = None  # ratings CSV column order, when it could be told


def sniff(path: str | os.PathLike[str], n: int = 20) -> Sniffed:
    """Guess the format of an Amazon file from its first ``n`` non-blank lines."""
    lines = [_strip_bom(ln) if k == 0 else ln for k, ln in enumerate(head_lines(path, n))]
    if not lines:
        return Sniffed("unknown", RELEASES, "an empty file")
    # Decide by the majority of the sniffed lines, not the first alone: one malformed (or cut)
    # first line must be a counted skip, not a "wrong format" for the whole file.
    n_records = sum(ln.lstrip().startswith(b"{") for ln in lines)
    if n_records * 2 >= len(lines) or (n_records and lines[0].lstrip().startswith(b"{")):
        return _sniff_records(lines)
    return _sniff_csv(lines)


def _strip_bom(line: bytes) -> bytes:
    return line[len(UTF8_BOM) :] if line.startswith(UTF8_BOM) else line


def _sniff_records(lines: list[bytes]) -> Sniffed:
    keys: set[str] = set()
    literal = False
    for line in lines:
        try:
            rec = parse_json(line)
        except LineError:
            try:
                rec = parse_json_or_literal(line)
            except LineError:
                continue
            literal = True
        keys |= set(rec)
    if not keys:
        return Sniffed("unknown", (), "lines that are neither JSON nor Python-literal records")
    if "user_id" in keys and ("parent_asin" in keys or "asin" in keys):
        return Sniffed("reviews", ("2023",), "Amazon 2023 reviews (user_id/parent_asin)")
    if "parent_asin" in keys:
        return Sniffed("meta", ("2023",), "Amazon 2023 metadata (parent_asin/images)")
    if "reviewerID" in keys:
        if "helpful" in keys and not keys & {"verified", "vote", "style"}:
            return Sniffed("reviews", ("2014",), "Amazon 2014 reviews (reviewerID/asin with 'helpful')")
        if keys & {"verified", "vote", "style"}:
            return Sniffed("reviews", ("2018",), "Amazon 2018 reviews (reviewerID/asin with 'verified')")
        return Sniffed("reviews", ("2014", "2018"), "Amazon 2014/2018 reviews (reviewerID/asin)")
    if "asin" in keys:
        if literal or keys & {"imUrl", "salesRank", "related", "categories"}:
            return Sniffed("meta", ("2014",), "Amazon 2014 metadata (Python literals with imUrl/categories)")
        if keys & {"imageURL", "imageURLHighRes"}:
            return Sniffed("meta", ("2018",), "Amazon 2018 metadata (imageURL/imageURLHighRes layout)")
        if keys & {"image", "main_cat", "category", "also_buy", "also_view"}:
            return Sniffed("meta", ("2018",), "Amazon 2018 metadata (single 'image' list layout)")
        return Sniffed("meta", ("2014", "2018"), "Amazon 2014/2018 metadata (asin)")
    return Sniffed("unknown", (), f"records with keys {sorted(keys)[:8]}, not an Amazon reviews/metadata file")


def _sniff_csv(lines: list[bytes]) -> Sniffed:
    first = lines[0].decode("utf-8", "replace").strip().split(",")
    if "user_id" in first and "parent_asin" in first:
        hist = " with history" if "history" in first else ""
        return Sniffed("benchmark_csv", ("2023",), f"an Amazon 2023 benchmark CSV (user_id,parent_asin,…){hist}")
    rows = [ln.decode("utf-8", "replace").strip().split(",") for ln in lines]
    rows = [r for r in rows if len(r) == 4 and _is_number(r[2])]
    # A ratings CSV has no header: most sniffed lines must be 4 fields with a numeric rating
    # (a few bad lines are the reader's business: counted, not a wrong format).
    if not rows or len(rows) * 2 < len(lines):
        return Sniffed("unknown", (), f"a text file whose first line is {lines[0][:80]!r}")
    item_first = sum(bool(_ITEM_LIKE.match(a) and _USER_LIKE.match(b)) for a, b, *_ in rows) / len(rows)
    user_first = sum(bool(_USER_LIKE.match(a) and _ITEM_LIKE.match(b)) for a, b, *_ in rows) / len(rows)
    if item_first >= 0.8:
        return Sniffed("ratings_csv", ("2018",), "an Amazon 2018 ratings CSV (item,user,rating,timestamp)", True)
    if user_first >= 0.8:
        return Sniffed("ratings_csv", ("2014",), "an Amazon 2014 ratings CSV (user,item,rating,timestamp)", False)
    return Sniffed("ratings_csv", ("2014", "2018"), "a header-less 4-column ratings CSV", None)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_release(release: str) -> str:
    release = str(release)
    if release not in RELEASES:
        raise ValueError(f"unknown release {release!r}; allowed: {', '.join(RELEASES)}")
    return release


#: what each release's reader accepts, said when a file is none of it
EXPECTED: dict[tuple[str, str], str] = {
    ("reviews", "2014"): "JSON reviews (reviewerID, asin, overall, unixReviewTime) or a header-less ratings CSV "
    "(user,item,rating,timestamp)",
    ("reviews", "2018"): "JSON reviews (reviewerID, asin, overall, unixReviewTime) or a header-less ratings CSV "
    "(item,user,rating,timestamp)",
    ("reviews", "2023"): "JSON lines (user_id, parent_asin, rating, timestamp) or a benchmark CSV with the header "
    "user_id,parent_asin,rating,timestamp",
    ("metadata", "2014"): "one JSON or Python-literal record per line keyed on asin (title, imUrl, categories, …)",
    ("metadata", "2018"): "JSON lines keyed on asin (title, category, imageURL/imageURLHighRes or image, …)",
    ("metadata", "2023"): "JSON lines keyed on parent_asin (title, categories, images, …)",
}


def _require(path: Path, sniffed: Sniffed, release: str, want: str) -> None:
    if sniffed.kind == "unknown":
        raise WrongFormatError(
            str(path),
            f"not a recognised Amazon {release} {want} file: expected {EXPECTED[want, release]}; "
            f"it looks like {sniffed.description}",
        )
    is_meta = sniffed.kind == "meta"
    if (want == "metadata") != is_meta:
        other = "read_meta / --meta" if is_meta else "read_reviews / --reviews"
        raise WrongFormatError(str(path), f"looks like {sniffed.description}, not {want}; use {other}")
    if release not in sniffed.releases:
        raise WrongFormatError(str(path), f"looks like {sniffed.description}, not {release}")


def read_reviews(
    path: str | os.PathLike[str],
    release: str,
    *,
    strict: bool = False,
    window: DateWindow | None = None,
    sink: InteractionSink | None = None,
    workers: int | None = 1,
    plausible: Plausibility | None = None,
) -> tuple[pd.DataFrame, ReadReport]:
    """Read a reviews / ratings file of ``release`` into the raw interaction table.

    Layouts: 2014 ``reviews_*.json(.gz)`` or ``ratings_*.csv``; 2018 ``*.json(.gz)`` or
    ``*.csv`` (item first); 2023 ``*.jsonl(.gz)`` or an official benchmark CSV. Timestamps
    come out in seconds. ``strict=True`` raises :class:`BadInputError` at the first bad line.
    ``window`` (:class:`~benchmark.data.window.DateWindow`) keeps only reviews dated inside it,
    applied record by record while the file streams (never the whole file in memory); its counts
    are in the report's ``filters``. The official benchmark CSVs take no window (their split is given).
    With a ``sink`` (e.g. :class:`benchmark.data.chunks.ParquetSink`) the rows are streamed to it
    in record batches with their file-order position ``pos`` and the returned table is empty:
    memory stays flat in the size of the file. With a sink, ``workers`` (``None``: one per core
    but one from 4 cores on)
    processes parse a large file's lines (:mod:`benchmark.data.parallel_read`): the same rows in
    the same order and the same report.
    Ratings and timestamps outside ``plausible`` (default :class:`Plausibility`) are
    ``implausible`` lines (a problem kind: counted, or the error with ``strict``).
    """
    release = _check_release(release)
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"reviews file not found: {p}")
    s = sniff(p)
    _require(p, s, release, "reviews")
    report = ReadReport(
        file=str(p), release=release, layout=s.description, strict=strict, plausible=plausible or Plausibility()
    )
    if release in ("2014", "2018") and s.kind == "reviews":
        df = amazon2014.read_reviews_json(p, report, window, sink, workers)
    elif release == "2014" and s.kind == "ratings_csv":
        df = amazon2014.read_ratings_csv(p, report, window=window, sink=sink, workers=workers)
    elif release == "2018" and s.kind == "ratings_csv":
        df = amazon2018.read_ratings_csv(p, report, window, sink, workers)
    elif release == "2023" and s.kind == "reviews":
        df = amazon2023.read_reviews_jsonl(p, report, window, sink, workers)
    elif release == "2023" and s.kind == "benchmark_csv":
        if window is not None:
            raise ValueError(f"{p}: an official benchmark CSV is a given split; it takes no date window")
        df = amazon2023.read_benchmark_csv(p, report, sink)
    else:  # pragma: no cover - _require covers every combination
        raise WrongFormatError(str(p), f"looks like {s.description}; no {release} reader for it")
    report.log_summary(log)
    return df, report


def read_meta(
    path: str | os.PathLike[str], release: str, *, strict: bool = False, items: Collection[str] | None = None
) -> tuple[pd.DataFrame, ReadReport]:
    """Read a metadata file of ``release`` into the raw catalogue (one row per item).

    HTML is cleaned from text fields and duplicate items are resolved deterministically
    (see :class:`~benchmark.data.records.CatalogueBuilder`); both are counted in the report.
    ``items``: read only these item ids (the lines of other items are skipped unparsed beyond
    their id and counted in the report's ``filters``), so a split that needs a fraction of a
    multi-million-item catalogue never holds the rest.
    """
    release = _check_release(release)
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"metadata file not found: {p}")
    s = sniff(p)
    _require(p, s, release, "metadata")
    report = ReadReport(file=str(p), release=release, layout=s.description, strict=strict)
    reader = {"2014": amazon2014.read_meta, "2018": amazon2018.read_meta, "2023": amazon2023.read_meta}[release]
    df = reader(p, report, items)
    report.log_summary(log)
    return df, report


__all__ = [
    "read_reviews",
    "read_meta",
    "sniff",
    "Sniffed",
    "Plausibility",
    "RELEASES",
    "BadInputError",
    "WrongFormatError",
    "ReadReport",
]
