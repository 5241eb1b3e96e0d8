"""Table ``used`` → the split's files, written and fingerprinted without holding the rows.

Dense ids are the ranks of the user and item codes among the rows kept (codes are in id-string
order, so these are :meth:`Split.from_parts`' sorted-id dense ids). Each part, ``interactions``
and ``users`` are streamed from DuckDB into Parquet files (the schema pandas gives the same
frames, so :meth:`Split.load` reads back what an in-memory split would have saved); only the
item table (one row per kept item, with its catalogue fields) is built in memory. The
fingerprint is fed the very bytes :meth:`Split.compute_fingerprint` hashes, in the same order.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from benchmark.io import atomic_path, write_parquet
from benchmark.prepare.engine.workspace import Workspace, stream
from benchmark.split import FINGERPRINT_COLUMNS, PART_COLUMNS, PARTS, fingerprint_start, hash_ids, item_table

_STR = np.array(["x"], dtype=object)
#: what pandas writes for a split part / the user table (pandas metadata included)
PART_SCHEMA = pa.Schema.from_pandas(
    pd.DataFrame(
        {
            "user_id": np.zeros(1, "int64"),
            "item_id": np.zeros(1, "int64"),
            "rating": np.zeros(1, "float32"),
            "timestamp": np.zeros(1, "int64"),
            "orig_user_id": _STR,
            "orig_item_id": _STR,
        }
    ),
    preserve_index=False,
)
USER_SCHEMA = pa.Schema.from_pandas(
    pd.DataFrame({"user_id": np.zeros(1, "int64"), "orig_user_id": _STR}), preserve_index=False
)


def assign_dense_ids(ws: Workspace, permuted_seed: int | None = None) -> tuple[int, int]:
    """Tables ``uid(u, user_id)`` and ``iid(i, item_id)`` over the users and items of ``used``,
    and the view ``dense`` (``used`` with dense and original ids); returns (n_users, n_items).

    Dense ids follow the codes (= sorted original ids), or with ``permuted_seed`` the ``paper``
    protocol's ``ids: permuted`` (:func:`benchmark.protocols.make.permuted_ids`): the ids in order
    of first appearance (file order), permuted by a fresh ``default_rng(seed)`` for each side."""
    for code, table, dense in (("u", "uid", "user_id"), ("i", "iid", "item_id")):
        if permuted_seed is None:
            ws.sql(
                f"CREATE OR REPLACE TABLE {table} AS SELECT {code}, (row_number() OVER (ORDER BY {code}) - 1)::BIGINT "
                f"AS {dense} FROM (SELECT DISTINCT {code} FROM used)"
            )
            continue
        first_seen = ws.column(f"SELECT {code} FROM used GROUP BY {code} ORDER BY min(pos)")
        order = np.random.default_rng(permuted_seed).permutation(first_seen)
        ws.con.register("_order", pa.table({code: order, dense: np.arange(len(order), dtype=np.int64)}))
        try:
            ws.sql(f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM _order")
        finally:
            ws.con.unregister("_order")
    ws.sql(
        "CREATE OR REPLACE VIEW dense AS SELECT d.pos, d.label, uid.user_id, iid.item_id, d.rating, d.timestamp, "
        "uu.orig AS orig_user_id, ii.orig AS orig_item_id FROM used d JOIN uid USING (u) JOIN iid USING (i) "
        "JOIN user_ids uu USING (u) JOIN item_ids ii USING (i)"
    )
    return int(ws.scalar("SELECT count(*) FROM uid")), int(ws.scalar("SELECT count(*) FROM iid"))


def export(ws: Workspace, query: str, path: Path, schema: pa.Schema, params: Any = None) -> None:
    """Write ``query``'s rows (columns in ``schema`` order) to ``path`` atomically."""
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        for batch in stream(ws, query, params):
            writer.write_table(pa.Table.from_batches([batch]).cast(schema))


def part_query(label: int | None, order: tuple[str, ...]) -> str:
    where = f"WHERE label = {int(label)} " if label is not None else ""
    return f"SELECT {', '.join(PART_COLUMNS)} FROM dense {where}ORDER BY {', '.join(order)}, pos"


def write_tables(ws: Workspace, out: Path, catalogue: pd.DataFrame | None) -> pd.DataFrame:
    """The parts, ``interactions``, ``users`` and ``items`` parquet files; returns the item table."""
    saved_order = ("user_id", "timestamp", "item_id")  # Split.from_parts' order (ties: file order)
    for code, part in enumerate(PARTS):
        export(ws, part_query(code, saved_order), out / f"{part}.parquet", PART_SCHEMA)
    export(ws, part_query(None, saved_order), out / "interactions.parquet", PART_SCHEMA)
    users = "SELECT uid.user_id, uu.orig AS orig_user_id FROM uid JOIN user_ids uu USING (u) ORDER BY uid.user_id"
    export(ws, users, out / "users.parquet", USER_SCHEMA)
    orig = ws.column("SELECT ii.orig FROM iid JOIN item_ids ii USING (i) ORDER BY iid.item_id")
    items = item_table(np.asarray(orig, dtype=object), catalogue)
    write_parquet(out / "items.parquet", items)
    return items


def fingerprint(ws: Workspace, protocol: str, params: Mapping[str, Any], n_users: int, n_items: int) -> str:
    """The split's fingerprint, streamed (see :meth:`benchmark.split.Split.compute_fingerprint`)."""
    h = fingerprint_start(protocol, params, n_users, n_items)
    hash_ids(h, _column_chunks(ws, "SELECT uu.orig FROM uid JOIN user_ids uu USING (u) ORDER BY uid.user_id"))
    h.update(b"\x1e")
    hash_ids(h, _column_chunks(ws, "SELECT ii.orig FROM iid JOIN item_ids ii USING (i) ORDER BY iid.item_id"))
    cols = ", ".join(c for c, _ in FINGERPRINT_COLUMNS)
    with tempfile.TemporaryDirectory(dir=ws.tmp) as spool:
        for code, part in enumerate(PARTS):
            h.update(part.encode())
            query = f"SELECT {cols} FROM dense WHERE label = {code} ORDER BY user_id, item_id, timestamp, pos"
            _hash_columns(h, stream(ws, query), Path(spool))
    return h.hexdigest()


def _column_chunks(ws: Workspace, query: str) -> Iterator[list[str]]:
    for batch in stream(ws, query):
        yield batch.column(0).to_pylist()


def _hash_columns(h: Any, batches: Iterator[pa.RecordBatch], spool: Path) -> None:
    """Hash each column whole, in order, from one pass over the rows: the first column goes
    straight into ``h``, the others are spooled to files and hashed after it."""
    files = [open(spool / f"col{k}", "wb") for k in range(1, len(FINGERPRINT_COLUMNS))]  # noqa: SIM115
    try:
        for batch in batches:
            for k, (_, dtype) in enumerate(FINGERPRINT_COLUMNS):
                data = np.ascontiguousarray(batch.column(k).to_numpy(zero_copy_only=False).astype(dtype, copy=False))
                (h.update if k == 0 else files[k - 1].write)(data.tobytes())
    finally:
        for fh in files:
            fh.close()
    for k in range(1, len(FINGERPRINT_COLUMNS)):
        with open(spool / f"col{k}", "rb") as spooled:
            while block := spooled.read(1 << 20):
                h.update(block)


def part_counts(ws: Workspace) -> dict[str, tuple[int, int, int]]:
    """(rows, users, items) of each part of table ``used``, from one scan; an empty part is zeros."""
    query = "SELECT label, count(*), count(DISTINCT u), count(DISTINCT i) FROM used GROUP BY label"
    found = {int(code): (int(n), int(users), int(items)) for code, n, users, items in ws.sql(query)}
    return {part: found.get(code, (0, 0, 0)) for code, part in enumerate(PARTS)}


def split_summary(per_part: Mapping[str, tuple[int, int, int]], n_users: int, n_items: int) -> dict[str, Any]:
    """:meth:`benchmark.split.Split.summary` from :func:`part_counts`."""
    out: dict[str, Any] = {"n_users": n_users, "n_items": n_items, "parts": {}}
    total = 0
    for part in PARTS:
        n, users, items = per_part[part]
        out["parts"][part] = {
            "interactions": n,
            "users": users,
            "items": items,
            "density": n / max(1, n_users * n_items),
        }
        total += n
    out["interactions"] = total
    out["density"] = total / max(1, n_users * n_items)
    return out
