"""Raw files into the engine: the streaming reader writes Parquet, DuckDB codes the ids.

:func:`read_reviews_into` runs the release reader (every bad line counted with its number, as
ever) with a :class:`~benchmark.data.chunks.ParquetSink`, so the reader holds one record batch at
a time. :func:`encode` then gives every user and item an integer code whose order is the order
of the id strings (DuckDB compares strings byte-wise, which for UTF-8 is the code-point order
Python's ``sorted`` uses): the later stages work on fixed-width integers, and a split's dense
ids — sorted original ids — are ranks of the codes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pyarrow as pa

from benchmark.data.chunks import ParquetSink
from benchmark.data.read_report import Plausibility, ReadReport
from benchmark.data.window import DateWindow
from benchmark.filtering import image_items
from benchmark.prepare.engine.workspace import Workspace

log = logging.getLogger(__name__)


def sql_path(path: str | Path) -> str:
    """``path`` as a SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def read_reviews_into(
    ws: Workspace,
    path: str | Path,
    release: str,
    *,
    strict: bool,
    workers: int | None = None,
    window: DateWindow | None = None,
    plausible: Plausibility | None = None,
) -> ReadReport:
    """Stream the reviews file into ``<tmp>/reviews.parquet`` (the date ``window`` applied while
    streaming; parsed by ``workers`` processes when large, ``None``: cores - 1 from 4 cores on) and code it
    into table ``raw``."""
    from benchmark.data.readers import read_reviews

    chunks = ws.path("reviews.parquet")
    with ParquetSink(chunks) as sink:
        _, report = read_reviews(
            path, release, strict=strict, window=window, sink=sink, workers=workers, plausible=plausible
        )
    log.info("read %d interactions from %s", report.rows_kept, path)
    encode(ws, chunks)
    chunks.unlink()
    return report


def encode(ws: Workspace, chunks: Path) -> None:
    """Tables ``user_ids(orig, u)``, ``item_ids(orig, i)`` (codes in id-string order) and
    ``raw(pos, u, i, rating, timestamp)``."""
    src = f"read_parquet({sql_path(chunks)})"
    for col, table, code in (("user", "user_ids", "u"), ("item", "item_ids", "i")):
        ws.sql(
            f"CREATE OR REPLACE TABLE {table} AS SELECT orig, (row_number() OVER (ORDER BY orig) - 1)::BIGINT AS {code} "
            f'FROM (SELECT DISTINCT "{col}" AS orig FROM {src})'
        )
    ws.sql(
        f"CREATE OR REPLACE TABLE raw AS SELECT r.pos, uu.u, ii.i, r.rating, r.timestamp FROM {src} r "
        'JOIN user_ids uu ON r."user" = uu.orig JOIN item_ids ii ON r.item = ii.orig'
    )


def register_catalogue(ws: Workspace, catalogue: pd.DataFrame | None) -> None:
    """Tables ``cat_items(i)`` (items the catalogue knows) and ``img_items(i)`` (those with a
    non-blank ``image_url``: :func:`benchmark.filtering.image_items`)."""
    known: pd.Index
    with_image: pd.Index
    if catalogue is None:
        known = with_image = pd.Index([], dtype=object)
    else:
        known, with_image = image_items(catalogue)
    for name, items in (("cat_items", known), ("img_items", with_image)):
        arrow = pa.table({"orig": pa.array(items.to_numpy(dtype=object), type=pa.string())})
        ws.con.register("_items_in", arrow)
        ws.sql(f"CREATE OR REPLACE TABLE {name} AS SELECT ii.i FROM _items_in c JOIN item_ids ii ON c.orig = ii.orig")
        ws.con.unregister("_items_in")
