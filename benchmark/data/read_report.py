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
Note kinds
    ``html_cleaned``   HTML tags/entities were removed from an item's text fields
    ``blank``          an empty line
    ``repeat``         a metadata line identical, in every field the catalogue keeps, to one
                       already read for that item (the 2018 metadata repeats many such lines;
                       nothing is lost, so ``strict`` does not stop on it)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import BadInputError, WrongFormatError

PROBLEM_KINDS: tuple[str, ...] = ("malformed", "wrong_type", "missing_field", "empty_id", "truncated", "duplicate")
NOTE_KINDS: tuple[str, ...] = ("html_cleaned", "blank", "repeat")
MAX_EXAMPLES = 5

log = logging.getLogger(__name__)

__all__ = ["BadInputError", "NOTE_KINDS", "PROBLEM_KINDS", "ReadReport", "WrongFormatError"]


@dataclass
class ReadReport:
    """Per-file account of what a reader read, kept and skipped."""

    file: str
    release: str = ""
    layout: str = ""
    strict: bool = False
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
