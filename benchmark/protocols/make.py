"""Split protocols: raw interactions → :class:`benchmark.split.Split`.

Every protocol labels each input row train (0), valid (1) or test (2), records all of its
parameters (and the filtering that ran before it) in ``Split.params``, builds the split with
:meth:`Split.from_parts` and runs :func:`benchmark.protocols.leakage.check_leakage` on it.

Protocols (see each function's docstring for the exact recipe):

``paper``        per-user random 60/20/20 exactly as the Align-MacridVAE data the paper used.
``mmrec``        per-user random 8:1:1 as MMRec's ``1splitting.ipynb`` (n < 10: n−2/1/1), seeded.
``loo``          temporal leave-one-out: last interaction test, second-last valid.
``global-time``  one global timestamp cut: train < t1 ≤ valid < t2 ≤ test.
``user-time``    per-user temporal ratio split (MMRec's third protocol): each user's rows in time
                 order, the ``mmrec`` part sizes (8:1:1; n < 10: n−2/1/1) — earliest train, latest test.

Repeat interactions (several rows for one (user, item) pair, i.e. ``dedupe(keep="all")``): the
random protocols assign each *pair* to one part (the draw is made on the pair's first row, the
other rows follow it), so a pair never straddles parts. The temporal protocols refuse them,
because a repeat after the cut would put one pair on both sides of it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from benchmark.protocols.leakage import check_leakage
from benchmark.split import PARTS, Split, normalise_raw_interactions

log = logging.getLogger(__name__)

PAPER_SEED = 20230219
#: the protocols :func:`make_split` implements
SPLIT_PROTOCOLS: tuple[str, ...] = ("paper", "mmrec", "loo", "global-time", "user-time")
#: every protocol a dataset config may name: ``official`` takes the 2023 release's own benchmark
#: files as given (``benchmark.data.interop.import_2023_official``), no split is drawn
PROTOCOLS: tuple[str, ...] = (*SPLIT_PROTOCOLS, "official")
RANDOM_PROTOCOLS: tuple[str, ...] = ("paper", "mmrec")
TEMPORAL_PROTOCOLS: tuple[str, ...] = ("loo", "global-time", "user-time")

TRAIN, VALID, TEST = 0, 1, 2
#: how the ``paper`` protocol treats repeat (user, item) rows: one draw per pair, or per row as the notebook
PAPER_REPEATS: tuple[str, ...] = ("per-pair", "per-row")
#: dense id order of the ``paper`` protocol: sorted original ids, or the notebook's seeded permutation
PAPER_IDS: tuple[str, ...] = ("sorted", "permuted")
# (labels per row of the returned frame, frame actually split, recorded params, stats)
_Result = tuple[np.ndarray, pd.DataFrame, dict[str, Any], dict[str, Any]]


def default_seed(protocol: str) -> int:
    """The split seed a dataset config gets when it names none: the paper's own seed for
    ``paper`` (so its split is the published one), 0 for every other protocol."""
    return PAPER_SEED if protocol == "paper" else 0


def default_kcore(protocol: str) -> tuple[int, int]:
    """(user k, item k) a dataset config gets when it sets no k-core: ``paper`` keeps users with
    >= 5 ratings and filters no items (that is its recipe); the others take a 5-core on both
    sides (MMRec's preprocessing). ``official`` runs no filter at all (the caller skips it)."""
    return (5, 0) if protocol == "paper" else (5, 5)


def make_split(
    interactions: pd.DataFrame,
    catalogue: pd.DataFrame | None = None,
    protocol: str = "paper",
    *,
    seed: int = PAPER_SEED,
    filtering: Mapping[str, Any] | None = None,
    **params: Any,
) -> Split:
    """Split raw interactions (``user``, ``item``, ``rating``, ``timestamp``) with ``protocol``.

    ``seed`` drives the random protocols (the temporal ones are deterministic; the seed
    is still recorded). ``filtering`` describes what ran before (dedupe rule, k-core, image
    filter, source checksums) and is stored under ``params["filtering"]``. Protocol parameters
    are passed as keyword arguments; unknown ones are rejected naming the allowed ones.
    The result has passed :func:`check_leakage`.
    """
    check_split_call(protocol, seed, params)
    func = _PROTOCOL_FUNCS[protocol][0]
    df = normalise_raw_interactions(interactions)
    labels, used, recorded, stats = func(df, int(seed), **params)
    parts = {name: used.loc[labels == code].reset_index(drop=True) for code, name in enumerate(PARTS)}
    part_rows = {p: len(parts[p]) for p in PARTS}
    record = split_record(seed, recorded, stats, len(df), len(used), part_rows, filtering)
    orders = permuted_ids(used, int(seed)) if recorded.get("ids") == "permuted" else {}
    split = Split.from_parts(parts, catalogue, protocol, record, interactions=used, **orders)
    check_leakage(split)
    log.info("%s split: %s", protocol, {p: len(parts[p]) for p in PARTS})
    return split


def check_split_call(protocol: str, seed: Any, params: Mapping[str, Any]) -> None:
    """The checks :func:`make_split` runs before any protocol: a known protocol, an integer
    seed, no parameter the protocol does not take (shared with the out-of-core engine)."""
    if protocol not in _PROTOCOL_FUNCS:
        hint = (
            " (`official` splits are imported with benchmark.data.interop.import_2023_official)"
            if protocol == "official"
            else ""
        )
        raise ValueError(f"unknown split protocol {protocol!r}; allowed: {', '.join(SPLIT_PROTOCOLS)}{hint}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer; got {seed!r}")
    allowed = _PROTOCOL_FUNCS[protocol][1]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValueError(
            f"protocol {protocol!r} got unknown parameter(s) {unknown}; allowed: {', '.join(allowed) or 'none'}"
        )


def split_record(
    seed: int,
    recorded: Mapping[str, Any],
    stats: Mapping[str, Any],
    rows_in: int,
    rows_split: int,
    part_rows: Mapping[str, int],
    filtering: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The split's ``params`` (and so part of its fingerprint): seed, the protocol's recorded
    settings, its stats with the row counts, and the filtering that ran before."""
    all_stats = {"rows_in": int(rows_in), "rows_split": int(rows_split), **stats}
    all_stats.update({f"{p}_rows": int(part_rows[p]) for p in PARTS})
    record = {"seed": int(seed), **recorded, "stats": all_stats}
    if filtering:
        record["filtering"] = dict(filtering)
    return record


# ------------------------------------------------------------------------------- protocols
def paper_params(
    min_user_ratings: Any, holdout_frac: Any, test_frac_of_holdout: Any, repeats: Any, ids: Any
) -> dict[str, Any]:
    """Check ``paper``'s parameters (ValueError naming the bad one) and return what its split
    records — shared by :func:`split_paper` and the out-of-core engine's twin."""
    if repeats not in PAPER_REPEATS:
        raise ValueError(f"repeats {repeats!r} is not allowed; allowed: {', '.join(PAPER_REPEATS)}")
    if ids not in PAPER_IDS:
        raise ValueError(f"ids {ids!r} is not allowed; allowed: {', '.join(PAPER_IDS)}")
    check_frac("holdout_frac", holdout_frac)
    check_frac("test_frac_of_holdout", test_frac_of_holdout)
    if min_user_ratings < 0:
        raise ValueError(f"min_user_ratings must be >= 0; got {min_user_ratings}")
    params: dict[str, Any] = {
        "min_user_ratings": min_user_ratings,
        "holdout_frac": holdout_frac,
        "test_frac_of_holdout": test_frac_of_holdout,
    }
    # recorded only when not the default, so splits made before these options keep their fingerprint
    params.update({k: v for k, v, d in (("repeats", repeats, "per-pair"), ("ids", ids, "sorted")) if v != d})
    return params


def split_paper(
    df: pd.DataFrame,
    seed: int = PAPER_SEED,
    *,
    min_user_ratings: int = 5,
    holdout_frac: float = 0.4,
    test_frac_of_holdout: float = 0.5,
    repeats: str = "per-pair",
    ids: str = "sorted",
) -> _Result:
    """Per-user random 60/20/20, exactly as the Align-MacridVAE data the paper used was made.

    1. keep users with ≥ ``min_user_ratings`` (5) rows; no item filter;
    2. ``rng = numpy.random.default_rng(seed)``; ``r = rng.random(len(df))`` — one number per row
       in input (file) order;
    3. per-user percentile rank of ``r`` (``groupby(user).rank(pct=True)``); rank ≤ 0.4 is held
       out, the rest is train;
    4. the held-out rows, in their original order, are split the same way with a *fresh*
       ``default_rng(seed)``: rank ≤ 0.5 → test, the rest → validation.

    Default seed 20230219. Same input (same row order) → same split.

    ``repeats`` (rows repeating a (user, item) pair, kept by ``dedupe: all``): ``per-pair``
    (default) runs the recipe on each pair's first row and the other rows follow it, so a pair
    never straddles parts; ``per-row`` runs it on every row, as Align-MacridVAE's
    ``generate_data.ipynb`` (``split_train_test_proportion``) does on its review table, where
    each review is its own row — a pair can then be in two parts (counted in the split's
    ``stats.pairs_in_two_parts``; the leakage check reports them instead of refusing).

    ``ids``: ``sorted`` (default) dense ids follow sorted original ids; ``permuted`` gives the
    notebook's ids (``generate_unique_ids``): ``default_rng(seed).permutation`` of the users in
    order of first appearance, and the same, with a fresh generator, for the items.
    Non-default values are recorded in the split's params.
    """
    params = paper_params(min_user_ratings, holdout_frac, test_frac_of_holdout, repeats, ids)

    def recipe(d: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        ucount = d.groupby("user", sort=False)["user"].transform("size").to_numpy()
        keep = ucount >= min_user_ratings
        kept = d.loc[keep]
        rank = _pct_rank(np.random.default_rng(seed).random(len(kept)), kept["user"])
        held = rank <= holdout_frac
        held_users = kept["user"].to_numpy()[held]
        rank2 = _pct_rank(np.random.default_rng(seed).random(int(held.sum())), held_users)
        lab = np.full(len(kept), TRAIN, dtype=np.int8)
        lab[np.flatnonzero(held)] = np.where(rank2 <= test_frac_of_holdout, TEST, VALID)
        return keep, lab

    if repeats == "per-row":
        keep, labels = recipe(df)
        used = df.loc[keep].reset_index(drop=True)
    else:
        keep, labels, used = _on_pairs(df, recipe)
    n_dropped_users = int(df.loc[~keep, "user"].nunique())
    stats = {"users_below_min_ratings": n_dropped_users, "rows_below_min_ratings": int((~keep).sum())}
    if repeats == "per-row":
        stats["pairs_in_two_parts"] = _pairs_in_two_parts(used, labels)
    return labels, used, params, stats


def permuted_ids(df: pd.DataFrame, seed: int) -> dict[str, list[str]]:
    """``user_order`` / ``item_order`` of Align-MacridVAE's ``generate_unique_ids``: the distinct
    ids in order of first appearance, permuted by a fresh ``default_rng(seed)`` each; the k-th
    id of the permutation gets dense id k."""
    return {
        f"{col}_order": np.random.default_rng(seed).permutation(pd.unique(df[col].to_numpy(dtype=object))).tolist()
        for col in ("user", "item")
    }


def _pairs_in_two_parts(df: pd.DataFrame, labels: np.ndarray) -> int:
    """(user, item) pairs whose rows were labelled into more than one part."""
    u, _ = _codes(df["user"])
    i, n_items = _codes(df["item"])
    pair = u * max(1, n_items) + i
    per_pair = pd.Series(labels).groupby(pair).nunique()
    return int((per_pair > 1).sum())


def check_mmrec_params(valid_test_frac: Any, small_user_threshold: Any) -> None:
    check_frac("valid_test_frac", valid_test_frac)
    if small_user_threshold < 0:
        raise ValueError(f"small_user_threshold must be >= 0; got {small_user_threshold}")


def split_mmrec(
    df: pd.DataFrame,
    seed: int = PAPER_SEED,
    *,
    valid_test_frac: float = 0.2,
    small_user_threshold: int = 10,
) -> _Result:
    """Per-user random 8:1:1 following MMRec's ``preprocessing/1splitting.ipynb``, but seeded.

    MMRec shuffles all rows (``df.sample(frac=1)``, unseeded), sorts them by user and labels
    each user's rows in that shuffled order: users with n ≥ 10 rows get
    ``vt = int(n * 0.2)`` held out, ``vt // 2`` valid and the rest test, ``n − vt`` train;
    users with n < 10 get n−2 train, 1 valid, 1 test. Here the shuffle is
    ``numpy.random.default_rng(seed).permutation`` followed by a stable sort on the user.

    Small users: n = 2 gives 0/1/1 (no training row), exactly as MMRec. n = 1 would make
    MMRec's label list longer than the user's rows (its notebook fails on the assignment);
    here such a user's single row goes to train (counted as ``single_row_users``). MMRec only
    runs on 5-cores, where neither case occurs.
    """
    check_mmrec_params(valid_test_frac, small_user_threshold)
    stats: dict[str, Any] = {}

    def recipe(d: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        ucode, n_users = _codes(d["user"])
        perm = np.random.default_rng(seed).permutation(len(d))
        order = perm[np.argsort(ucode[perm], kind="stable")]
        counts = np.bincount(ucode, minlength=n_users)
        lab = _sized_labels(ucode, counts, order, valid_test_frac, small_user_threshold)
        stats["single_row_users"] = int((counts == 1).sum())
        stats["two_row_users_without_train"] = int((counts == 2).sum()) if small_user_threshold > 2 else 0
        return np.ones(len(d), dtype=bool), lab

    _, labels, used = _on_pairs(df, recipe)
    return labels, used, {"valid_test_frac": valid_test_frac, "small_user_threshold": small_user_threshold}, stats


def _sized_labels(
    ucode: np.ndarray, counts: np.ndarray, order: np.ndarray, valid_test_frac: float, small_user_threshold: int
) -> np.ndarray:
    """Labels with mmrec's part sizes (shared by ``mmrec`` and ``user-time``): ``order`` lists
    the rows grouped by user code, ascending, each user's rows in the order they are cut in;
    ``counts[u]`` is user u's number of rows. A user's first ``n − vt`` rows train, the next
    ``vt // 2`` valid, the rest test (``vt = int(n · frac)``); n < threshold gives n−2 / 1 / 1;
    a single row trains."""
    su = ucode[order]
    pos = np.arange(len(ucode)) - (np.cumsum(counts) - counts)[su]  # a row's place among its user's rows
    n = counts[su]
    vt = np.floor(n * valid_test_frac).astype(np.int64)  # == int(n * 0.2) for n ≥ 0
    train_len = np.where(n < small_user_threshold, n - 2, n - vt)
    valid_len = np.where(n < small_user_threshold, 1, vt // 2)
    lab_sorted = np.where(pos < train_len, TRAIN, np.where(pos < train_len + valid_len, VALID, TEST))
    lab_sorted = np.where(n == 1, TRAIN, lab_sorted).astype(np.int8)
    labels = np.empty(len(ucode), dtype=np.int8)
    labels[order] = lab_sorted
    return labels


def split_loo(df: pd.DataFrame, seed: int = PAPER_SEED) -> _Result:
    """Temporal leave-one-out: per user, the last interaction is test, the second-last valid.

    "Last" orders a user's rows by timestamp, ties by original item id (string order), so the
    split is deterministic and independent of file order. Users with fewer than 3 interactions
    cannot give a training, a validation and a test row: all their rows stay in train (counted
    as ``short_users``), so they are never evaluated. ``seed`` is unused.
    """
    _refuse_repeats(df, "loo")
    ucode, n_users = _codes(df["user"])
    icode, _ = pd.factorize(df["item"], sort=True)  # sorted uniques: code order == item id order
    ts = df["timestamp"].to_numpy(dtype=np.int64)
    order = np.lexsort((icode, ts, ucode))
    counts = np.bincount(ucode, minlength=n_users)
    ends = np.cumsum(counts)
    su = ucode[order]
    from_end = ends[su] - np.arange(len(df))  # 1 for a user's last row
    lab_sorted = np.where(from_end == 1, TEST, np.where(from_end == 2, VALID, TRAIN))
    lab_sorted = np.where(counts[su] < 3, TRAIN, lab_sorted).astype(np.int8)
    labels = np.empty(len(df), dtype=np.int8)
    labels[order] = lab_sorted
    return labels, df, {"tie_break": "item_id"}, {"short_users": int((counts < 3).sum())}


def split_user_time(
    df: pd.DataFrame,
    seed: int = PAPER_SEED,
    *,
    valid_test_frac: float = 0.2,
    small_user_threshold: int = 10,
) -> _Result:
    """Per-user temporal ratio split ("user time split", MMRec's survey's third protocol).

    Each user's rows are ordered by timestamp, ties by original item id (string order, as
    ``loo``), and cut with exactly the part sizes of :func:`split_mmrec`: n ≥ 10 rows give
    ``vt = int(n · 0.2)`` held out — ``vt // 2`` valid, the rest test — and ``n − vt`` train
    (8:1:1); n < 10 gives n−2 / 1 / 1; a single row goes to train (``single_row_users``). The
    earliest rows are train, the latest test, so per user no training row is later than a
    held-out one (checked by :func:`check_leakage` as for ``loo``). Deterministic: ``seed`` is
    unused.
    """
    _refuse_repeats(df, "user-time")
    check_mmrec_params(valid_test_frac, small_user_threshold)  # the same parameters as mmrec's
    ucode, n_users = _codes(df["user"])
    icode, _ = pd.factorize(df["item"], sort=True)  # sorted uniques: code order == item id order
    order = np.lexsort((icode, df["timestamp"].to_numpy(dtype=np.int64), ucode))
    counts = np.bincount(ucode, minlength=n_users)
    labels = _sized_labels(ucode, counts, order, valid_test_frac, small_user_threshold)
    recorded = {
        "valid_test_frac": valid_test_frac,
        "small_user_threshold": small_user_threshold,
        "tie_break": "item_id",
    }
    return labels, df, recorded, {"single_row_users": int((counts == 1).sum())}


def split_global_time(
    df: pd.DataFrame,
    seed: int = PAPER_SEED,
    *,
    valid_frac: float | None = None,
    test_frac: float | None = None,
    valid_start: int | None = None,
    test_start: int | None = None,
) -> _Result:
    """One global timestamp cut for all users: ``train < t1 ≤ valid < t2 ≤ test``.

    Give either fractions (``valid_frac``, ``test_frac``; default 0.1 each) or explicit cut
    timestamps in seconds (``valid_start`` = t1, ``test_start`` = t2). From fractions,
    ``t2`` is the timestamp of the ``round(n·test_frac)``-th latest row and ``t1`` that of the
    ``round(n·(valid_frac+test_frac))``-th latest, so ties at a cut all fall on the later side and
    the parts can be slightly larger than asked. Users and items that appear only after a cut are
    kept (cold start) and counted. ``seed`` is unused.
    """
    _refuse_repeats(df, "global-time")
    ts = df["timestamp"].to_numpy(dtype=np.int64)
    s = np.sort(ts)
    t1, t2, recorded = global_time_cuts(len(s), lambda k: int(s[k]), valid_frac, test_frac, valid_start, test_start)
    labels = np.where(ts < t1, TRAIN, np.where(ts < t2, VALID, TEST)).astype(np.int8)
    stats = {}
    for col, what in (("user", "users"), ("item", "items")):
        codes, n = _codes(df[col])
        in_train = np.bincount(codes[labels == TRAIN], minlength=n) > 0
        for code, name in ((VALID, "valid"), (TEST, "test")):
            in_part = np.bincount(codes[labels == code], minlength=n) > 0
            stats[f"cold_{what}_{name}"] = int((in_part & ~in_train).sum())
    recorded["cuts"] = {"valid_start": t1, "test_start": t2}
    return labels, df, recorded, stats


def global_time_cuts(
    n: int,
    kth: Callable[[int], int],
    valid_frac: float | None,
    test_frac: float | None,
    valid_start: int | None,
    test_start: int | None,
) -> tuple[int, int, dict[str, Any]]:
    """``(t1, t2, recorded params)`` of a global-time split of ``n`` rows; ``kth(k)`` is the
    k-th smallest timestamp (0-based), asked for only with fractions (see :func:`split_global_time`)."""
    explicit = valid_start is not None or test_start is not None
    if explicit and (valid_frac is not None or test_frac is not None):
        raise ValueError("global-time takes either valid_frac/test_frac or valid_start/test_start, not both")
    if explicit:
        if valid_start is None or test_start is None:
            raise ValueError("global-time with explicit cuts needs both valid_start and test_start")
        t1, t2 = int(valid_start), int(test_start)
        if t1 > t2:
            raise ValueError(f"global-time valid_start ({t1}) must be <= test_start ({t2})")
        return t1, t2, {"cut_mode": "explicit"}
    vf = 0.1 if valid_frac is None else valid_frac
    tf = 0.1 if test_frac is None else test_frac
    check_frac("valid_frac", vf)
    check_frac("test_frac", tf)
    if vf + tf >= 1:
        raise ValueError(f"global-time valid_frac + test_frac must be < 1; got {vf} + {tf}")
    n_test, n_held = int(round(n * tf)), int(round(n * (vf + tf)))
    after = kth(n - 1) + 1 if n else 0
    t2 = kth(n - n_test) if n_test > 0 else after
    t1 = kth(n - n_held) if n_held > 0 else after
    return min(t1, t2), t2, {"cut_mode": "fractions", "valid_frac": vf, "test_frac": tf}


_PROTOCOL_FUNCS: dict[str, tuple[Callable[..., _Result], tuple[str, ...]]] = {
    "paper": (split_paper, ("min_user_ratings", "holdout_frac", "test_frac_of_holdout", "repeats", "ids")),
    "mmrec": (split_mmrec, ("valid_test_frac", "small_user_threshold")),
    "loo": (split_loo, ()),
    "global-time": (split_global_time, ("valid_frac", "test_frac", "valid_start", "test_start")),
    "user-time": (split_user_time, ("valid_test_frac", "small_user_threshold")),
}


# ------------------------------------------------------------------------------- helpers
def _on_pairs(
    df: pd.DataFrame, recipe: Callable[[pd.DataFrame], tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Run ``recipe`` on each (user, item) pair's first row; other rows of the pair follow it.

    ``recipe(d) -> (keep mask over d, labels over d[keep])``. Returns the keep mask and labels
    over ``df``'s rows and the kept frame (input order). Without repeats, ``d`` is ``df`` itself.
    """
    u, _ = _codes(df["user"])
    i, n_items = _codes(df["item"])
    pair = u * max(1, n_items) + i
    uniq, first_idx, inverse = np.unique(pair, return_index=True, return_inverse=True)
    if len(uniq) == len(df):
        keep, lab = recipe(df)
        return keep, lab, df.loc[keep].reset_index(drop=True)
    first_idx_sorted = np.sort(first_idx)  # first rows in input order
    rep = df.iloc[first_idx_sorted].reset_index(drop=True)
    rep_keep, rep_lab = recipe(rep)
    # map each unique pair (indexed like `uniq`) to its first row's position in `rep`
    pos_of_uniq = np.empty(len(uniq), dtype=np.int64)
    pos_of_uniq[np.searchsorted(uniq, pair[first_idx_sorted])] = np.arange(len(rep))
    rep_pos = pos_of_uniq[inverse.ravel()]
    full_rep_lab = np.full(len(rep), -1, dtype=np.int8)
    full_rep_lab[rep_keep] = rep_lab
    keep = rep_keep[rep_pos]
    labels = full_rep_lab[rep_pos][keep]
    return keep, labels, df.loc[keep].reset_index(drop=True)


def _pct_rank(values: np.ndarray, users: Any) -> np.ndarray:
    """``groupby(user).rank(pct=True)`` of ``values`` (average method, as in the recipe)."""
    codes, _ = pd.factorize(np.asarray(users, dtype=object), sort=False)  # same groups, faster than strings
    return pd.Series(values).groupby(codes, sort=False).rank(pct=True).to_numpy()


def _codes(col: pd.Series) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(col, sort=False)
    return codes.astype(np.int64, copy=False), len(uniques)


def _refuse_repeats(df: pd.DataFrame, protocol: str) -> None:
    dup = df.duplicated(["user", "item"], keep="first")
    if dup.any():
        ex = df.loc[dup, ["user", "item"]].head(3).to_records(index=False).tolist()
        raise repeats_error(protocol, int(dup.sum()), ex)


def repeats_error(protocol: str, n_repeats: int, examples: list[Any]) -> ValueError:
    """The refusal of a temporal protocol given repeat (user, item) rows."""
    return ValueError(
        f"protocol {protocol!r} needs one interaction per (user, item) pair, but {n_repeats} rows repeat "
        f"a pair (e.g. {examples}): a repeat after the cut would leak; dedupe with keep='earliest' or 'latest'"
    )


def check_frac(name: str, value: Any) -> None:
    if not isinstance(value, (int, float, np.floating)) or isinstance(value, bool) or not 0 <= value <= 1:
        raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}")
