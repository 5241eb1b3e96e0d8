"""Full-ranking evaluation speed: our evaluator vs RecBole 1.2.1's full-sort path and vs ranx.

    python -m benchmark.perf.evaluation [--users 40000 --items 25000 --dim 64 --k 50]
                                        [--batch-size 1024] [--threads 2] [--small] [--device cpu]
    python -m benchmark.perf.evaluation --scaling 50000,100000,200000 --items 100000 [--device cuda]

A generated problem: random 64-d user and item factors; interactions sampled from a Zipf-like
item popularity (≈20 per user), de-duplicated, each user's items shuffled and cut 8:1:1 into
train/valid/test; scores are ``U[users] @ V.T``. Evaluated: the test part, K in {10, 20, K}, six
metrics (Recall, NDCG, HitRate, Precision, MRR, MAP), train+valid masked.

Timed in the same process, on the same scores (torch on ``--device``, ``--threads`` threads):

0. **the floor** — what any exact full-ranking evaluator must do, and nothing else: per batch the
   matmul, the ``-inf`` mask of the seen items and one ``torch.topk``; ours is reported as a
   multiple of it (the rest is NaN checks, deterministic tie order, hits and metrics).
1. **full ranking** — ours: :func:`benchmark.evaluation.evaluate` (score, mask, deterministic
   top-K, per-user metrics, item coverage). RecBole: the same batch loop through its own code
   path, as its ``Trainer._full_sort_batch_eval`` does — score, ``scores[hist_u, hist_i] = -inf``,
   ``Collector.eval_batch_collect`` (``torch.topk`` + a dense positive matrix per batch), then
   ``Collector.get_data_struct`` and ``Evaluator.evaluate`` (``recbole.evaluator.metrics``).
2. **given top-K lists** — the top-K lists ours produced: ours
   :func:`benchmark.evaluation.evaluate_topk` vs ranx (``Qrels.from_df``/``Run.from_df`` +
   ``ranx.evaluate``; numba compilation warmed up beforehand and not timed).

Prints times, ratios (peer / ours: > 1 means we are faster), the largest disagreement of the
means (RecBole's MAP divides by min(K, |rel|), ours and ranx's by |rel|, so MAP is left out of
that check), and peak memory: the process's peak RSS (``getrusage``) before and after each step
(RSS never decreases within a run, so the growth over a step is that step's extra peak).

``--scaling U1,U2,…`` times ours and the floor at each user count (``--items`` items, problem
built from integer ids, each size in a fresh process, peers skipped) and prints seconds, seconds
per 1,000 users and the peak memory of the evaluation itself (RSS growth over it, or the CUDA
peak on a GPU): linear time and flat memory show as constant columns.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import sys
import time
from typing import Any

import numpy as np
import pandas as pd
import torch

log = logging.getLogger("benchmark.perf.evaluation")

METRICS = ("recall", "ndcg", "hitrate", "precision", "mrr", "map")
RECBOLE_NAMES = {
    "recall": "recall",
    "ndcg": "ndcg",
    "hitrate": "hit",
    "precision": "precision",
    "mrr": "mrr",
    "map": "map",
}
RANX_NAMES = {
    "recall": "recall",
    "ndcg": "ndcg",
    "hitrate": "hit_rate",
    "precision": "precision",
    "mrr": "mrr",
    "map": "map",
}


def _numpy_aliases_for_recbole() -> None:
    """RecBole 1.2.1 still uses aliases NumPy 2 removed (``np.float`` in its metrics; ``np.float_``,
    ``np.complex_``, ``np.bool8``, ``np.unicode_`` in its Config). Define them if absent."""
    for name, value in (
        ("float", float),
        ("float_", np.float64),
        ("complex_", np.complex128),
        ("bool8", np.bool_),
        ("unicode_", np.str_),
    ):
        if not hasattr(np, name):
            setattr(np, name, value)


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (MiB; Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_problem(n_users: int, n_items: int, dim: int, seed: int = 0, per_user: int = 20):
    """Generated split (8:1:1 per user) and the factor model scoring it."""
    from benchmark.split import Split

    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    pop = rng.permutation(pop / pop.sum())
    counts = np.maximum(3, rng.poisson(per_user, size=n_users))
    users = np.repeat(np.arange(n_users), counts)
    items = rng.choice(n_items, size=len(users), p=pop)
    pairs = np.unique(np.stack([users, items], 1), axis=0)
    users, items = pairs[:, 0], pairs[:, 1]
    # per user: random order, then 80% train, 10% valid, 10% test (at least one test item when ≥ 3)
    order = np.lexsort((rng.random(len(users)), users))
    users, items = users[order], items[order]
    starts = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
    n = np.diff(np.r_[starts, len(users)])
    pos = np.arange(len(users)) - np.repeat(starts, n)
    n_rep = np.repeat(n, n)
    n_test = np.maximum(1, np.round(0.1 * n_rep)).astype(int)
    n_valid = np.maximum(1, np.round(0.1 * n_rep)).astype(int)
    part = np.where(pos >= n_rep - n_test, 2, np.where(pos >= n_rep - n_test - n_valid, 1, 0))
    uw, iw = len(str(n_users)), len(str(n_items))
    ustr = np.char.add("u", np.char.zfill(users.astype(str), uw))
    istr = np.char.add("i", np.char.zfill(items.astype(str), iw))
    frames = {
        name: pd.DataFrame(
            {"user": ustr[part == p], "item": istr[part == p], "rating": 1.0, "timestamp": pos[part == p]}
        )
        for p, name in enumerate(("train", "valid", "test"))
    }
    split = Split.from_parts(
        frames, None, protocol="generated", params={"seed": seed, "n_users": n_users, "n_items": n_items}
    )
    g = torch.Generator().manual_seed(seed)
    U = torch.randn(split.n_users, dim, generator=g) / dim**0.25
    V = torch.randn(split.n_items, dim, generator=g) / dim**0.25
    return split, U, V


def make_problem_ids(n_users: int, n_items: int, dim: int, seed: int = 0, per_user: int = 20, device: str = "cpu"):
    """The same kind of problem built straight from integer ids (no string ids, no
    ``Split.from_parts``): what the scaling runs use at 10^5–10^6 users."""
    from benchmark.split import Split

    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    cum = np.cumsum(rng.permutation(pop / pop.sum()))
    counts = np.maximum(3, rng.poisson(per_user, size=n_users))
    users = np.repeat(np.arange(n_users, dtype=np.int64), counts)
    items = np.minimum(np.searchsorted(cum, rng.random(len(users))), n_items - 1)
    key = np.unique(users * n_items + items)  # sorted by user, then item
    users, items = key // n_items, key % n_items
    part = np.where(rng.random(len(users)) < 0.8, 0, np.where(rng.random(len(users)) < 0.5, 1, 2))
    # every user gets a test item (its first pair when the draws gave none), so the N users asked
    # for are the N users evaluated
    first = np.r_[0, np.flatnonzero(np.diff(users)) + 1]
    has_test = np.zeros(n_users, dtype=bool)
    has_test[users[part == 2]] = True
    part[first[~has_test[users[first]]]] = 2
    frames = {
        name: pd.DataFrame(
            {
                "user_id": users[part == p],
                "item_id": items[part == p],
                "rating": np.ones(int((part == p).sum()), np.float32),
                "timestamp": np.zeros(int((part == p).sum()), np.int64),
            }
        )
        for p, name in enumerate(("train", "valid", "test"))
    }
    split = Split(
        **frames,
        users=pd.DataFrame({"user_id": np.arange(n_users), "orig_user_id": np.arange(n_users).astype(str)}),
        items=pd.DataFrame({"item_id": np.arange(n_items), "orig_item_id": np.arange(n_items).astype(str)}),
        protocol="generated",
        fingerprint=f"generated-{n_users}x{n_items}-{seed}",
    )
    g = torch.Generator().manual_seed(seed)
    U = (torch.randn(n_users, dim, generator=g) / dim**0.25).to(device)
    V = (torch.randn(n_items, dim, generator=g) / dim**0.25).to(device)
    return split, U, V


def run_ours(split, U, V, ks, batch_size):
    from benchmark.evaluation import evaluate

    def score(user_ids: torch.Tensor) -> torch.Tensor:
        return U[user_ids.to(U.device)] @ V.T

    _sync(U)
    t = time.perf_counter()
    res = evaluate(
        score,
        split,
        part="test",
        ks=ks,
        metrics=METRICS,
        batch_size=batch_size,
        progress=False,
        keep_topk=True,
        name="factors",
    )
    _sync(U)
    return time.perf_counter() - t, res


def run_floor(split, U, V, k: int, batch_size: int) -> float:
    """The floor: per batch the matmul, the ``-inf`` mask of the seen items and one ``torch.topk``
    (the masked index lists are built beforehand, outside the timing)."""
    from benchmark.evaluation.masking import csr_rows, seen_csr

    seen = seen_csr(split, "test")
    users = np.unique(split.test["user_id"].to_numpy())
    batches = []
    for start in range(0, len(users), batch_size):
        uid = torch.from_numpy(users[start : start + batch_size])
        pos, cols = csr_rows(seen[0], seen[1], uid)
        batches.append((uid.to(U.device), pos.to(U.device), cols.to(U.device)))
    _sync(U)
    t = time.perf_counter()
    for uid, pos, cols in batches:
        scores = U[uid] @ V.T
        scores[pos, cols] = float("-inf")
        torch.topk(scores, k, dim=1)
    _sync(U)
    return time.perf_counter() - t


def _sync(x: torch.Tensor) -> None:
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)


def run_recbole(split, U, V, ks, batch_size):
    """RecBole's full-sort evaluation code path on the same scores (see the module docstring)."""
    _numpy_aliases_for_recbole()
    from recbole.evaluator import Collector, Evaluator

    config = {
        "metrics": [RECBOLE_NAMES[m] for m in METRICS],
        "topk": list(ks),
        "metric_decimal_place": 12,
        "eval_args": {"mode": "full"},
        "device": torch.device("cpu"),
    }
    collector, evaluator = Collector(config), Evaluator(config)
    hist = pd.concat([split.train, split.valid])[["user_id", "item_id"]].drop_duplicates()
    test = split.test[["user_id", "item_id"]].drop_duplicates()
    eval_users = np.unique(test["user_id"].to_numpy())
    # RecBole's dataloader hands each batch its history and positives as (row, item) index pairs
    h_u, h_i = hist["user_id"].to_numpy(), hist["item_id"].to_numpy()
    p_u, p_i = test["user_id"].to_numpy(), test["item_id"].to_numpy()
    h_order, p_order = np.argsort(h_u, kind="stable"), np.argsort(p_u, kind="stable")
    h_u, h_i, p_u, p_i = h_u[h_order], h_i[h_order], p_u[p_order], p_i[p_order]

    t = time.perf_counter()
    for start in range(0, len(eval_users), batch_size):
        uid = eval_users[start : start + batch_size]
        hs, he = np.searchsorted(h_u, [uid[0], uid[-1] + 1])
        ps, pe = np.searchsorted(p_u, [uid[0], uid[-1] + 1])
        hist_rows = torch.from_numpy(np.searchsorted(uid, h_u[hs:he]))
        pos_rows = torch.from_numpy(np.searchsorted(uid, p_u[ps:pe]))
        scores = U[torch.from_numpy(uid)] @ V.T
        scores[hist_rows, torch.from_numpy(h_i[hs:he])] = -np.inf
        collector.eval_batch_collect(scores, None, pos_rows, torch.from_numpy(p_i[ps:pe]))
    result = evaluator.evaluate(collector.get_data_struct())
    return time.perf_counter() - t, dict(result)


def _ranx_inputs(res, split):
    users = res.per_user["user_id"].to_numpy()
    r, c = np.nonzero(res.topk >= 0)
    run_df = pd.DataFrame(
        {
            "q_id": pd.Series(users[r].astype(str), dtype=object),
            "doc_id": pd.Series(res.topk[r, c].astype(str), dtype=object),
            "score": (res.topk.shape[1] - c).astype(np.float64),
        }
    )
    test = split.test[["user_id", "item_id"]].drop_duplicates()
    qrels_df = pd.DataFrame(
        {
            "q_id": pd.Series(test["user_id"].to_numpy().astype(str), dtype=object),
            "doc_id": pd.Series(test["item_id"].to_numpy().astype(str), dtype=object),
            "score": np.ones(len(test), dtype=np.int64),
        }
    )
    return qrels_df, run_df


def run_ranx(res, split, ks):
    import warnings

    import ranx

    qrels_df, run_df = _ranx_inputs(res, split)
    names = [f"{RANX_NAMES[m]}@{k}" for k in ks for m in METRICS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # warm-up: numba compiles (or loads its cache) on first use; not part of the timing
        ranx.evaluate(
            ranx.Qrels.from_df(qrels_df.head(50)), ranx.Run.from_df(run_df.head(200)), names, make_comparable=True
        )
        t = time.perf_counter()
        qrels = ranx.Qrels.from_df(qrels_df, q_id_col="q_id", doc_id_col="doc_id", score_col="score")
        run = ranx.Run.from_df(run_df, q_id_col="q_id", doc_id_col="doc_id", score_col="score")
        t_build = time.perf_counter() - t
        out = ranx.evaluate(qrels, run, names, make_comparable=True)
        t_total = time.perf_counter() - t
    return t_total, t_build, {k: float(v) for k, v in out.items()}


def run_ours_topk(res, split, ks):
    from benchmark.evaluation import evaluate_topk

    test = split.test[["user_id", "item_id"]].drop_duplicates().rename(columns={"user_id": "user", "item_id": "item"})
    t = time.perf_counter()
    out = evaluate_topk(res.topk, test, ks, METRICS, users=res.per_user["user_id"].tolist(), n_items=split.n_items)
    return time.perf_counter() - t, out


def scaling(args: argparse.Namespace, ks: tuple[int, ...]) -> list[dict[str, Any]]:
    """Ours and the floor at each ``--scaling`` user count, each in a fresh process."""
    import json
    import subprocess

    rows = []
    for n_users in [int(x) for x in args.scaling.split(",")]:
        cmd = [sys.executable, "-m", "benchmark.perf.evaluation", "--scaling-worker", str(n_users)]
        cmd += [
            "--items",
            str(args.items),
            "--dim",
            str(args.dim),
            "--k",
            str(args.k),
            "--batch-size",
            str(args.batch_size),
        ]
        cmd += ["--threads", str(args.threads), "--device", args.device, "--seed", str(args.seed)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            raise RuntimeError(f"scaling worker ({n_users} users) failed:\n{proc.stderr[-3000:]}")
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(
        f"scaling: {args.items:,} items, {args.dim}-d, K = {ks}, batch {args.batch_size}, {args.device}, {args.threads} threads"
    )
    print(f"{'users':>10}{'ours s':>10}{'floor s':>10}{'ours/floor':>11}{'s per 1k users':>16}{'eval peak MiB':>15}")
    for r in rows:
        print(
            f"{r['n_users']:>10,}{r['t_ours']:10.2f}{r['t_floor']:10.2f}{r['t_ours'] / r['t_floor']:11.2f}"
            f"{1000 * r['t_ours'] / r['n_users']:16.4f}{r['eval_peak_mib']:15.0f}"
        )
    return rows


def floor_and_ours(split, U, V, ks, batch_size: int, cuda: bool) -> tuple[float, float, Any, float | None]:
    """:func:`run_floor` then :func:`run_ours` on one problem: ``(floor s, ours s, ours' result,
    peak GPU MiB)``. The peak is that of the two evaluations, the float32 factors ``U`` and ``V``
    not counted; ``None`` unless ``cuda`` (the scaling worker and ``gpu_check`` share this)."""
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t_floor = run_floor(split, U, V, ks[-1], batch_size)
    t_ours, res = run_ours(split, U, V, ks, batch_size)
    peak = (torch.cuda.max_memory_allocated() - (U.numel() + V.numel()) * 4) / 2**20 if cuda else None
    return t_floor, t_ours, res, peak


def scaling_worker(n_users: int, args: argparse.Namespace, ks: tuple[int, ...]) -> None:
    import json

    split, U, V = make_problem_ids(n_users, args.items, args.dim, args.seed, device=args.device)
    before = peak_rss_mib()
    t_floor, t_ours, res, peak = floor_and_ours(split, U, V, ks, args.batch_size, cuda=args.device == "cuda")
    if peak is None:  # on the CPU: the growth of the process's peak RSS
        peak = peak_rss_mib() - before
    out = {"n_users": res.n_users, "t_ours": t_ours, "t_floor": t_floor, "eval_peak_mib": peak}
    print(json.dumps(out))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=None, help="default 40,000 (2,000 with --small)")
    p.add_argument("--items", type=int, default=None, help="default 25,000 (1,500 with --small)")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--k", type=int, default=50, help="largest cut-off (also evaluated: 10, 20)")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--small", action="store_true", help="2,000 users × 1,500 items (seconds; for tests)")
    p.add_argument("--device", default="cpu", help="where scores are computed and ranked (cpu, cuda)")
    p.add_argument("--scaling", help="comma-separated user counts: ours and the floor only, one process each")
    p.add_argument("--repeat", type=int, default=1, help="time ours and the floor this many times, keep the best")
    p.add_argument("--scaling-worker", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.users is None:
        args.users = 2000 if args.small else 40000
    if args.items is None:
        args.items = 1500 if args.small else 25000
    os.environ.setdefault("NUMBA_NUM_THREADS", str(args.threads))
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING)
    ks = tuple(sorted({k for k in (10, 20, args.k) if k <= args.k}))
    if args.scaling_worker:
        scaling_worker(args.scaling_worker, args, ks)
        return {}
    if args.scaling:
        return {"scaling": scaling(args, ks)}

    t = time.perf_counter()
    split, U, V = make_problem(args.users, args.items, args.dim, args.seed)
    U, V = U.to(args.device), V.to(args.device)
    print(
        f"problem: {split.n_users} users x {split.n_items} items, {args.dim}-d factors, "
        f"{len(split.train)}/{len(split.valid)}/{len(split.test)} train/valid/test interactions "
        f"(built in {time.perf_counter() - t:.1f} s); K = {ks}; batch {args.batch_size}; {args.threads} threads"
    )

    # Import the peers before timing anything, so no timing includes an import.
    _numpy_aliases_for_recbole()
    import ranx  # noqa: F401
    import recbole.evaluator  # noqa: F401

    rss0 = peak_rss_mib()
    t_ours, res = run_ours(split, U, V, ks, args.batch_size)
    rss_ours = peak_rss_mib()
    t_floor = run_floor(split, U, V, ks[-1], args.batch_size)
    for _ in range(args.repeat - 1):  # interleaved, best of each: contention hits both alike
        t_floor = min(t_floor, run_floor(split, U, V, ks[-1], args.batch_size))
        t_ours = min(t_ours, run_ours(split, U, V, ks, args.batch_size)[0])
    t_rb, rb = run_recbole(split, U, V, ks, args.batch_size)
    rss_rb = peak_rss_mib()
    t_ranx, t_ranx_build, rx = run_ranx(res, split, ks)
    t_ours_topk, res_topk = run_ours_topk(res, split, ks)

    ours = res.means()
    diff_rb = max(abs(ours[f"{m}@{k}"] - rb[f"{RECBOLE_NAMES[m]}@{k}"]) for m in METRICS if m != "map" for k in ks)
    diff_rx = max(abs(ours[f"{m}@{k}"] - rx[f"{RANX_NAMES[m]}@{k}"]) for m in METRICS for k in ks)
    topk_means = res_topk.means()
    diff_self = max(abs(ours[c] - topk_means[c]) for c in ours)
    batch_mib = args.batch_size * split.n_items * 4 / 2**20

    print(f"users evaluated: {res.n_users} (excluded, no test item: {res.n_excluded})")
    print("0) the floor (batched matmul + mask + torch.topk, nothing else)")
    print(f"   floor    {t_floor:8.3f} s")
    print("1) full ranking (score + mask + top-K + metrics)")
    print(f"   ours     {t_ours:8.3f} s   ratio ours/floor = {t_ours / t_floor:.2f}x")
    print(f"   RecBole  {t_rb:8.3f} s   ratio RecBole/ours = {t_rb / t_ours:.2f}x")
    print("2) metrics of the same top-K lists")
    print(f"   ours     {t_ours_topk:8.3f} s")
    print(
        f"   ranx     {t_ranx:8.3f} s (of which Qrels/Run building {t_ranx_build:.3f} s)   "
        f"ratio ranx/ours = {t_ranx / t_ours_topk:.2f}x"
    )
    print(
        f"agreement of means: |ours - RecBole| <= {diff_rb:.2e} (MAP excluded: different definition), "
        f"|ours - ranx| <= {diff_rx:.2e}, |full - top-K path| <= {diff_self:.2e}"
    )
    print(
        f"peak RSS: {rss0:.0f} MiB before ours, {rss_ours:.0f} MiB after ours (+{rss_ours - rss0:.0f}; "
        f"one batch of float32 scores = {batch_mib:.0f} MiB), {rss_rb:.0f} MiB after RecBole (+{rss_rb - rss_ours:.0f})"
    )
    print("means (ours): " + ", ".join(f"{k}={v:.4f}" for k, v in ours.items() if k.endswith(f"@{ks[-1]}")))
    return {
        "t_floor": t_floor,
        "t_ours": t_ours,
        "t_recbole": t_rb,
        "t_ranx": t_ranx,
        "t_ours_topk": t_ours_topk,
        "diff_recbole": diff_rb,
        "diff_ranx": diff_rx,
        "diff_self": diff_self,
        "n_users": res.n_users,
        "peak_rss_ours_mib": rss_ours - rss0,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
    sys.exit(0)
