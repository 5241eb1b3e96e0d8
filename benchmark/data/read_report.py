"""Counted, reported handling of bad input lines (readers never drop a line silently).

A :class:`ReadReport` counts every line a reader could not use, per *kind*, and keeps the
first few line numbers of each kind so a user can look at them. With ``strict=True`` the
first *problem* raises :class:`BadInputError` instead. Some kinds are *notes* (a fix was
applied, nothing was lost: ``html_cleaned``, ``blank``); they are counted but never raise.

Problem kinds
    ``malformed``      the line is not valid JSON / Python literal / CSV, or not a record
    ``wrong_type``     a field has the wrong type (e.g. rating ``"abc"``, a list as an id)
    ``missing_field``  a required field is absent
    ``empty_id``       a user or item id is empty
    ``truncated``      the (gzip) stream ended early; what was read before is kept
    ``duplicate``      a second metadata line for an item that already has one and *disagrees*
                       with it in a kept field (one is kept, by the rule of ``CatalogueBuilder``)
    ``implausible``    a rating or timestamp of the right type outside the :class:`Plausibility`
                       bounds (e.g. rating ``1e39``, a timestamp in the year 37 million)
Note kinds
    ``html_cleaned``   HTML tags/entities were removed from an item's text fields
    ``blank``          an empty line
    ``repeat``         a metadata line identical, in every field the catalogue keeps, to one
                       already read for that item (the 2018 metadata repeats many such lines;
                       nothing is lost, so ``strict`` does not stop on it)
    ``header``         a CSV header line (read, not data)

Every line read is accounted for: ``lines_read == rows_kept + n_problems + blank + repeat + header``
(a truncated stream's cut-off line counts once, as ``truncated``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import BadInputError, ConfigError, WrongFormatError

PROBLEM_KINDS: tuple[str, ...] = (
    "malformed",
    "wrong_type",
    "missing_field",
    "empty_id",
    "implausible",
    "truncated",
    "duplicate",
)
NOTE_KINDS: tuple[str, ...] = ("html_cleaned", "blank", "repeat", "header")
MAX_EXAMPLES = 5

log = logging.getLogger(__name__)

__all__ = ["BadInputError", "NOTE_KINDS", "PROBLEM_KINDS", "Plausibility", "ReadReport", "WrongFormatError"]

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@dataclass(frozen=True)
class Plausibility:
    """Bounds (inclusive) of a plausible rating and timestamp; a value outside is ``implausible``.

    Defaults: ratings 1–5 (Amazon's stars, every release); timestamps (seconds, UTC) from
    1990-01-01 to 2100-01-01 — Amazon reviews start in 1995, and the bounds also keep every
    value far inside int64 (a timestamp of ``1e30`` or a year-37-million date is a bad line,
    not an overflow). Set per dataset with the ``plausible`` key of the dataset config
    (``{rating: [MIN, MAX], timestamp: [FIRST, LAST]}``; dates as ``YYYY-MM-DD`` or epoch seconds).
    """

    rating: tuple[float, float] = (1.0, 5.0)
    timestamp: tuple[int, int] = (631152000, 4102444800)  # 1990-01-01, 2100-01-01 (UTC)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None, path: str = "plausible") -> Plausibility:
        """Bounds from a config mapping (missing keys keep the defaults); errors name the key."""
        values = dict(values or {})
        unknown = sorted(set(values) - {"rating", "timestamp"})
        if unknown:
            raise ConfigError(f"{path}.{unknown[0]}: unknown key; allowed: rating, timestamp")
        out = cls()
        if "rating" in values:
            lo, hi = _pair(values["rating"], f"{path}.rating", float)
            out = cls(rating=(lo, hi), timestamp=out.timestamp)
        if "timestamp" in values:
            lo_t, hi_t = _pair(values["timestamp"], f"{path}.timestamp", _epoch_seconds)
            out = cls(rating=out.rating, timestamp=(int(lo_t), int(hi_t)))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"rating": list(self.rating), "timestamp": list(self.timestamp)}


def _pair(value: Any, path: str, convert: Any) -> tuple[Any, Any]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"{path}: expected [MIN, MAX], got {value!r}")
    try:
        lo, hi = convert(value[0]), convert(value[1])
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    if not lo <= hi:
        raise ConfigError(f"{path}: MIN must not exceed MAX, got {value!r}")
    return lo, hi


def _epoch_seconds(value: Any) -> int:
    """Epoch seconds from an int, a ``YYYY-MM-DD[THH:MM:SS]`` string or a date (UTC)."""
    if isinstance(value, bool):
        raise ValueError(f"expected a date or epoch seconds, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"expected a date (YYYY-MM-DD) or epoch seconds, got {value!r}") from None
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
        return int((aware - _EPOCH).total_seconds())
    if isinstance(value, dt.date):
        return int((dt.datetime(value.year, value.month, value.day, tzinfo=dt.timezone.utc) - _EPOCH).total_seconds())
    raise ValueError(f"expected a date (YYYY-MM-DD) or epoch seconds, got {value!r}")


@dataclass
class ReadReport:
    """Per-file account of what a reader read, kept and skipped."""

    file: str
    release: str = ""
    layout: str = ""
    strict: bool = False
    plausible: Plausibility = field(default_factory=Plausibility)
    """What the reader accepts as a rating / timestamp (a reading setting, like ``strict``)."""
    lines_read: int = 0
    rows_kept: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[int]] = field(default_factory=dict)
    details: dict[str, list[str]] = field(default_factory=dict)
    #: filters applied while reading (e.g. ``date_window``: its counts); rows they drop are not problems
    filters: dict[str, Any] = field(default_factory=dict)

    def add(self, kind: str, line: int | None, detail: str = "") -> None:
        """Record one occurrence of ``kind`` at ``line`` (raises in strict mode for problems)."""
        if kind not in PROBLEM_KINDS and kind not in NOTE_KINDS:
            raise ValueError(f"unknown report kind {kind!r}")
        if self.strict and kind in PROBLEM_KINDS:
            raise BadInputError(self.file, line, kind, detail)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        ex = self.examples.setdefault(kind, [])
        if len(ex) < MAX_EXAMPLES and line is not None:
            ex.append(int(line))
            if detail:
                self.details.setdefault(kind, []).append(f"line {line}: {detail[:200]}")

    @property
    def n_problems(self) -> int:
        """Lines skipped (or cut off) because of a problem kind."""
        return sum(n for k, n in self.counts.items() if k in PROBLEM_KINDS)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "release": self.release,
            "layout": self.layout,
            "plausible": self.plausible.to_dict(),
            "lines_read": self.lines_read,
            "rows_kept": self.rows_kept,
            "counts": dict(sorted(self.counts.items())),
            "first_lines": {k: list(v) for k, v in sorted(self.examples.items())},
            "details": {k: list(v) for k, v in sorted(self.details.items())},
            **({"filters": dict(self.filters)} if self.filters else {}),
        }

    def format(self) -> str:
        """A short human-readable summary, one line per kind."""
        head = f"{self.file} [{self.release} {self.layout}]: {self.lines_read} lines read, {self.rows_kept} rows kept"
        if not self.counts:
            return head + ", nothing skipped"
        rows = [head]
        for kind in sorted(self.counts):
            note = " (note)" if kind in NOTE_KINDS else ""
            lines = ", ".join(map(str, self.examples.get(kind, [])))
            more = ", …" if self.counts[kind] > len(self.examples.get(kind, [])) else ""
            rows.append(f"  {kind}{note}: {self.counts[kind]} (lines {lines}{more})")
        return "\n".join(rows)

    def log_summary(self, logger: logging.Logger | None = None) -> None:
        """Warn when lines were skipped; info otherwise."""
        logger = logger or log
        if self.n_problems:
            logger.warning("skipped input in %s", self.format())
        else:
            logger.info("%s", self.format())
