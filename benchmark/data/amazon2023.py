"""Amazon 2023 release (Hou et al., 2024): reviews, metadata and the official benchmark CSVs.

Layouts
    ``{Cat}.jsonl(.gz)``       JSON lines: ``user_id``, ``parent_asin`` (the item; ``asin`` is the
                               variant), ``rating``, ``timestamp`` in **milliseconds** (→ seconds,
                               floor division)
    ``meta_{Cat}.jsonl(.gz)``  JSON lines keyed on ``parent_asin``: ``title``, ``description``
                               (list, joined with spaces), ``categories`` (list), ``store``,
                               ``details`` (dict), ``images`` (list of {thumb, large, hi_res,
                               variant}; the dict-of-lists form of the Hugging Face export is
                               accepted too)
    benchmark CSVs             header ``user_id,parent_asin,rating,timestamp[,history]``
                               (``5core/rating_only/{Cat}.csv``, ``{last_out,timestamp}[_w_his]/
                               {Cat}.{train,valid,test}.csv``), timestamps in milliseconds

Brand: ``store`` when non-empty, else ``details["Brand"]`` (or ``"brand"``/``"Manufacturer"``).
Best image: the first image whose ``variant`` is ``MAIN``, its ``hi_res`` else ``large``; when
there is none, the first image that has any URL (``hi_res`` > ``large`` > ``thumb``).
``image_urls`` lists one URL per image at its best size.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from typing import Any

import pandas as pd

from benchmark.data.lines import iter_lines
from benchmark.data.read_report import BadInputError, ReadReport
from benchmark.data.records import (
    CatalogueBuilder,
    InteractionBuilder,
    InteractionSink,
    LineError,
    flatten_categories,
    parse_json,
    read_into,
    run_lines,
    split_csv,
)
from benchmark.data.window import DateWindow

REVIEW_FIELDS = ("user_id", "parent_asin", "rating", "timestamp")
BENCHMARK_COLUMNS = ("user_id", "parent_asin", "rating", "timestamp")
MS_PER_SECOND = 1000


def review_handler(out: InteractionBuilder) -> Callable[[int, bytes], None]:
    """The line handler of ``{Cat}.jsonl`` (a module-level factory: parsing workers use it)."""

    def handle(lineno: int, line: bytes) -> None:
        rec = parse_json(line)
        g = rec.get
        out.add(lineno, g("user_id"), g("parent_asin"), g("rating"), g("timestamp"), REVIEW_FIELDS)

    return handle


def read_reviews_jsonl(
    path: str | os.PathLike[str],
    report: ReadReport,
    window: DateWindow | None = None,
    sink: InteractionSink | None = None,
    workers: int | None = 1,
) -> pd.DataFrame:
    """``{Cat}.jsonl(.gz)`` → raw interactions (timestamps converted to seconds; ``window``
    applied to the seconds, while streaming); with a sink and a large file, parsed by
    ``workers`` processes (:func:`~benchmark.data.records.read_into`)."""
    out = InteractionBuilder(report, ts_divisor=MS_PER_SECOND, window=window, sink=sink)
    read_into(path, report, out, review_handler, workers)
    return out.frame()


def read_benchmark_csv(
    path: str | os.PathLike[str], report: ReadReport, sink: InteractionSink | None = None
) -> pd.DataFrame:
    """An official benchmark CSV (header required; a ``history`` column is ignored) → raw interactions."""
    out = InteractionBuilder(report, ts_divisor=MS_PER_SECOND, sink=sink)
    lines = iter_lines(path, report)
    header_line = next(lines, None)
    if header_line is None:
        return out.frame()
    header = header_line[1].decode("utf-8", "replace").strip().split(",")
    missing = [c for c in BENCHMARK_COLUMNS if c not in header]
    if missing:
        raise BadInputError(
            str(path), header_line[0], "missing_field", f"benchmark CSV header {header} lacks {missing}"
        )
    report.add("header", header_line[0])  # read, but not data: accounted for, not kept
    pos = [header.index(c) for c in BENCHMARK_COLUMNS]
    n = len(header)

    def handle(lineno: int, line: bytes) -> None:
        fields = split_csv(line, n)
        out.add(lineno, *(fields[p] for p in pos), names=BENCHMARK_COLUMNS)

    run_lines(lines, report, handle)
    return out.frame()


def _images(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):  # {"hi_res": [...], "large": [...], ...} (HF dict-of-lists export)
        keys = [k for k, v in value.items() if isinstance(v, (list, tuple))]
        n = max((len(value[k]) for k in keys), default=0)
        return [{k: (value[k][i] if i < len(value[k]) else None) for k in keys} for i in range(n)]
    if isinstance(value, (list, tuple)):
        return [v for v in value if isinstance(v, dict)]
    return []


def _url(img: dict[str, Any], keys: tuple[str, ...]) -> str | None:
    for k in keys:
        v = img.get(k)
        if isinstance(v, str) and v.strip():
            return v
    return None


def pick_images(value: Any) -> tuple[str | None, list[str]]:
    """``(best image URL, one URL per image)`` from a 2023 ``images`` field (rule in the module doc)."""
    imgs = _images(value)
    urls = [u for u in (_url(i, ("hi_res", "large", "thumb")) for i in imgs) if u]
    best = None
    for img in imgs:
        if str(img.get("variant") or "").upper() == "MAIN":
            best = _url(img, ("hi_res", "large"))
            if best:
                break
    if best is None and urls:
        best = urls[0]
    return best, list(dict.fromkeys(urls))


def brand_of(rec: dict[str, Any]) -> str:
    store = rec.get("store")
    if isinstance(store, str) and store.strip():
        return store
    details = rec.get("details")
    if isinstance(details, dict):
        for k in ("Brand", "brand", "Manufacturer"):
            v = details.get(k)
            if isinstance(v, str) and v.strip():
                return v
    return ""


def read_meta(path: str | os.PathLike[str], report: ReadReport, items: Collection[str] | None = None) -> pd.DataFrame:
    """``meta_{Cat}.jsonl(.gz)`` → raw catalogue keyed on ``parent_asin``."""
    out = CatalogueBuilder(report, items)

    def handle(lineno: int, line: bytes) -> None:
        rec = parse_json(line)
        if not out.wanted(rec.get("parent_asin")):
            return
        if "images" in rec and rec["images"] is not None and not isinstance(rec["images"], (list, tuple, dict)):
            raise LineError("wrong_type", f"images must be a list, got {type(rec['images']).__name__}")
        best, urls = pick_images(rec.get("images"))
        out.add(
            lineno,
            rec.get("parent_asin"),
            title=rec.get("title"),
            description=rec.get("description"),
            brand=brand_of(rec),
            categories=flatten_categories(rec.get("categories")),
            image_urls=urls,
            image_url=best,
            item_field="parent_asin",
        )

    run_lines(iter_lines(path, report), report, handle)
    return out.frame()
