"""The interaction filters of ``data prepare`` in SQL over integer-coded rows — the out-of-core
twins of :mod:`benchmark.filtering` (which stays the in-memory reference the identity tests
compare against).

Tables hold ``pos`` (the row's file-order position among the rows read), ``u``/``i`` (user and
item codes whose order is the order of the original id strings, see
:func:`benchmark.prepare.engine.ingest.encode`), ``rating`` and ``timestamp``. Every function
creates a new table from ``src`` and returns its name and the counts the in-memory filter
reports; the rule of each (ties, order) is the in-memory one, restated where it matters.
"""

from __future__ import annotations

import logging
from typing import Any

from benchmark.filtering import DEDUPE_RULES, KcoreIteration, KcoreStats
from benchmark.prepare.engine.workspace import Workspace

log = logging.getLogger(__name__)


def counts(ws: Workspace, table: str) -> dict[str, int]:
    """Rows, distinct users and distinct items of ``table`` (``files.counts`` of a frame)."""
    rows, users, items = ws.sql(f"SELECT count(*), count(DISTINCT u), count(DISTINCT i) FROM {table}")[0]
    return {"rows": int(rows), "users": int(users), "items": int(items)}


def n_rows(ws: Workspace, table: str) -> int:
    return int(ws.scalar(f"SELECT count(*) FROM {table}"))


def dedupe(ws: Workspace, src: str, keep: str, dst: str = "deduped") -> tuple[str, int]:
    """One row per (user, item): ``earliest`` keeps the smallest timestamp, ``latest`` the
    largest, ties to the first row in file order (smallest ``pos``); ``all`` keeps every row.
    Returns ``(table, rows removed)``."""
    if keep not in DEDUPE_RULES:
        raise ValueError(f"dedupe keep={keep!r} is not allowed; allowed: {', '.join(DEDUPE_RULES)}")
    if keep == "all":
        return src, 0
    # arg_min over the (timestamp, pos) pair: one hash aggregate (it spills), no window sort
    key = "timestamp" if keep == "earliest" else "-timestamp"
    ws.sql(
        f"CREATE OR REPLACE TABLE {dst} AS SELECT * FROM {src} "
        f"WHERE pos IN (SELECT arg_min(pos, ({key}, pos)) FROM {src} GROUP BY u, i)"
    )
    return dst, n_rows(ws, src) - n_rows(ws, dst)


def image_filter(ws: Workspace, src: str, dst: str = "with_image") -> tuple[str, dict[str, int]]:
    """Rows whose item is in ``img_items`` (catalogue items with an image URL); counts as
    :func:`benchmark.filtering.filter_items_with_image`: rows and items removed, and how many
    removed items the catalogue does not know (``cat_items``)."""
    ws.sql(f"CREATE OR REPLACE TABLE {dst} AS SELECT * FROM {src} WHERE i IN (SELECT i FROM img_items)")
    removed_rows = n_rows(ws, src) - n_rows(ws, dst)
    removed = f"(SELECT DISTINCT i FROM {src} WHERE i NOT IN (SELECT i FROM img_items))"
    items_removed = int(ws.scalar(f"SELECT count(*) FROM {removed}"))
    without_meta = int(ws.scalar(f"SELECT count(*) FROM {removed} r WHERE r.i NOT IN (SELECT i FROM cat_items)"))
    return dst, {"rows_removed": removed_rows, "items_removed": items_removed, "items_without_meta": without_meta}


def kcore(ws: Workspace, src: str, user_k: int, item_k: int, dst: str = "kcore") -> tuple[str, KcoreStats]:
    """Iterative k-core exactly as :func:`benchmark.filtering.kcore`: each pass counts users'
    and items' rows among the rows still alive and drops every row whose user has fewer than
    ``user_k`` or whose item has fewer than ``item_k`` (0 or 1 disables a side), until a pass
    drops nothing. A row dies only with its user or its item, so a pass keeps the rows whose
    user and item both pass the counts of the previous table."""
    for name, k in (("user_k", user_k), ("item_k", item_k)):
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise ValueError(f"kcore {name} must be an integer >= 0 (0 disables it); got {k!r}")
    start = counts(ws, src)
    stats = KcoreStats(
        user_k=user_k,
        item_k=item_k,
        rows_in=start["rows"],
        rows_out=start["rows"],
        users_in=start["users"],
        users_out=start["users"],
        items_in=start["items"],
        items_out=start["items"],
    )
    cur, left = src, start
    for it in range(1, 1 << 30):
        nxt = f"{dst}_{it % 2}"
        ws.sql(f"CREATE OR REPLACE TABLE {nxt} AS SELECT * FROM {cur} WHERE {_alive(cur, user_k, item_k)}")
        now = counts(ws, nxt)
        if now["rows"] == left["rows"]:
            ws.sql(f"DROP TABLE {nxt}")
            break
        stats.iterations.append(_iteration(it, left, now))
        log.debug("k-core pass %d removed %d rows", it, left["rows"] - now["rows"])
        if cur != src:
            ws.sql(f"DROP TABLE {cur}")
        cur, left = nxt, now
    stats.rows_out, stats.users_out, stats.items_out = left["rows"], left["users"], left["items"]
    return cur, stats


def _alive(table: str, user_k: int, item_k: int) -> str:
    conds = ["TRUE"]
    if user_k > 1:
        conds.append(f"u IN (SELECT u FROM {table} GROUP BY u HAVING count(*) >= {int(user_k)})")
    if item_k > 1:
        conds.append(f"i IN (SELECT i FROM {table} GROUP BY i HAVING count(*) >= {int(item_k)})")
    return " AND ".join(conds)


def _iteration(it: int, before: dict[str, Any], after: dict[str, Any]) -> KcoreIteration:
    return KcoreIteration(
        iteration=it,
        rows_removed=before["rows"] - after["rows"],
        users_removed=before["users"] - after["users"],
        items_removed=before["items"] - after["items"],
        rows_left=after["rows"],
        users_left=after["users"],
        items_left=after["items"],
    )
