"""The split protocols in SQL: the out-of-core twins of :mod:`benchmark.protocols.make`.

Each protocol labels the rows of the filtered table train (0), valid (1) or test (2) into table
``used(pos, u, i, rating, timestamp, label)`` (rows a protocol drops are not in it) and returns
what :func:`benchmark.protocols.make.split_record` records. The recipes are the in-memory ones
— the identity tests compare both on every protocol and input shape — and the random draws are
numpy's, made in file order: ``default_rng(seed).random(n)`` drawn in consecutive chunks is the
same stream as one call, so the ``paper`` protocol gives each row the number it gets in memory;
``mmrec``'s ``permutation(n)`` cannot be drawn in chunks and is held whole (8 bytes a row).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa

from benchmark.prepare.engine.filters import n_rows
from benchmark.prepare.engine.workspace import Workspace, stream
from benchmark.protocols.make import (
    check_mmrec_params,
    check_split_call,
    global_time_cuts,
    paper_params,
    repeats_error,
)

#: rows per batch when random numbers are attached to rows streamed in file order
DRAW_BATCH = 1 << 20
#: a recipe labels the rows of a table: it returns the name of a table ``(pos, label)``
Recipe = Callable[[str], str]
_Result = tuple[dict[str, Any], dict[str, Any]]


def label_rows(ws: Workspace, src: str, protocol: str, seed: int, params: Mapping[str, Any]) -> _Result:
    """Run ``protocol`` on table ``src`` into table ``used``; returns (recorded params, stats)."""
    check_split_call(protocol, seed, params)
    funcs: dict[str, Callable[..., _Result]] = {
        "paper": _paper,
        "mmrec": _mmrec,
        "loo": _loo,
        "global-time": _global_time,
        "user-time": _user_time,
    }
    func = funcs[protocol]
    return func(ws, src, int(seed), **params)


def pct_rank(value: str, group: str = "u") -> str:
    """SQL for pandas' ``groupby(group)[value].rank(pct=True)`` (average method): the mean of a
    row's lowest and highest rank among its peers over the group's size, in the same float64
    operations (both ranks are integers, so their half-sum is exact)."""
    w = f"(PARTITION BY {group} ORDER BY {value})"
    return f"((rank() OVER {w} + count(*) OVER {w})::DOUBLE / 2) / (count(*) OVER (PARTITION BY {group}))::DOUBLE"


def draw_uniform(ws: Workspace, src: str, seed: int, dst: str) -> None:
    """Table ``dst(pos, r)``: ``default_rng(seed).random(n)`` given to ``src``'s rows in ``pos`` order."""
    rng = np.random.default_rng(seed)
    ws.sql(f"CREATE OR REPLACE TABLE {dst} (pos BIGINT, r DOUBLE)")
    for batch in stream(ws, f"SELECT pos FROM {src} ORDER BY pos", batch_rows=DRAW_BATCH):
        pos = batch.column(0).to_numpy()
        _append(ws, dst, pa.table({"pos": pos, "r": rng.random(len(pos))}))


def _append(ws: Workspace, dst: str, table: pa.Table) -> None:
    ws.con.register("_batch", table)
    try:
        ws.sql(f"INSERT INTO {dst} SELECT * FROM _batch")
    finally:
        ws.con.unregister("_batch")


def on_pairs(ws: Workspace, src: str, recipe: Recipe) -> None:
    """Table ``used``: ``recipe`` run on each (user, item) pair's first row (smallest ``pos``),
    the pair's other rows following it — :func:`benchmark.protocols.make._on_pairs`."""
    n_pairs = int(ws.scalar(f"SELECT count(*) FROM (SELECT DISTINCT u, i FROM {src})"))
    if n_pairs == n_rows(ws, src):
        labels = recipe(src)
        ws.sql(f"CREATE OR REPLACE TABLE used AS SELECT s.*, l.label FROM {src} s JOIN {labels} l USING (pos)")
        return
    ws.sql(
        f"CREATE OR REPLACE TABLE pair_rep AS SELECT * FROM {src} WHERE pos IN (SELECT min(pos) FROM {src} GROUP BY u, i)"
    )
    labels = recipe("pair_rep")
    ws.sql(
        f"CREATE OR REPLACE TABLE used AS SELECT s.*, l.label FROM {src} s JOIN "
        f"(SELECT r.u, r.i, l.label FROM pair_rep r JOIN {labels} l USING (pos)) l USING (u, i)"
    )


# ------------------------------------------------------------------------------- protocols
def _paper(
    ws: Workspace,
    src: str,
    seed: int,
    *,
    min_user_ratings: int = 5,
    holdout_frac: float = 0.4,
    test_frac_of_holdout: float = 0.5,
    repeats: str = "per-pair",
    ids: str = "sorted",
) -> _Result:
    """:func:`benchmark.protocols.make.split_paper`: users with >= ``min_user_ratings`` rows;
    draw 1 over them in file order, per-user pct rank <= ``holdout_frac`` held out; draw 2 (a
    fresh generator of the same seed) over the held-out rows in file order, rank <= ``test_frac``
    is test, the rest valid. ``repeats: per-row`` runs it on every row (a pair may straddle
    parts: counted); ``ids: permuted`` is applied when the dense ids are given
    (:func:`benchmark.prepare.engine.output.assign_dense_ids`)."""
    params = paper_params(min_user_ratings, holdout_frac, test_frac_of_holdout, repeats, ids)

    def recipe(d: str) -> str:
        ws.sql(
            f"CREATE OR REPLACE TABLE paper_kept AS SELECT pos, u FROM {d} "
            f"WHERE u IN (SELECT u FROM {d} GROUP BY u HAVING count(*) >= ?)",
            [min_user_ratings],
        )
        draw_uniform(ws, "paper_kept", seed, "paper_r1")
        ws.sql(
            f"CREATE OR REPLACE TABLE paper_rank1 AS SELECT pos, u, {pct_rank('r')} <= ?::DOUBLE AS held "
            "FROM paper_kept JOIN paper_r1 USING (pos)",
            [holdout_frac],
        )
        ws.sql("CREATE OR REPLACE TABLE paper_held AS SELECT pos, u FROM paper_rank1 WHERE held")
        draw_uniform(ws, "paper_held", seed, "paper_r2")
        ws.sql(
            f"CREATE OR REPLACE TABLE paper_labels AS SELECT pos, (CASE WHEN {pct_rank('r')} <= ?::DOUBLE "
            "THEN 2 ELSE 1 END)::TINYINT AS label FROM paper_held JOIN paper_r2 USING (pos) "
            "UNION ALL SELECT pos, 0::TINYINT FROM paper_rank1 WHERE NOT held",
            [test_frac_of_holdout],
        )
        return "paper_labels"

    if repeats == "per-row":
        labels = recipe(src)
        ws.sql(f"CREATE OR REPLACE TABLE used AS SELECT s.*, l.label FROM {src} s JOIN {labels} l USING (pos)")
    else:
        on_pairs(ws, src, recipe)
    dropped = f"(SELECT u FROM {src} WHERE pos NOT IN (SELECT pos FROM used))"
    stats = {
        "users_below_min_ratings": int(ws.scalar(f"SELECT count(DISTINCT u) FROM {dropped}")),
        "rows_below_min_ratings": n_rows(ws, src) - n_rows(ws, "used"),
    }
    if repeats == "per-row":
        stats["pairs_in_two_parts"] = int(
            ws.scalar("SELECT count(*) FROM (SELECT u, i FROM used GROUP BY u, i HAVING count(DISTINCT label) > 1)")
        )
    return params, stats


def _mmrec(
    ws: Workspace, src: str, seed: int, *, valid_test_frac: float = 0.2, small_user_threshold: int = 10
) -> _Result:
    """:func:`benchmark.protocols.make.split_mmrec`: rows shuffled by ``permutation(n)`` (file
    order in, the shuffle position ``t`` of a row is where the permutation puts it), each user's
    rows labelled in shuffle order: n >= threshold → n - vt train, vt // 2 valid, the rest test
    (vt = floor(n · frac)); smaller users n - 2 / 1 / 1; a single row trains."""
    check_mmrec_params(valid_test_frac, small_user_threshold)
    stats: dict[str, Any] = {}

    def recipe(d: str) -> str:
        perm = np.random.default_rng(seed).permutation(n_rows(ws, d))
        ws.sql("CREATE OR REPLACE TABLE mmrec_shuffle (ord BIGINT, t BIGINT)")
        for start in range(0, len(perm), DRAW_BATCH):
            stop = min(len(perm), start + DRAW_BATCH)
            _append(ws, "mmrec_shuffle", pa.table({"ord": perm[start:stop], "t": np.arange(start, stop)}))
        del perm
        counts = f"(SELECT u, count(*) AS n FROM {d} GROUP BY u)"
        stats["single_row_users"] = int(ws.scalar(f"SELECT count(*) FROM {counts} WHERE n = 1"))
        two = int(ws.scalar(f"SELECT count(*) FROM {counts} WHERE n = 2"))
        stats["two_row_users_without_train"] = two if small_user_threshold > 2 else 0
        ordered = f"(SELECT pos, u, row_number() OVER (ORDER BY pos) - 1 AS ord FROM {d})"
        shuffled = f"(SELECT * FROM {ordered} JOIN mmrec_shuffle USING (ord))"
        _sized_labels(ws, "mmrec_labels", shuffled, "t", "pos", valid_test_frac, small_user_threshold)
        return "mmrec_labels"

    on_pairs(ws, src, recipe)
    return {"valid_test_frac": valid_test_frac, "small_user_threshold": small_user_threshold}, stats


def _sized_labels(
    ws: Workspace, dst: str, src: str, order: str, columns: str, valid_test_frac: float, small_user_threshold: int
) -> None:
    """Table ``dst``: ``columns`` of ``src`` and a ``label`` with mmrec's part sizes (shared by
    ``mmrec`` and ``user-time``; :func:`benchmark.protocols.make._sized_labels`): each user's
    rows in ``order`` (no ties), the first n - vt train, the next vt // 2 valid, the rest test
    (vt = floor(n · frac)); n < threshold gives n - 2 / 1 / 1; a single row trains."""
    ranked = (
        "(SELECT *, floor(n::DOUBLE * ?::DOUBLE)::BIGINT AS vt FROM (SELECT *, row_number() OVER "
        f"(PARTITION BY u ORDER BY {order}) - 1 AS p, count(*) OVER (PARTITION BY u) AS n FROM {src}))"
    )
    sized = (
        "(SELECT *, CASE WHEN n < ? THEN n - 2 ELSE n - vt END AS tl, CASE WHEN n < ? THEN 1 ELSE vt // 2 END AS vl "
        f"FROM {ranked})"
    )
    ws.sql(
        f"CREATE OR REPLACE TABLE {dst} AS SELECT {columns}, (CASE WHEN n = 1 OR p < tl THEN 0 "
        f"WHEN p < tl + vl THEN 1 ELSE 2 END)::TINYINT AS label FROM {sized}",
        [small_user_threshold, small_user_threshold, valid_test_frac],
    )


def _loo(ws: Workspace, src: str, seed: int) -> _Result:
    """:func:`benchmark.protocols.make.split_loo`: per user, last row (by timestamp, then item id
    — item codes are in id order) test, second-last valid; users with < 3 rows train only."""
    refuse_repeats(ws, src, "loo")
    w = "(PARTITION BY u ORDER BY timestamp DESC, i DESC)"
    ws.sql(
        "CREATE OR REPLACE TABLE used AS SELECT pos, u, i, rating, timestamp, (CASE WHEN n < 3 THEN 0 "
        "WHEN from_end = 1 THEN 2 WHEN from_end = 2 THEN 1 ELSE 0 END)::TINYINT AS label FROM "
        f"(SELECT *, row_number() OVER {w} AS from_end, count(*) OVER (PARTITION BY u) AS n FROM {src})"
    )
    short = int(ws.scalar(f"SELECT count(*) FROM (SELECT u FROM {src} GROUP BY u HAVING count(*) < 3)"))
    return {"tie_break": "item_id"}, {"short_users": short}


def _user_time(
    ws: Workspace, src: str, seed: int, *, valid_test_frac: float = 0.2, small_user_threshold: int = 10
) -> _Result:
    """:func:`benchmark.protocols.make.split_user_time`: each user's rows in time order (ties by
    item id — item codes are in id order), cut with mmrec's part sizes: n >= threshold → n - vt
    train, vt // 2 valid, the rest test (vt = floor(n · frac)); smaller users n - 2 / 1 / 1; a
    single row trains."""
    refuse_repeats(ws, src, "user-time")
    check_mmrec_params(valid_test_frac, small_user_threshold)
    columns = "pos, u, i, rating, timestamp"
    _sized_labels(ws, "used", src, "timestamp, i", columns, valid_test_frac, small_user_threshold)
    single = int(ws.scalar(f"SELECT count(*) FROM (SELECT u FROM {src} GROUP BY u HAVING count(*) = 1)"))
    recorded = {
        "valid_test_frac": valid_test_frac,
        "small_user_threshold": small_user_threshold,
        "tie_break": "item_id",
    }
    return recorded, {"single_row_users": single}


def _global_time(
    ws: Workspace,
    src: str,
    seed: int,
    *,
    valid_frac: float | None = None,
    test_frac: float | None = None,
    valid_start: int | None = None,
    test_start: int | None = None,
) -> _Result:
    """:func:`benchmark.protocols.make.split_global_time`: ``train < t1 <= valid < t2 <= test``,
    cuts explicit or at the k-th latest timestamps (:func:`global_time_cuts`)."""
    refuse_repeats(ws, src, "global-time")

    def kth(k: int) -> int:
        return int(ws.scalar(f"SELECT timestamp FROM {src} ORDER BY timestamp LIMIT 1 OFFSET ?", [k]))

    t1, t2, recorded = global_time_cuts(n_rows(ws, src), kth, valid_frac, test_frac, valid_start, test_start)
    ws.sql(
        "CREATE OR REPLACE TABLE used AS SELECT *, (CASE WHEN timestamp < ? THEN 0 WHEN timestamp < ? THEN 1 "
        f"ELSE 2 END)::TINYINT AS label FROM {src}",
        [t1, t2],
    )
    stats = {}
    for col, what in (("u", "users"), ("i", "items")):
        for code, name in ((1, "valid"), (2, "test")):
            stats[f"cold_{what}_{name}"] = int(
                ws.scalar(
                    f"SELECT count(*) FROM (SELECT DISTINCT {col} FROM used WHERE label = {code} "
                    f"EXCEPT SELECT DISTINCT {col} FROM used WHERE label = 0)"
                )
            )
    recorded["cuts"] = {"valid_start": t1, "test_start": t2}
    return recorded, stats


def refuse_repeats(ws: Workspace, src: str, protocol: str) -> None:
    """:func:`benchmark.protocols.make._refuse_repeats`: the rows after a pair's first (file
    order), counted, the first three named by their original ids."""
    later = f"(SELECT * FROM {src} WHERE pos NOT IN (SELECT min(pos) FROM {src} GROUP BY u, i))"
    n = int(ws.scalar(f"SELECT count(*) FROM {later}"))
    if n:
        rows = ws.sql(
            f"SELECT uu.orig, ii.orig FROM {later} r JOIN user_ids uu USING (u) JOIN item_ids ii USING (i) "
            "ORDER BY r.pos LIMIT 3"
        )
        raise repeats_error(protocol, n, [(str(a), str(b)) for a, b in rows])
