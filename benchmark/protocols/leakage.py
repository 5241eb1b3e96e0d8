"""Leakage checks run on every split a protocol builds (and usable on imported ones)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from benchmark.errors import BenchError
from benchmark.split import PARTS, Split

_N_EXAMPLES = 5


class LeakageError(BenchError, ValueError):
    """A split lets information from a later part into an earlier one."""


def check_leakage(split: Split) -> dict[str, Any]:
    """Assert that ``split`` does not leak; return what was checked.

    Always: no (user, item) pair is in two parts (per-user disjointness) — except in a ``paper``
    split drawn with ``repeats: per-row`` (the notebook's rule: each review is its own row, so
    the repeats of a pair may land in different parts); there the overlap is counted in the
    report (``pair_overlap``, ``pair_overlap_allowed``) and not raised. For temporal
    protocols: ``loo`` and ``user-time`` — per user, no training interaction is later than that
    user's earliest valid/test interaction, and valid is not later than test; ``global-time`` — every train
    timestamp is < ``valid_start``, valid lies in [``valid_start``, ``test_start``) and test is
    ≥ ``test_start`` (cuts read from ``split.params["cuts"]``); ``official`` 2023 benchmark
    splits — the ``last_out*`` variants as ``loo``, the ``timestamp*`` variants by their observed
    extremes (no train interaction later than the earliest valid one, no valid one later than the
    earliest test one). Raises :class:`LeakageError` listing the first offending examples with
    original ids.
    """
    report: dict[str, Any] = {"protocol": split.protocol, "pair_overlap": {}}
    overlap_allowed = split.protocol == "paper" and split.params.get("repeats") == "per-row"
    if overlap_allowed:
        report["pair_overlap_allowed"] = "paper split with repeats per-row: repeat reviews are split row by row"
    n_items = max(1, split.n_items)
    codes = np.concatenate(
        [
            split.part(p)["user_id"].to_numpy(np.int64) * n_items + split.part(p)["item_id"].to_numpy(np.int64)
            for p in PARTS
        ]
    )
    part_bit = np.concatenate([np.full(len(split.part(p)), 1 << k, dtype=np.int64) for k, p in enumerate(PARTS)])
    # One integer sort instead of pairwise set intersections: each run of equal pair codes gets
    # the bitmask of the parts it occurs in (repeats inside one part are not leakage).
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]]) if len(codes) else np.array([], int)
    masks = np.bitwise_or.reduceat(part_bit[order], starts) if len(codes) else np.array([], np.int64)
    run_codes = sorted_codes[starts] if len(codes) else np.array([], np.int64)
    problems: list[str] = []
    for a_idx, a in enumerate(PARTS):
        for b_idx in range(a_idx + 1, len(PARTS)):
            b = PARTS[b_idx]
            both = (masks & (1 << a_idx)).astype(bool) & (masks & (1 << b_idx)).astype(bool)
            common = run_codes[both]
            report["pair_overlap"][f"{a}/{b}"] = int(len(common))
            if len(common) and not overlap_allowed:
                ex = [_orig(split, int(c) // n_items, int(c) % n_items) for c in common[:_N_EXAMPLES]]
                problems.append(f"{len(common)} (user, item) pairs are in both {a} and {b}, e.g. {ex}")
    if split.protocol in ("loo", "user-time"):
        report["temporal"] = _check_loo(split, problems)
    elif split.protocol == "global-time":
        report["temporal"] = _check_global(split, problems)
    elif split.protocol == "official":
        variant = str(split.params.get("variant", ""))
        if variant.startswith("last_out"):
            report["temporal"] = _check_loo(split, problems)
        elif variant.startswith("timestamp"):
            report["temporal"] = _check_observed_cuts(split, problems)
    if problems:
        raise LeakageError(f"split ({split.protocol}) leaks: " + "; ".join(problems))
    report["ok"] = True
    return report


def _check_loo(split: Split, problems: list[str]) -> dict[str, Any]:
    train, valid, test = split.train, split.valid, split.test
    later = pd.concat([valid[["user_id", "timestamp"]], test[["user_id", "timestamp"]]])
    cut = later.groupby("user_id")["timestamp"].min()
    last_train = train.groupby("user_id")["timestamp"].max()
    both = pd.concat([last_train.rename("train_max"), cut.rename("cut")], axis=1, join="inner")
    bad = both[both["train_max"] > both["cut"]]
    if len(bad):
        ex = [(_user(split, int(u)), int(r.train_max), int(r.cut)) for u, r in bad.head(_N_EXAMPLES).iterrows()]
        problems.append(
            f"{len(bad)} users have a training interaction later than their held-out ones "
            f"(user, last train ts, cut), e.g. {ex}"
        )
    vt = pd.concat(
        [
            valid.groupby("user_id")["timestamp"].max().rename("valid_max"),
            test.groupby("user_id")["timestamp"].min().rename("test_min"),
        ],
        axis=1,
        join="inner",
    )
    bad_vt = vt[vt["valid_max"] > vt["test_min"]]
    if len(bad_vt):
        users = [_user(split, int(u)) for u in bad_vt.index[:_N_EXAMPLES]]
        problems.append(f"{len(bad_vt)} users have a validation interaction later than their test one, e.g. {users}")
    return {
        "users_checked": int(len(both)),
        "users_late_train": int(len(bad)),
        "users_valid_after_test": int(len(bad_vt)),
    }


def _check_global(split: Split, problems: list[str]) -> dict[str, Any]:
    cuts = split.params.get("cuts") or {}
    if "valid_start" not in cuts or "test_start" not in cuts:
        problems.append("global-time split has no params['cuts'] with valid_start and test_start")
        return {}
    t1, t2 = int(cuts["valid_start"]), int(cuts["test_start"])
    out = {"valid_start": t1, "test_start": t2}
    for name, df, lo, hi in (
        ("train", split.train, None, t1),
        ("valid", split.valid, t1, t2),
        ("test", split.test, t2, None),
    ):
        ts = df["timestamp"].to_numpy(np.int64)
        bad = np.zeros(len(ts), dtype=bool)
        if lo is not None:
            bad |= ts < lo
        if hi is not None:
            bad |= ts >= hi
        out[f"{name}_outside_window"] = int(bad.sum())
        if bad.any():
            rows = df.loc[bad].head(_N_EXAMPLES)
            ex = list(zip(rows["orig_user_id"], rows["orig_item_id"], rows["timestamp"].astype(int)))
            problems.append(f"{int(bad.sum())} {name} interactions lie outside [{lo}, {hi}), e.g. {ex}")
    return out


def _check_observed_cuts(split: Split, problems: list[str]) -> dict[str, Any]:
    """A global time split whose cut points are not recorded: the parts must not overlap in time."""
    out: dict[str, Any] = {}
    for early, late in (("train", "valid"), ("valid", "test")):
        a, b = split.part(early)["timestamp"], split.part(late)["timestamp"]
        if len(a) and len(b):
            n_bad = int((a > b.min()).sum())
            out[f"{early}_after_{late}_start"] = n_bad
            if n_bad:
                rows = split.part(early).loc[a > b.min()].head(_N_EXAMPLES)
                ex = list(zip(rows["orig_user_id"], rows["orig_item_id"], rows["timestamp"].astype(int)))
                problems.append(
                    f"{n_bad} {early} interactions are later than the first {late} one ({int(b.min())}), e.g. {ex}"
                )
    return out


def _user(split: Split, uid: int) -> str:
    return str(split.users["orig_user_id"].iat[uid])


def _orig(split: Split, uid: int, iid: int) -> tuple[str, str]:
    return _user(split, uid), str(split.items["orig_item_id"].iat[iid])
