"""Interaction filters on the raw schema (``user``, ``item``, ``rating``, ``timestamp``).

Every filter returns the kept rows **in their input order** (the ``paper`` protocol draws one
random number per row in file order, so order is part of the data) plus counts of what it
removed, which ``data prepare`` writes into ``summary.json``. Nothing is dropped silently.

Order used by ``data prepare``: dedupe → image-only → k-core, so the k-core property holds on
the final table.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

DEDUPE_RULES: tuple[str, ...] = ("earliest", "latest", "all")
DedupeRule = Literal["earliest", "latest", "all"]


def dedupe(df: pd.DataFrame, keep: DedupeRule = "earliest") -> tuple[pd.DataFrame, int]:
    """Keep one interaction per (user, item) pair, or all of them; returns ``(df, n_removed)``.

    ``earliest`` keeps the row with the smallest timestamp, ``latest`` the largest; ties are
    broken by file order (the first such row wins). ``all`` keeps every row (repeat
    interactions stay, ``n_removed`` is 0). Kept rows stay in input order.
    """
    if keep not in DEDUPE_RULES:
        raise ValueError(f"dedupe keep={keep!r} is not allowed; allowed: {', '.join(DEDUPE_RULES)}")
    if keep == "all" or df.empty:
        return df, 0
    pair = _pair_codes(df)
    ts = df["timestamp"].to_numpy(dtype=np.int64)
    pos = np.arange(len(df), dtype=np.int64)
    # lexsort: last key is primary. Within a pair, order by timestamp (asc or desc), then file order.
    order = np.lexsort((pos, ts if keep == "earliest" else -ts, pair))
    first = np.ones(len(order), dtype=bool)
    first[1:] = pair[order[1:]] != pair[order[:-1]]
    keep_mask = np.zeros(len(df), dtype=bool)
    keep_mask[order[first]] = True
    n_removed = int(len(df) - keep_mask.sum())
    return df.loc[keep_mask].reset_index(drop=True), n_removed


def n_duplicate_pairs(df: pd.DataFrame) -> int:
    """Number of rows that repeat an earlier (user, item) pair."""
    if df.empty:
        return 0
    pair = _pair_codes(df)
    return int(len(pair) - len(np.unique(pair)))


@dataclass
class KcoreIteration:
    """What one pass of the k-core removed."""

    iteration: int
    rows_removed: int
    users_removed: int
    items_removed: int
    rows_left: int
    users_left: int
    items_left: int


@dataclass
class KcoreStats:
    """Summary of an iterative k-core run (one entry per pass that changed something)."""

    user_k: int
    item_k: int
    rows_in: int
    rows_out: int
    users_in: int
    users_out: int
    items_in: int
    items_out: int
    iterations: list[KcoreIteration] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kcore(df: pd.DataFrame, user_k: int = 5, item_k: int = 5) -> tuple[pd.DataFrame, KcoreStats]:
    """Iterative k-core: drop users with < ``user_k`` and items with < ``item_k`` interactions
    (counting rows) until neither side changes. ``0`` (or 1) disables a side.

    Vectorised over integer codes (one factorisation, then ``bincount`` per pass), so it runs on
    millions of rows. Rows are counted as they are: with repeat interactions kept
    (``dedupe(keep="all")``) a repeat counts towards the threshold. Kept rows stay in input order.
    """
    for name, k in (("user_k", user_k), ("item_k", item_k)):
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 0:
            raise ValueError(f"kcore {name} must be an integer >= 0 (0 disables it); got {k!r}")
    u, n_users = _codes(df["user"])
    i, n_items = _codes(df["item"])
    alive = np.ones(len(df), dtype=bool)
    stats = KcoreStats(
        user_k=int(user_k),
        item_k=int(item_k),
        rows_in=len(df),
        rows_out=len(df),
        users_in=n_users,
        users_out=n_users,
        items_in=n_items,
        items_out=n_items,
    )
    users_left, items_left = n_users, n_items
    it = 0
    while True:
        it += 1
        ucount = np.bincount(u[alive], minlength=n_users)
        icount = np.bincount(i[alive], minlength=n_items)
        bad = np.zeros(len(df), dtype=bool)
        if user_k > 1:
            bad |= ucount[u] < user_k
        if item_k > 1:
            bad |= icount[i] < item_k
        bad &= alive
        n_bad = int(bad.sum())
        if n_bad == 0:
            break
        alive &= ~bad
        new_users = int(np.count_nonzero(np.bincount(u[alive], minlength=n_users)))
        new_items = int(np.count_nonzero(np.bincount(i[alive], minlength=n_items)))
        stats.iterations.append(
            KcoreIteration(
                iteration=it,
                rows_removed=n_bad,
                users_removed=users_left - new_users,
                items_removed=items_left - new_items,
                rows_left=int(alive.sum()),
                users_left=new_users,
                items_left=new_items,
            )
        )
        log.debug("k-core pass %d removed %d rows", it, n_bad)
        users_left, items_left = new_users, new_items
    stats.rows_out = int(alive.sum())
    stats.users_out, stats.items_out = users_left, items_left
    out = df if stats.rows_out == len(df) else df.loc[alive].reset_index(drop=True)
    return out, stats


def filter_items_with_image(df: pd.DataFrame, catalogue: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep interactions whose item has a non-null, non-empty ``image_url`` in ``catalogue``.

    Items missing from the catalogue count as having no image. Returns the kept rows (input
    order) and counts: ``rows_removed``, ``items_removed``, ``items_without_meta``.
    """
    if "item" not in catalogue.columns or "image_url" not in catalogue.columns:
        raise ValueError(f"image filter needs catalogue columns item and image_url; has {list(catalogue.columns)}")
    url = catalogue["image_url"]
    has = url.notna() & url.astype(str).str.strip().ne("")
    with_image = pd.Index(catalogue.loc[has.to_numpy(), "item"].astype(str).unique())
    known = pd.Index(catalogue["item"].astype(str).unique())
    items = df["item"].astype(str)
    keep = items.isin(with_image).to_numpy()
    removed_items = pd.unique(items[~keep].to_numpy())
    counts = {
        "rows_removed": int((~keep).sum()),
        "items_removed": int(len(removed_items)),
        "items_without_meta": int((~pd.Index(removed_items).isin(known)).sum()),
    }
    return df.loc[keep].reset_index(drop=True), counts


def _codes(col: pd.Series) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(col, sort=False)
    return codes.astype(np.int64, copy=False), len(uniques)


def _pair_codes(df: pd.DataFrame) -> np.ndarray:
    u, _ = _codes(df["user"])
    i, n_items = _codes(df["item"])
    return u * max(1, n_items) + i
