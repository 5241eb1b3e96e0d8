"""Interaction filters on the raw schema (``user``, ``item``, ``rating``, ``timestamp``).

Every filter returns the kept rows **in their input order** (the ``paper`` protocol draws one
random number per row in file order, so order is part of the data) plus counts of what it
removed, which ``data prepare`` writes into ``summary.json``. Nothing is dropped silently.

Order used by ``data prepare``: (date window, while reading) → dedupe → image-only → k-core, so
the k-core property holds on the final table (unless a limited number of k-core passes is asked
for, as the Align-MacridVAE recipe does; the stats then say what is left below k).

Each stage is a function over a DataFrame in the raw schema with its counts, so an out-of-core
engine can port it stage by stage: :func:`dedupe`, :func:`filter_items_with_image`,
:func:`kcore` (and :func:`benchmark.data.window.filter_date_window`, which the readers also
apply record by record while streaming).
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
#: the order of the two sides within one k-core pass (see :func:`kcore`)
KCORE_ORDERS: tuple[str, ...] = ("simultaneous", "items-first", "users-first")


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
    order: str = "simultaneous"
    passes: int | None = None
    #: users / items left with fewer than k rows (0 for a converged k-core; a pass limit can leave some)
    users_below_k: int = 0
    items_below_k: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def kcore(
    df: pd.DataFrame,
    user_k: int = 5,
    item_k: int = 5,
    *,
    passes: int | None = None,
    order: str = "simultaneous",
) -> tuple[pd.DataFrame, KcoreStats]:
    """K-core on the raw interaction table: drop users with < ``user_k`` and items with
    < ``item_k`` interactions (counting rows). ``0`` (or 1) disables a side.

    ``passes``: ``None`` repeats until neither side changes (a true k-core; the result does not
    depend on ``order``); ``N`` stops after at most N passes, and may leave users or items
    below k (counted in ``users_below_k`` / ``items_below_k``). ``order`` within a pass:

    - ``simultaneous`` — both sides judged on the same counts, removed together;
    - ``items-first`` — items below ``item_k`` removed, then users re-counted and those below
      ``user_k`` removed (Align-MacridVAE's ``find_k_core``: ``delete_products_with_few_reviews``
      then ``delete_reviewers_with_few_reviews``);
    - ``users-first`` — the other way round.

    Vectorised over integer codes (one factorisation, then ``bincount`` per step), so it runs on
    millions of rows. Rows are counted as they are: with repeat interactions kept
    (``dedupe(keep="all")``) a repeat counts towards the threshold, as SQL ``COUNT(*)`` over
    reviews does. Kept rows stay in input order.
    """
    for name, k in (("user_k", user_k), ("item_k", item_k)):
        if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 0:
            raise ValueError(f"kcore {name} must be an integer >= 0 (0 disables it); got {k!r}")
    if passes is not None and (not isinstance(passes, (int, np.integer)) or isinstance(passes, bool) or passes < 1):
        raise ValueError(f"kcore passes must be an integer >= 1 (or None: until stable); got {passes!r}")
    if order not in KCORE_ORDERS:
        raise ValueError(f"kcore order {order!r} is not allowed; allowed: {', '.join(KCORE_ORDERS)}")
    u, n_users = _codes(df["user"])
    i, n_items = _codes(df["item"])
    sides = {"users": (u, n_users, int(user_k)), "items": (i, n_items, int(item_k))}
    steps = {
        "simultaneous": (("users", "items"),),
        "items-first": (("items",), ("users",)),
        "users-first": (("users",), ("items",)),
    }[order]
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
        order=order,
        passes=None if passes is None else int(passes),
    )
    users_left, items_left = n_users, n_items
    it = 0
    while passes is None or it < passes:
        it += 1
        n_bad = 0
        for step in steps:
            bad = np.zeros(len(df), dtype=bool)
            for side in step:  # sides of one step are judged on the same counts
                codes, n, k = sides[side]
                if k > 1:
                    bad |= np.bincount(codes[alive], minlength=n)[codes] < k
            bad &= alive
            alive &= ~bad
            n_bad += int(bad.sum())
        if n_bad == 0:
            break
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
    stats.users_below_k = _below_k(u[alive], n_users, user_k)
    stats.items_below_k = _below_k(i[alive], n_items, item_k)
    out = df if stats.rows_out == len(df) else df.loc[alive].reset_index(drop=True)
    return out, stats


def _below_k(codes: np.ndarray, n: int, k: int) -> int:
    """How many of the ids still present have fewer than ``k`` rows."""
    if k <= 1:
        return 0
    counts = np.bincount(codes, minlength=n)
    return int(((counts > 0) & (counts < k)).sum())


def image_items(catalogue: pd.DataFrame) -> tuple[pd.Index, pd.Index]:
    """The catalogue's distinct item ids (as strings, in order of first appearance) and those
    with a non-null, non-blank ``image_url`` — the image filter's rule, shared by
    :func:`filter_items_with_image` and the out-of-core engine. ValueError when the catalogue
    lacks the ``item`` or ``image_url`` column."""
    if "item" not in catalogue.columns or "image_url" not in catalogue.columns:
        raise ValueError(f"image filter needs catalogue columns item and image_url; has {list(catalogue.columns)}")
    url = catalogue["image_url"]
    has = url.notna() & url.astype(str).str.strip().ne("")
    known = pd.Index(catalogue["item"].astype(str).unique())
    with_image = pd.Index(catalogue.loc[has.to_numpy(), "item"].astype(str).unique())
    return known, with_image


def filter_items_with_image(df: pd.DataFrame, catalogue: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Keep interactions whose item has a non-null, non-empty ``image_url`` in ``catalogue``.

    Items missing from the catalogue count as having no image. Returns the kept rows (input
    order) and counts: ``rows_removed``, ``items_removed``, ``items_without_meta``.
    """
    known, with_image = image_items(catalogue)
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
