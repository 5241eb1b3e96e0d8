"""Amazon 2014 release (McAuley et al., SIGIR 2015): reviews, ratings-only CSV, metadata.

Layouts
    ``reviews_{Cat}_5.json.gz``  one JSON object per line: ``reviewerID``, ``asin``, ``overall``,
                                 ``unixReviewTime`` (seconds), ``helpful``, …
    ``ratings_{Cat}.csv``        no header: ``user,item,rating,timestamp`` (seconds)
    ``meta_{Cat}.json.gz``       one *Python literal* per line (single quotes), parsed with
                                 ``ast.literal_eval`` (never ``eval``): ``asin``, ``title``,
                                 ``description`` (str), ``brand``, ``categories`` (list of lists,
                                 flattened in order without duplicates), ``imUrl`` (one image).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Collection

import pandas as pd

from benchmark.data.lines import iter_lines
from benchmark.data.read_report import ReadReport
from benchmark.data.records import (
    CatalogueBuilder,
    InteractionBuilder,
    InteractionSink,
    flatten_categories,
    parse_json_or_literal,
    read_into,
    run_lines,
    split_csv,
)
from benchmark.data.window import DateWindow

REVIEW_FIELDS = ("reviewerID", "asin", "overall", "unixReviewTime")


def review_handler(out: InteractionBuilder) -> Callable[[int, bytes], None]:
    """The line handler of the reviews JSON layout (a module-level factory: parsing workers use it)."""

    def handle(lineno: int, line: bytes) -> None:
        rec = parse_json_or_literal(line)
        g = rec.get
        out.add(lineno, g("reviewerID"), g("asin"), g("overall"), g("unixReviewTime"), REVIEW_FIELDS)

    return handle


def read_reviews_json(
    path: str | os.PathLike[str],
    report: ReadReport,
    window: DateWindow | None = None,
    sink: InteractionSink | None = None,
    workers: int | None = 1,
) -> pd.DataFrame:
    """``reviews_{Cat}[_5].json(.gz)`` → raw interactions (2014 and 2018 share this layout);
    ``window`` keeps only reviews dated inside it, while streaming. With a ``sink`` the rows go
    there batch by batch (see :class:`InteractionBuilder`), parsed by ``workers`` processes when
    the file is large (:func:`~benchmark.data.records.read_into`)."""
    out = InteractionBuilder(report, window=window, sink=sink)
    read_into(path, report, out, review_handler, workers)
    return out.frame()


def ratings_handler(out: InteractionBuilder, item_first: bool = False) -> Callable[[int, bytes], None]:
    """The line handler of a header-less ratings CSV (``item_first``: the 2018 column order)."""
    names = ("user", "item", "rating", "timestamp")

    def handle(lineno: int, line: bytes) -> None:
        a, b, rating, ts = split_csv(line, 4)
        user, item = (b, a) if item_first else (a, b)
        out.add(lineno, user, item, rating, ts, names=names)

    return handle


def read_ratings_csv(
    path: str | os.PathLike[str],
    report: ReadReport,
    item_first: bool = False,
    window: DateWindow | None = None,
    sink: InteractionSink | None = None,
    workers: int | None = 1,
) -> pd.DataFrame:
    """Header-less ratings CSV: ``user,item,rating,ts`` (2014) or ``item,user,rating,ts`` (2018)."""
    out = InteractionBuilder(report, window=window, sink=sink)
    read_into(path, report, out, functools.partial(ratings_handler, item_first=item_first), workers)
    return out.frame()


def read_meta(path: str | os.PathLike[str], report: ReadReport, items: Collection[str] | None = None) -> pd.DataFrame:
    """``meta_{Cat}.json(.gz)`` of 2014 → raw catalogue."""
    out = CatalogueBuilder(report, items)

    def handle(lineno: int, line: bytes) -> None:
        rec = parse_json_or_literal(line)
        if not out.wanted(rec.get("asin")):
            return
        im = rec.get("imUrl")
        urls = [im] if isinstance(im, str) and im.strip() else []
        out.add(
            lineno,
            rec.get("asin"),
            title=rec.get("title"),
            description=rec.get("description"),
            brand=rec.get("brand"),
            categories=flatten_categories(rec.get("categories")),
            image_urls=urls,
            item_field="asin",
        )

    run_lines(iter_lines(path, report), report, handle)
    return out.frame()
