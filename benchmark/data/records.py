"""Shared record handling for the release readers: line parsing, field checks, table building.

Every check reports to a :class:`~benchmark.data.read_report.ReadReport` instead of dropping
a line silently. The builders produce the raw schemas of :mod:`benchmark.split`.
"""

from __future__ import annotations

import ast
import csv
import datetime
import json
import math
from collections.abc import Callable, Collection, Iterable
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa

from benchmark.data.read_report import ReadReport
from benchmark.data.text import clean_field
from benchmark.data.window import DateWindow, WindowTally
from benchmark.errors import BenchError

try:  # orjson is a drop-in speed-up for the hot loop; plain json is the fallback
    import orjson

    _json_loads: Callable[[bytes], Any] = orjson.loads
except ImportError:  # pragma: no cover
    _json_loads = json.loads


class LineError(BenchError, ValueError):
    """A line could not be used; ``kind`` is the report kind."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def parse_json(line: bytes) -> dict[str, Any]:
    """One JSON object per line; anything else is ``malformed``."""
    try:
        obj = _json_loads(line)
    except ValueError as exc:
        raise LineError("malformed", f"not valid JSON ({exc})") from None
    if not isinstance(obj, dict):
        raise LineError("malformed", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def parse_json_or_literal(line: bytes) -> dict[str, Any]:
    """JSON, or a Python literal (2014 metadata lines use single quotes).

    ``ast.literal_eval`` only accepts literals (no names, calls or operators), so a line can
    never run code.
    """
    try:
        obj = _json_loads(line)
    except ValueError:
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LineError("malformed", f"not UTF-8 ({exc})") from None
        try:
            obj = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc:
            raise LineError("malformed", f"neither JSON nor a Python literal ({type(exc).__name__}: {exc})") from None
    if not isinstance(obj, dict):
        raise LineError("malformed", f"expected a record (dict), got {type(obj).__name__}")
    return obj


def split_csv(line: bytes, n_fields: int | Iterable[int]) -> list[str]:
    """Split one CSV line (quotes honoured when present); wrong field count is ``malformed``."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LineError("malformed", f"not UTF-8 ({exc})") from None
    fields = next(csv.reader([text])) if '"' in text else text.split(",")
    allowed = {n_fields} if isinstance(n_fields, int) else set(n_fields)
    if len(fields) not in allowed:
        raise LineError(
            "malformed", f"expected {' or '.join(map(str, sorted(allowed)))} comma-separated fields, got {len(fields)}"
        )
    return fields


def as_id(value: Any, name: str) -> str:
    if value is None:
        raise LineError("missing_field", f"{name} is missing")
    if not isinstance(value, str):
        raise LineError("wrong_type", f"{name} must be a string, got {type(value).__name__} {value!r:.40}")
    if not value.strip():
        raise LineError("empty_id", f"{name} is empty")
    return value


def as_rating(value: Any, name: str) -> float:
    if value is None:
        raise LineError("missing_field", f"{name} is missing")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise LineError("wrong_type", f"{name} must be a number, got {type(value).__name__} {value!r:.40}")
    try:
        out = float(value)
    except ValueError:
        raise LineError("wrong_type", f"{name} must be a number, got {value!r:.40}") from None
    if not math.isfinite(out):
        raise LineError("wrong_type", f"{name} is not finite: {value!r:.40}")
    return out


def as_timestamp(value: Any, name: str) -> int:
    if value is None:
        raise LineError("missing_field", f"{name} is missing")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise LineError("wrong_type", f"{name} must be an integer, got {type(value).__name__} {value!r:.40}")
    if isinstance(value, int):
        return value
    try:
        out = float(value) if not (isinstance(value, str) and value.strip().lstrip("-").isdigit()) else int(value)
    except ValueError:
        raise LineError("wrong_type", f"{name} must be an integer, got {value!r:.40}") from None
    if isinstance(out, float):
        if not math.isfinite(out) or not out.is_integer():
            raise LineError("wrong_type", f"{name} must be a whole number, got {value!r:.40}")
        out = int(out)
    return out


#: the raw interaction schema as Arrow, with ``pos``: the row's place among the kept rows of its
#: file (0-based, file order) — the order the ``paper`` protocol draws its random numbers in
INTERACTION_SCHEMA = pa.schema(
    [
        ("pos", pa.int64()),
        ("user", pa.string()),
        ("item", pa.string()),
        ("rating", pa.float32()),
        ("timestamp", pa.int64()),
    ]
)
#: rows per record batch a streaming reader hands to its sink (a few tens of MiB of Python lists)
BATCH_ROWS = 262_144


class InteractionSink(Protocol):
    """Where a streaming reader puts its rows: one :data:`INTERACTION_SCHEMA` batch at a time."""

    def write(self, batch: pa.RecordBatch) -> None: ...


class InteractionBuilder:
    """Collects checked interactions; ``frame()`` gives the raw interaction table.

    With a ``sink`` the rows leave in record batches of ``batch_rows`` as they are read (so a
    reader's memory does not grow with the file) and ``frame()`` flushes the last batch and
    returns an empty table; without one every row is held and ``frame()`` returns them all.

    ``window``: a :class:`~benchmark.data.window.DateWindow` applied to each checked record
    (timestamps in seconds, after ``ts_divisor``) *before* it is kept, so a reader streaming a
    large file holds only the rows inside the window; the window's counts go into the report
    (``report.filters["date_window"]``). Rows outside the window are not problems: they are
    counted there, not as skipped lines.
    """

    def __init__(
        self,
        report: ReadReport,
        ts_divisor: int = 1,
        window: DateWindow | None = None,
        sink: InteractionSink | None = None,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self.report = report
        self.ts_divisor = ts_divisor
        self.window = window
        # bounds of ``report.plausible``, in the units of the file (before ``ts_divisor``)
        self.r_lo, self.r_hi = report.plausible.rating
        t_lo, t_hi = report.plausible.timestamp
        self.t_lo, self.t_hi = t_lo * ts_divisor, t_hi * ts_divisor + (ts_divisor - 1)
        self.tally = WindowTally(window) if window is not None else None
        self.sink = sink
        # without a sink the lists are never flushed: no batch limit
        self.batch_rows = batch_rows if sink is not None else -1
        self.flushed = 0
        self.users: list[str] = []
        self.items: list[str] = []
        self.ratings: list[float] = []
        self.timestamps: list[int] = []

    def add(
        self,
        lineno: int,
        user: Any,
        item: Any,
        rating: Any,
        timestamp: Any,
        names: tuple[str, str, str, str] = ("user", "item", "rating", "timestamp"),
    ) -> bool:
        """Check and keep one interaction; returns False (after reporting) when it is skipped."""
        tr = type(rating)
        # Fast path for the well-typed, plausible JSON record (almost every line); anything else
        # goes through the full checks below.
        if (
            type(user) is str
            and type(item) is str
            and type(timestamp) is int
            and (tr is float or tr is int)
            and user
            and item
            and not user.isspace()
            and not item.isspace()
            and rating - rating == 0  # False for NaN and ±inf
            and self.r_lo <= rating <= self.r_hi
            and self.t_lo <= timestamp <= self.t_hi
        ):
            ts = timestamp // self.ts_divisor if self.ts_divisor != 1 else timestamp
            if self.tally is not None and not self.tally.admit(ts):
                return False
            self.users.append(user)
            self.items.append(item)
            self.ratings.append(rating)
            self.timestamps.append(ts)
            if len(self.users) == self.batch_rows:
                self.flush()
            return True
        try:
            missing = [n for n, v in zip(names, (user, item, rating, timestamp)) if v is None]
            if missing:
                raise LineError("missing_field", f"missing {', '.join(missing)}")
            u = as_id(user, names[0])
            i = as_id(item, names[1])
            r = as_rating(rating, names[2])
            t = as_timestamp(timestamp, names[3])
            self._check_plausible(r, t, names)
        except LineError as exc:
            self.report.add(exc.kind, lineno, exc.detail)
            return False
        # floor division: milliseconds → whole seconds
        ts = t // self.ts_divisor if self.ts_divisor != 1 else t
        if self.tally is not None and not self.tally.admit(ts):
            return False
        self.users.append(u)
        self.items.append(i)
        self.ratings.append(r)
        self.timestamps.append(ts)
        if len(self.users) == self.batch_rows:
            self.flush()
        return True

    def flush(self) -> None:
        """Hand the rows held so far to the sink as one record batch (no-op without a sink)."""
        if self.sink is None or not self.users:
            return
        self._write(self.sink, self.columns())
        self.users, self.items, self.ratings, self.timestamps = [], [], [], []

    def columns(self) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
        """The rows held, as Arrow columns: users and items (string), ratings (float32),
        timestamps (int64) — :data:`INTERACTION_SCHEMA` but for ``pos``."""
        return (
            pa.array(self.users, type=pa.string()),
            pa.array(self.items, type=pa.string()),
            pa.array(np.asarray(self.ratings, dtype=np.float32)),
            pa.array(np.asarray(self.timestamps, dtype=np.int64)),
        )

    def append_arrays(self, users: pa.Array, items: pa.Array, ratings: pa.Array, timestamps: pa.Array) -> None:
        """Rows checked elsewhere (a parsing worker's :meth:`columns`), straight to the sink after the rows held."""
        if self.sink is None:
            raise ValueError("append_arrays needs a sink")
        self.flush()
        if len(users):
            self._write(self.sink, (users, items, ratings, timestamps))

    def _write(self, sink: InteractionSink, columns: tuple[pa.Array, pa.Array, pa.Array, pa.Array]) -> None:
        """One record batch to ``sink``: ``columns`` after ``pos``, which numbers on from the rows written."""
        n = len(columns[0])
        pos = pa.array(np.arange(self.flushed, self.flushed + n, dtype=np.int64))
        sink.write(pa.RecordBatch.from_arrays([pos, *columns], schema=INTERACTION_SCHEMA))
        self.flushed += n

    def _check_plausible(self, rating: float, timestamp: int, names: tuple[str, str, str, str]) -> None:
        """A rating or timestamp outside ``report.plausible`` is ``implausible`` (it would become
        ``inf`` in float32, overflow int64, or date a review millions of years away)."""
        if not self.r_lo <= rating <= self.r_hi:
            raise LineError(
                "implausible", f"{names[2]} {rating!r:.40} is outside the plausible range {self.r_lo:g}..{self.r_hi:g}"
            )
        if not self.t_lo <= timestamp <= self.t_hi:
            lo, hi = self.report.plausible.timestamp
            raise LineError(
                "implausible",
                f"{names[3]} {timestamp!r:.40} is outside the plausible range {_date(lo)}..{_date(hi)}",
            )

    def frame(self) -> pd.DataFrame:
        """The rows held in memory (all of them without a sink; none with one, after the last flush)."""
        self.flush()
        self.report.rows_kept = self.flushed + len(self.users)
        if self.tally is not None:
            self.report.filters["date_window"] = self.tally.to_dict()
        return pd.DataFrame(
            {
                "user": pd.Series(self.users, dtype=object),
                "item": pd.Series(self.items, dtype=object),
                "rating": np.asarray(self.ratings, dtype=np.float32),
                "timestamp": np.asarray(self.timestamps, dtype=np.int64),
            }
        )


def _date(seconds: int) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).date().isoformat()


def as_text(value: Any, sep: str = " ") -> str:
    """Free text from a str, a list of str (joined with ``sep``), a number; else ``""``."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return sep.join(as_text(v, sep) for v in value if v is not None and as_text(v, sep))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def flatten_categories(value: Any) -> list[str]:
    """Categories as a flat list, order kept, duplicates dropped (2014 nests lists of lists)."""
    out: list[str] = []

    def walk(v: Any) -> None:
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            for x in v:
                walk(x)

    walk(value)
    return out


def string_list(value: Any) -> list[str]:
    """Non-empty strings of a list (or a single string), order kept, duplicates dropped."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return []
    return list(dict.fromkeys(v for v in value if isinstance(v, str) and v.strip()))


_META_TEXT = ("title", "description", "brand")


class CatalogueBuilder:
    """Collects item metadata, cleans HTML and de-duplicates items deterministically.

    De-duplication rule (documented in the dataset cards): among the lines of one item, keep
    the one with the most non-empty fields among title, description, brand, categories and
    image_url (after cleaning); on a tie keep the earliest line. A later line identical to the
    kept one in every catalogue field is a ``repeat`` (a note: nothing is lost, and the 2018
    metadata is full of them); any other dropped line is a ``duplicate`` (a problem), reported
    at its own line number.
    """

    def __init__(self, report: ReadReport, items: Collection[str] | None = None) -> None:
        self.report = report
        self.items = items
        self.n_other = 0
        self.rows: list[dict[str, Any]] = []
        self.lines: list[int] = []
        self.scores: list[int] = []
        self.index: dict[str, int] = {}

    def wanted(self, item: Any) -> bool:
        """False (and counted) for an item outside ``items``, the ids the caller needs: the
        reader skips its line before any other work, so a catalogue of millions of items is
        never held when a split needs a fraction of them. Bad ids pass, for :meth:`add` to report."""
        if self.items is None or not isinstance(item, str) or item in self.items:
            return True
        self.n_other += 1
        return False

    def add(
        self,
        lineno: int,
        item: Any,
        *,
        title: Any = "",
        description: Any = "",
        brand: Any = "",
        categories: Iterable[str] = (),
        image_urls: Iterable[str] = (),
        image_url: str | None = None,
        item_field: str = "item",
    ) -> bool:
        try:
            item = as_id(item, item_field)
        except LineError as exc:
            self.report.add(exc.kind, lineno, exc.detail)
            return False
        changed = False
        row: dict[str, Any] = {"item": item}
        for name, value in (("title", title), ("description", description), ("brand", brand)):
            text, ch = clean_field(as_text(value))
            row[name] = text
            changed |= ch
        cats: list[str] = []
        for c in categories:
            text, ch = clean_field(c)
            changed |= ch
            if text:
                cats.append(text)
        row["categories"] = list(dict.fromkeys(cats))
        urls = list(dict.fromkeys(u for u in image_urls if isinstance(u, str) and u.strip()))
        row["image_urls"] = urls
        row["image_url"] = image_url if image_url else (urls[0] if urls else None)
        if changed:
            self.report.add("html_cleaned", lineno)
        score = sum(bool(row[k]) for k in _META_TEXT) + bool(row["categories"]) + bool(row["image_url"])
        prev = self.index.get(item)
        if prev is not None and row == self.rows[prev]:
            self.report.add("repeat", lineno, f"item {item} repeats line {self.lines[prev]}")
            return False
        if prev is None:
            self.index[item] = len(self.rows)
            self.rows.append(row)
            self.lines.append(lineno)
            self.scores.append(score)
            return True
        if score > self.scores[prev]:
            self.report.add(
                "duplicate", self.lines[prev], f"item {item} also on line {lineno} with more fields; kept that one"
            )
            self.rows[prev] = row
            self.lines[prev] = lineno
            self.scores[prev] = score
            return True
        self.report.add("duplicate", lineno, f"item {item} already read on line {self.lines[prev]}")
        return False

    def frame(self) -> pd.DataFrame:
        self.report.rows_kept = len(self.rows)
        if self.items is not None:
            self.report.filters["items"] = {"wanted": len(self.items), "lines_for_other_items": self.n_other}
        cols = ("item", "title", "description", "brand", "categories", "image_url", "image_urls")
        data = {c: [r[c] for r in self.rows] for c in cols}
        df = pd.DataFrame({c: pd.Series(data[c], dtype=object) for c in cols})
        return df


def read_into(
    path: Any,
    report: ReadReport,
    out: InteractionBuilder,
    factory: Callable[[InteractionBuilder], Callable[[int, bytes], None]],
    workers: int | None = 1,
) -> None:
    """Run a reader's line handler (``factory(out)``) over every line of ``path``: in this process,
    or — with a sink, ``workers`` other than 1 and a large file — in several
    (:mod:`benchmark.data.parallel_read`, same result). ``factory`` must be a module-level function."""
    from benchmark.data.lines import iter_lines
    from benchmark.data.parallel_read import read_parallel, use_parallel

    if out.sink is not None and workers != 1 and use_parallel(path, workers):
        read_parallel(path, report, out, factory, workers)
    else:
        run_lines(iter_lines(path, report), report, factory(out))


def run_lines(lines: Iterable[tuple[int, bytes]], report: ReadReport, handle: Callable[[int, bytes], None]) -> None:
    """Feed lines to ``handle``; a :class:`LineError` it raises is reported for that line."""
    for lineno, line in lines:
        try:
            handle(lineno, line)
        except LineError as exc:
            report.add(exc.kind, lineno, exc.detail)
