"""A date window on review timestamps, applied while a reviews file is streamed.

``DateWindow(date_from, date_before)`` keeps reviews dated ``date_from ≤ date < date_before``,
the date being the **UTC** date of the review's timestamp (either bound may be open). It is
the filter of Align-MacridVAE's ``amazon_dataset.process_review_chunk`` (``min_date <=
date.fromtimestamp(obj['unixReviewTime']) < max_date``), except that ``date.fromtimestamp``
gives the *local* date of the machine that ran it; here the date is UTC, always.

Why the difference matters: the 2018 files stamp every review at 00:00 UTC of its date, so a
machine west of UTC sees each review one day *earlier* — the window then loses the reviews
dated ``date_from`` and gains those dated ``date_before``; east of UTC nothing moves. A
:class:`WindowTally` therefore counts, beside what it keeps and drops, the reviews a time-zone
shift anywhere in ``SHIFT_RANGE`` (UTC−12 h … UTC+14 h) would move across each edge, and that
count goes into the split's ``summary.json``.

Two ways to apply it, with identical results (tested):

- streaming — :meth:`WindowTally.admit` per record, called by
  :class:`benchmark.data.records.InteractionBuilder` while the file is read, so rows outside the
  window are never held (the full 2018 Clothing file has ~32M lines);
- on a table — :func:`filter_date_window` (a stage over the raw interaction schema, vectorised;
  the form an out-of-core engine ports as a ``WHERE`` clause plus the same counts).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

DAY = 86_400
#: time-zone offsets (seconds) a machine can have: UTC−12 h (Baker Island) to UTC+14 h (Kiribati)
SHIFT_RANGE: tuple[int, int] = (-12 * 3600, 14 * 3600)


def parse_date(value: str | dt.date | None, key: str = "date") -> dt.date | None:
    """``YYYY-MM-DD`` (or a ``date``) → ``date``; ``None`` stays ``None``; anything else is a ValueError naming ``key``."""
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{key}: {value!r} is not a date (YYYY-MM-DD)") from None


def utc_seconds(day: dt.date) -> int:
    """Unix seconds of 00:00 UTC on ``day``."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())


@dataclass(frozen=True)
class DateWindow:
    """Keep reviews whose UTC date is in ``[date_from, date_before)`` (``None`` = unbounded)."""

    date_from: dt.date | None = None
    date_before: dt.date | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "date_from", parse_date(self.date_from, "date_from"))
        object.__setattr__(self, "date_before", parse_date(self.date_before, "date_before"))
        if self.date_from and self.date_before and self.date_from >= self.date_before:
            raise ValueError(f"date window is empty: date_from {self.date_from} is not before {self.date_before}")

    @property
    def lo(self) -> int | None:
        """First second kept (00:00 UTC of ``date_from``), ``None`` if unbounded."""
        return utc_seconds(self.date_from) if self.date_from else None

    @property
    def hi(self) -> int | None:
        """First second no longer kept (00:00 UTC of ``date_before``), ``None`` if unbounded."""
        return utc_seconds(self.date_before) if self.date_before else None

    def mask(self, timestamps: np.ndarray) -> np.ndarray:
        """Vectorised :meth:`WindowTally.admit` without the counting."""
        ts = np.asarray(timestamps, dtype=np.int64)
        keep = np.ones(len(ts), dtype=bool)
        if self.lo is not None:
            keep &= ts >= self.lo
        if self.hi is not None:
            keep &= ts < self.hi
        return keep

    def to_dict(self) -> dict[str, Any]:
        return {
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_before": self.date_before.isoformat() if self.date_before else None,
            "timezone": "UTC",
            "rule": "date_from <= UTC date of the timestamp < date_before",
        }


@dataclass
class WindowTally:
    """Counts of a window applied to a stream of timestamps (see module docstring).

    ``start`` / ``end``: per edge, ``would_leave`` = kept reviews that a shift in
    :data:`SHIFT_RANGE` would date outside the window across that edge, ``would_enter`` =
    dropped reviews that a shift would bring in. With the 2018 files' midnight timestamps
    these are exactly the reviews dated ``date_from`` (leave, west of UTC) and ``date_before``
    (enter, west of UTC).
    """

    window: DateWindow
    kept: int = 0
    before: int = 0
    after: int = 0
    start: dict[str, int] = field(default_factory=lambda: {"would_leave": 0, "would_enter": 0})
    end: dict[str, int] = field(default_factory=lambda: {"would_leave": 0, "would_enter": 0})

    def __post_init__(self) -> None:
        inf = float("inf")
        west, east = SHIFT_RANGE  # west < 0 < east
        lo, hi = self.window.lo, self.window.hi
        # A review at t is dated by t + s for a shift s in [west, east].
        self._lo = -inf if lo is None else lo
        self._hi = inf if hi is None else hi
        self._lo_enter = inf if lo is None else lo - east  # t < lo and t + east >= lo
        self._lo_leave = -inf if lo is None else lo - west  # t >= lo and t + west < lo
        self._hi_leave = inf if hi is None else hi - east  # t < hi and t + east >= hi
        self._hi_enter = -inf if hi is None else hi - west  # t >= hi and t + west < hi

    def admit(self, t: int) -> bool:
        """Count ``t`` (Unix seconds) and say whether the window keeps it."""
        if t < self._lo:
            self.before += 1
            if t >= self._lo_enter:
                self.start["would_enter"] += 1
            return False
        if t >= self._hi:
            self.after += 1
            if t < self._hi_enter:
                self.end["would_enter"] += 1
            return False
        self.kept += 1
        if t < self._lo_leave:
            self.start["would_leave"] += 1
        if t >= self._hi_leave:
            self.end["would_leave"] += 1
        return True

    def add_array(self, timestamps: np.ndarray) -> np.ndarray:
        """:meth:`admit` for a whole array at once; returns the keep mask."""
        ts = np.asarray(timestamps, dtype=np.int64)
        below, above = ts < self._lo, ts >= self._hi
        keep = ~(below | above)
        self.before += int(below.sum())
        self.after += int(above.sum())
        self.kept += int(keep.sum())
        self.start["would_enter"] += int((below & (ts >= self._lo_enter)).sum())
        self.end["would_enter"] += int((above & (ts < self._hi_enter)).sum())
        self.start["would_leave"] += int((keep & (ts < self._lo_leave)).sum())
        self.end["would_leave"] += int((keep & (ts >= self._hi_leave)).sum())
        return keep

    def to_dict(self) -> dict[str, Any]:
        west, east = SHIFT_RANGE
        return {
            **self.window.to_dict(),
            "kept": self.kept,
            "before_window": self.before,
            "after_window": self.after,
            "timezone_shift_hours": [west / 3600, east / 3600],
            "timezone_sensitive": {"start": dict(self.start), "end": dict(self.end)},
        }


def filter_date_window(df: pd.DataFrame, window: DateWindow) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Keep the rows of a raw interaction table (``timestamp`` in seconds) inside ``window``.

    The table form of the streaming filter: same rule, same counts (``WindowTally.to_dict``);
    kept rows stay in input order.
    """
    tally = WindowTally(window)
    keep = tally.add_array(df["timestamp"].to_numpy(dtype=np.int64))
    out = df if keep.all() else df.loc[keep].reset_index(drop=True)
    return out, tally.to_dict()
