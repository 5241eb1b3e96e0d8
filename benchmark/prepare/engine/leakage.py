"""The leakage checks of :func:`benchmark.protocols.check_leakage`, in SQL over the view
``dense`` (``used`` with dense and original ids and the part ``label``): the same counts, the
same examples and the same messages, without building the split in memory."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmark.prepare.engine.workspace import Workspace
from benchmark.protocols.leakage import LeakageError
from benchmark.split import PARTS

_N_EXAMPLES = 5


def check_leakage(ws: Workspace, protocol: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Raise :class:`LeakageError` if the labelled rows leak; return what was checked."""
    report: dict[str, Any] = {"protocol": protocol, "pair_overlap": {}}
    # a paper split with repeats per-row may put a pair's rows in two parts: counted, not refused
    overlap_allowed = protocol == "paper" and params.get("repeats") == "per-row"
    if overlap_allowed:
        report["pair_overlap_allowed"] = "paper split with repeats per-row: repeat reviews are split row by row"
    problems: list[str] = []
    # one aggregate finds the pairs in more than one part (none, unless something is wrong)
    ws.sql(
        "CREATE OR REPLACE TABLE straddling AS SELECT u, i, list(DISTINCT label) AS labels FROM used "
        "GROUP BY u, i HAVING count(DISTINCT label) > 1"
    )
    for a_idx, a in enumerate(PARTS):
        for b_idx in range(a_idx + 1, len(PARTS)):
            b = PARTS[b_idx]
            common = (
                "(SELECT uid.user_id, iid.item_id FROM straddling s JOIN uid USING (u) JOIN iid USING (i) "
                f"WHERE list_contains(s.labels, {a_idx}) AND list_contains(s.labels, {b_idx}))"
            )
            n = int(ws.scalar(f"SELECT count(*) FROM {common}"))
            report["pair_overlap"][f"{a}/{b}"] = n
            if n and not overlap_allowed:
                ex = _examples(ws, f"SELECT * FROM {common} ORDER BY user_id, item_id")
                problems.append(f"{n} (user, item) pairs are in both {a} and {b}, e.g. {ex}")
    if protocol in ("loo", "user-time"):  # per user, no training row after a held-out one
        report["temporal"] = _check_loo(ws, problems)
    elif protocol == "global-time":
        report["temporal"] = _check_global(ws, params, problems)
    if problems:
        raise LeakageError(f"split ({protocol}) leaks: " + "; ".join(problems))
    report["ok"] = True
    return report


def _examples(ws: Workspace, pairs: str) -> list[tuple[str, str]]:
    rows = ws.sql(
        f"SELECT uu.orig, ii.orig FROM ({pairs} LIMIT {_N_EXAMPLES}) p JOIN uid USING (user_id) "
        "JOIN user_ids uu USING (u) JOIN iid USING (item_id) JOIN item_ids ii USING (i) ORDER BY p.user_id, p.item_id"
    )
    return [(str(u), str(i)) for u, i in rows]


def _user_name(ws: Workspace, user_id: int) -> str:
    return str(ws.scalar("SELECT uu.orig FROM uid JOIN user_ids uu USING (u) WHERE uid.user_id = ?", [user_id]))


def _check_loo(ws: Workspace, problems: list[str]) -> dict[str, Any]:
    """Per user: no training row later than the earliest held-out one; valid not after test."""
    both = (
        "(SELECT t.user_id, t.train_max, c.cut FROM (SELECT user_id, max(timestamp) AS train_max FROM dense "
        "WHERE label = 0 GROUP BY user_id) t JOIN (SELECT user_id, min(timestamp) AS cut FROM dense WHERE label > 0 "
        "GROUP BY user_id) c USING (user_id))"
    )
    checked, late = ws.sql(f"SELECT count(*), count(*) FILTER (WHERE train_max > cut) FROM {both}")[0]
    n_checked, n_late = int(checked), int(late)
    if n_late:  # only then the examples: a second pass over `both`
        rows = ws.sql(
            f"SELECT user_id, train_max, cut FROM {both} WHERE train_max > cut ORDER BY user_id LIMIT ?", [_N_EXAMPLES]
        )
        ex = [(_user_name(ws, u), int(t), int(c)) for u, t, c in rows]
        problems.append(
            f"{n_late} users have a training interaction later than their held-out ones "
            f"(user, last train ts, cut), e.g. {ex}"
        )
    vt = (
        "(SELECT user_id FROM (SELECT user_id, max(timestamp) AS vmax FROM dense WHERE label = 1 GROUP BY user_id) "
        "JOIN (SELECT user_id, min(timestamp) AS tmin FROM dense WHERE label = 2 GROUP BY user_id) USING (user_id) "
        "WHERE vmax > tmin)"
    )
    bad_vt = [int(u) for (u,) in ws.sql(f"SELECT user_id FROM {vt} ORDER BY user_id")]
    if bad_vt:
        users = [_user_name(ws, u) for u in bad_vt[:_N_EXAMPLES]]
        problems.append(f"{len(bad_vt)} users have a validation interaction later than their test one, e.g. {users}")
    return {"users_checked": n_checked, "users_late_train": n_late, "users_valid_after_test": len(bad_vt)}


def _check_global(ws: Workspace, params: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """Every part inside its window of the recorded cuts."""
    cuts = params.get("cuts") or {}
    if "valid_start" not in cuts or "test_start" not in cuts:
        problems.append("global-time split has no params['cuts'] with valid_start and test_start")
        return {}
    t1, t2 = int(cuts["valid_start"]), int(cuts["test_start"])
    out: dict[str, Any] = {"valid_start": t1, "test_start": t2}
    for code, (name, lo, hi) in enumerate((("train", None, t1), ("valid", t1, t2), ("test", t2, None))):
        outside = " OR ".join(
            c
            for c in (f"timestamp < {lo}" if lo is not None else "", f"timestamp >= {hi}" if hi is not None else "")
            if c
        )
        rows = f"(SELECT * FROM dense WHERE label = {code} AND ({outside}))"
        n_bad = int(ws.scalar(f"SELECT count(*) FROM {rows}"))
        out[f"{name}_outside_window"] = n_bad
        if n_bad:
            ex = ws.sql(
                f"SELECT orig_user_id, orig_item_id, timestamp FROM {rows} ORDER BY user_id, timestamp, item_id, pos "
                f"LIMIT {_N_EXAMPLES}"
            )
            ex = [(str(u), str(i), int(t)) for u, i, t in ex]
            problems.append(f"{n_bad} {name} interactions lie outside [{lo}, {hi}), e.g. {ex}")
    return out
