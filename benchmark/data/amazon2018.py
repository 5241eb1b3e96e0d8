"""Amazon 2018 release (Ni et al., EMNLP 2019): reviews, ratings-only CSV, metadata.

Layouts
    ``{Cat}_5.json.gz`` / ``{Cat}.json.gz``  JSON lines: ``reviewerID``, ``asin``, ``overall``,
                                             ``unixReviewTime`` (seconds), ``verified``, ``style``, …
    ``{Cat}.csv``                            no header: ``item,user,rating,timestamp`` (note the order)
    ``meta_{Cat}.json.gz``                   JSON lines keyed on ``asin``: ``title``, ``description``
                                             (list of str, joined with spaces), ``brand``,
                                             ``category`` (list), and either ``imageURL`` +
                                             ``imageURLHighRes`` (metaFiles2) or the older single
                                             ``image`` list (metaFiles).

The metadata repeats some asins on several lines and many titles are HTML fragments; both
are handled (and counted) by :class:`~benchmark.data.records.CatalogueBuilder`: HTML is
cleaned from title, description, brand and categories, duplicates are resolved by "most
non-empty fields, then first line".

Images: ``image_urls`` holds one URL per image at the best size the line offers
(``imageURLHighRes`` when non-empty, else ``imageURL``, else ``image``); ``image_url`` is its
first entry.
"""

from __future__ import annotations

import os
from collections.abc import Collection

import pandas as pd

from benchmark.data import amazon2014
from benchmark.data.lines import iter_lines
from benchmark.data.read_report import ReadReport
from benchmark.data.records import (
    CatalogueBuilder,
    InteractionSink,
    flatten_categories,
    parse_json,
    run_lines,
    string_list,
)
from benchmark.data.window import DateWindow


def read_reviews_json(
    path: str | os.PathLike[str],
    report: ReadReport,
    window: DateWindow | None = None,
    sink: InteractionSink | None = None,
    workers: int | None = 1,
) -> pd.DataFrame:
    """``{Cat}[_5].json(.gz)`` → raw interactions."""
    return amazon2014.read_reviews_json(path, report, window, sink, workers)


def read_ratings_csv(
    path: str | os.PathLike[str],
    report: ReadReport,
    window: DateWindow | None = None,
    sink: InteractionSink | None = None,
    workers: int | None = 1,
) -> pd.DataFrame:
    """``{Cat}.csv`` (``item,user,rating,timestamp``) → raw interactions."""
    return amazon2014.read_ratings_csv(path, report, item_first=True, window=window, sink=sink, workers=workers)


def image_urls(rec: dict) -> list[str]:
    """Best-size URL per image for either metadata layout."""
    for key in ("imageURLHighRes", "imageURL", "image"):
        urls = string_list(rec.get(key))
        if urls:
            return urls
    return []


def read_meta(path: str | os.PathLike[str], report: ReadReport, items: Collection[str] | None = None) -> pd.DataFrame:
    """``meta_{Cat}.json(.gz)`` of 2018 (either image layout) → raw catalogue."""
    out = CatalogueBuilder(report, items)

    def handle(lineno: int, line: bytes) -> None:
        rec = parse_json(line)
        if not out.wanted(rec.get("asin")):
            return
        out.add(
            lineno,
            rec.get("asin"),
            title=rec.get("title"),
            description=rec.get("description"),
            brand=rec.get("brand"),
            categories=flatten_categories(rec.get("category")),
            image_urls=image_urls(rec),
            item_field="asin",
        )

    run_lines(iter_lines(path, report), report, handle)
    return out.frame()
