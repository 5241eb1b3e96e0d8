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
from collections.abc import Iterator
from typing import Any

import numpy as np

from benchmark.filtering import DEDUPE_RULES, KCORE_ORDERS, KcoreIteration, KcoreStats
from benchmark.prepare.engine.workspace import Workspace, stream

#: rows per chunk when the k-core passes stream the (user, item) codes
KCORE_CHUNK = 1 << 22
#: bytes per row of the k-core's held codes (two int32)
HELD_ROW_BYTES = 8

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
    Returns ``(table, rows removed)``. Repeats are rare in the releases, so the rule is applied
    to the rows of repeated pairs only (one hash aggregate finds them) and the losers are cut."""
    if keep not in DEDUPE_RULES:
        raise ValueError(f"dedupe keep={keep!r} is not allowed; allowed: {', '.join(DEDUPE_RULES)}")
    if keep == "all":
        return src, 0
    order = "timestamp" if keep == "earliest" else "timestamp DESC"
    ws.sql(
        "CREATE OR REPLACE TABLE dup_losers AS SELECT pos FROM (SELECT pos, row_number() OVER "
        f"(PARTITION BY u, i ORDER BY {order}, pos) AS k FROM {src} WHERE (u, i) IN "
        f"(SELECT u, i FROM {src} GROUP BY u, i HAVING count(*) > 1)) WHERE k > 1"
    )
    removed = n_rows(ws, "dup_losers")
    if removed == 0:
        return src, 0
    ws.sql(f"CREATE OR REPLACE TABLE {dst} AS SELECT * FROM {src} WHERE pos NOT IN (SELECT pos FROM dup_losers)")
    return dst, removed


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


def kcore(
    ws: Workspace,
    src: str,
    user_k: int,
    item_k: int,
    *,
    passes: int | None = None,
    order: str = "simultaneous",
    dst: str = "kcore",
) -> tuple[str, KcoreStats]:
    """K-core exactly as :func:`benchmark.filtering.kcore`: each step of a pass counts users' and
    items' rows among the rows still alive and drops every row whose user (item) has fewer than
    ``user_k`` (``item_k``) rows (0 or 1 disables a side) — both sides in one step
    (``simultaneous``) or one after the other (``items-first``, ``users-first``) — until a pass
    drops nothing, or for at most ``passes`` passes.

    A row dies only with its user or its item, so the state is one flag per user and per item
    (memory in the number of ids, not of rows): a step streams the codes in chunks and counts
    with ``bincount``; the rows kept are cut out of ``src`` once, at the end. Once the rows still
    alive fit in an eighth of the memory budget (8 bytes a row), their codes are held and
    shrunk step by step instead of streaming ``src`` again (:class:`_AliveRows`).
    """
    for name, k in (("user_k", user_k), ("item_k", item_k)):
        if not isinstance(k, int) or isinstance(k, bool) or k < 0:
            raise ValueError(f"kcore {name} must be an integer >= 0 (0 disables it); got {k!r}")
    if passes is not None and (not isinstance(passes, int) or isinstance(passes, bool) or passes < 1):
        raise ValueError(f"kcore passes must be an integer >= 1 (or None: until stable); got {passes!r}")
    if order not in KCORE_ORDERS:
        raise ValueError(f"kcore order {order!r} is not allowed; allowed: {', '.join(KCORE_ORDERS)}")
    steps = {"simultaneous": (("u", "i"),), "items-first": (("i",), ("u",)), "users-first": (("u",), ("i",))}[order]
    alive = {"u": np.ones(n_rows(ws, "user_ids"), dtype=bool), "i": np.ones(n_rows(ws, "item_ids"), dtype=bool)}
    k_of = {"u": int(user_k), "i": int(item_k)}
    alive_rows = _AliveRows(ws, src, max_rows=ws.budget // 8 // HELD_ROW_BYTES)
    rows, counts = alive_rows.count(alive)
    left = _left(rows, counts)
    stats = KcoreStats(user_k, item_k, rows, rows, left["users"], left["users"], left["items"], left["items"])
    stats.order, stats.passes = order, passes
    it = 0
    while passes is None or it < passes:
        it += 1
        before = left
        for step in steps:  # the sides of one step are judged on the same counts
            for side in step:
                if k_of[side] > 1:
                    alive[side] &= counts[side] >= k_of[side]
            rows, counts = alive_rows.count(alive)
        left = _left(rows, counts)
        if left["rows"] == before["rows"]:
            break
        stats.iterations.append(_iteration(it, before, left))
        log.debug("k-core pass %d removed %d rows", it, before["rows"] - left["rows"])
    stats.rows_out, stats.users_out, stats.items_out = left["rows"], left["users"], left["items"]
    stats.users_below_k = _below_k(counts["u"], user_k)
    stats.items_below_k = _below_k(counts["i"], item_k)
    if stats.rows_out == stats.rows_in:
        return src, stats
    ws.con.register("_alive_u", {"u": np.flatnonzero(alive["u"])})
    ws.con.register("_alive_i", {"i": np.flatnonzero(alive["i"])})
    try:
        ws.sql(
            f"CREATE OR REPLACE TABLE {dst} AS SELECT * FROM {src} "
            "WHERE u IN (SELECT u FROM _alive_u) AND i IN (SELECT i FROM _alive_i)"
        )
    finally:
        ws.con.unregister("_alive_u")
        ws.con.unregister("_alive_i")
    return dst, stats


def _left(rows: int, counts: dict[str, np.ndarray]) -> dict[str, int]:
    return {"rows": rows, "users": int(np.count_nonzero(counts["u"])), "items": int(np.count_nonzero(counts["i"]))}


def _below_k(counts: np.ndarray, k: int) -> int:
    """Ids still present with fewer than ``k`` rows (a pass limit can leave some)."""
    return 0 if k <= 1 else int(((counts > 0) & (counts < k)).sum())


class _AliveRows:
    """The ``(u, i)`` codes of the rows of ``src`` whose user and item are alive, counted per
    user and per item. Streamed from ``src`` while they are many; held in memory (int32) from
    the first count where at most ``max_rows`` survive, then only shrunk: a k-core mostly drops
    rows in its first steps, and each later step otherwise re-read every row of ``src``."""

    def __init__(self, ws: Workspace, src: str, max_rows: int) -> None:
        self.ws, self.src, self.max_rows = ws, src, max_rows
        self.held: tuple[np.ndarray, np.ndarray] | None = None

    def count(self, alive: dict[str, np.ndarray]) -> tuple[int, dict[str, np.ndarray]]:
        """Rows alive under ``alive`` (flags per user / item code) and their counts per code."""
        n_u, n_i = len(alive["u"]), len(alive["i"])
        counts = {"u": np.zeros(n_u, dtype=np.int64), "i": np.zeros(n_i, dtype=np.int64)}
        # int32 codes halve the held memory; ids beyond int32 (2^31 users) are never held
        kept: list[tuple[np.ndarray, np.ndarray]] | None = [] if max(n_u, n_i) < 2**31 else None
        rows = 0
        for u, i in [self.held] if self.held is not None else self._streamed():
            keep = alive["u"][u] & alive["i"][i]
            u, i = u[keep], i[keep]
            rows += len(u)
            counts["u"] += np.bincount(u, minlength=n_u)
            counts["i"] += np.bincount(i, minlength=n_i)
            if kept is not None and rows <= self.max_rows:
                kept.append((u.astype(np.int32, copy=False), i.astype(np.int32, copy=False)))
            else:
                kept = None
        if kept is not None:
            self.held = kept[0] if len(kept) == 1 else _joined(kept)  # one part (held rows): no copy
        return rows, counts

    def _streamed(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for batch in stream(self.ws, f"SELECT u, i FROM {self.src}", batch_rows=KCORE_CHUNK):
            yield batch.column(0).to_numpy(), batch.column(1).to_numpy()


def _joined(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """The ``(u, i)`` parts as one pair of int32 arrays (empty when there are none)."""
    empty = [np.zeros(0, np.int32)]
    return np.concatenate([p[0] for p in parts] or empty), np.concatenate([p[1] for p in parts] or empty)


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
