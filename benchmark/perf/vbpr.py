"""VBPR speed and quality: ours (Lightning) against Cornac's ``cornac.models.VBPR`` on identical
data, batch size and epochs, in one run.

    python -m benchmark.perf.vbpr [--users 19400 --items 7000 --dim 512 --epochs 5 --batch-size 100]
                                  [--threads N] [--small] [--profile 15]

Both models train on the same synthetic split (:func:`benchmark.demo.synthetic.make_synthetic`:
users and items with latent topic preferences, item features that reveal the item's topic
through noise, plus a hidden collaborative factor and a popularity skew) with Cornac's defaults (k = k2 = 10, lr 0.005,
λ_w = λ_b = 0.01, λ_e = 0). Both are scored through our evaluator on the same split. Printed:
seconds per epoch, whole ``fit`` time, Recall@20 on valid and test, the time ratio, and the
process's peak resident memory after each phase (``ru_maxrss``; it only grows, so the second
phase's number includes the first's peak). ``--profile N`` runs both ``fit`` calls under
``cProfile`` and prints each one's N functions with the most time of their own (where the time
goes; the profiler's overhead inflates the times, so the timed rows come from a run without it).

Ours is looked up by name in the model registry (``benchmark`` never imports ``baselines``), so the
baselines plug-in must be installed (it is in this repository's editable install).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import resource
import sys
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from benchmark.demo.synthetic import make_synthetic
from benchmark.features import ItemFeatures
from benchmark.split import Split

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- Cornac side
class CornacScorer:
    """Puts a fitted Cornac model behind our ``score(user_ids)`` so our evaluator ranks it.

    Valid only when the Cornac train set was built by :func:`cornac_train_set` (identity id maps,
    so Cornac's user/item indices are our dense ids).
    """

    def __init__(self, model: Any) -> None:
        self.model = model

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        rows = [np.asarray(self.model.score(int(u)), dtype=np.float32) for u in user_ids.tolist()]
        return torch.from_numpy(np.stack(rows)) if rows else torch.zeros(0, self.model.total_items)


def cornac_train_set(split: Split, features: ItemFeatures, seed: int = 0) -> Any:
    """``cornac.data.Dataset`` of ``split.train`` whose indices equal our dense ids, with ``features``
    attached as its ``item_image`` modality."""
    from cornac.data import Dataset, ImageModality

    uid_map = OrderedDict((u, u) for u in range(split.n_users))
    iid_map = OrderedDict((i, i) for i in range(split.n_items))
    train = split.train[["user_id", "item_id"]].drop_duplicates()
    triples = list(zip(train["user_id"].tolist(), train["item_id"].tolist(), [1.0] * len(train)))
    ds = Dataset.build(triples, fmt="UIR", global_uid_map=uid_map, global_iid_map=iid_map, seed=seed)
    values = features.values.clone()
    values[~features.mask] = 0.0
    image = ImageModality(features=values.numpy())
    image.build(id_map=ds.iid_map)
    ds.add_modalities(item_image=image)
    return ds


# ----------------------------------------------------------------------------- the run
def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run(
    n_users: int,
    n_items: int,
    dim: int,
    epochs: int,
    batch_size: int,
    seed: int = 0,
    per_user: tuple[int, int] = (5, 12),
    profile: int = 0,
) -> dict[str, Any]:
    """Train both VBPRs for ``epochs`` epochs on one synthetic split; times, recalls and memory
    (and, with ``profile`` > 0, each fit's top ``profile`` functions by own time)."""
    from benchmark.evaluation import evaluate
    from benchmark.registry import create_model

    t0 = time.perf_counter()
    split, feats = make_synthetic(n_users, n_items, dim, min_per_user=per_user[0], max_per_user=per_user[1], seed=seed)
    gen_s = time.perf_counter() - t0
    summary = split.summary()
    out: dict[str, Any] = {
        "n_users": split.n_users,
        "n_items": split.n_items,
        "dim": dim,
        "train_pairs": summary["parts"]["train"]["interactions"],
        "epochs": epochs,
        "batch_size": batch_size,
        "generate_s": gen_s,
        "torch_threads": torch.get_num_threads(),
    }

    def recalls(model: Any) -> dict[str, float]:
        return {
            part: evaluate(model, split, part=part, ks=(20,), metrics=("recall",), progress=False).means()["recall@20"]
            for part in ("valid", "test")
        }

    # ours: no early stop, a single validation check at the last epoch (eval excluded from epoch time)
    train = {"batch_size": batch_size, "max_epochs": epochs, "eval_every": epochs, "patience": 1}
    ours = create_model("vbpr", feature="clip_image", seed=seed, train=train)
    t0 = time.perf_counter()
    profiles: dict[str, str] = {}
    _profiled(lambda: ours.fit(split, feats), profile, profiles, "ours")
    fit_s = time.perf_counter() - t0
    out["ours"] = {
        "epoch_s": float(np.mean(ours.epoch_times)),
        "fit_s": fit_s,
        **recalls(ours),
        "peak_rss_mb": _peak_rss_mb(),
    }

    import cornac

    ds = cornac_train_set(split, feats["clip_image"], seed=seed)
    theirs = cornac.models.VBPR(
        k=10,
        k2=10,
        n_epochs=epochs,
        batch_size=batch_size,
        learning_rate=0.005,
        lambda_w=0.01,
        lambda_b=0.01,
        lambda_e=0.0,
        use_gpu=False,
        verbose=False,
        seed=seed,
    )
    t0 = time.perf_counter()
    _profiled(lambda: theirs.fit(ds), profile, profiles, "cornac")
    cfit_s = time.perf_counter() - t0
    out["cornac"] = {
        "epoch_s": cfit_s / epochs,
        "fit_s": cfit_s,
        **recalls(CornacScorer(theirs)),
        "peak_rss_mb": _peak_rss_mb(),
        "version": cornac.__version__,
    }
    out["epoch_ratio_ours_over_cornac"] = out["ours"]["epoch_s"] / out["cornac"]["epoch_s"]
    out["profiles"] = profiles
    return out


def _profiled(call: Any, top: int, into: dict[str, str], name: str) -> None:
    """Run ``call``; with ``top`` > 0 under cProfile, its ``top`` rows by own time kept as text."""
    if top <= 0:
        call()
        return
    prof = cProfile.Profile()
    prof.runcall(call)
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    into[name] = buf.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmark.perf.vbpr", description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=19400)
    ap.add_argument("--items", type=int, default=7000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--seeds", help="comma-separated seeds: one run each, then the mean and spread of both models")
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads for both (default: torch's)")
    ap.add_argument("--small", action="store_true", help="a seconds-long run (400 users, 200 items, 32-d, 2 epochs)")
    ap.add_argument("--profile", type=int, default=0, metavar="N", help="cProfile both fits, print N rows each")
    args = ap.parse_args(argv)
    if args.small:
        args.users, args.items, args.dim, args.epochs = 400, 200, 32, 2
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)
    seeds = [int(x) for x in args.seeds.split(",")] if args.seeds else [args.seed]
    runs = [
        run(args.users, args.items, args.dim, args.epochs, args.batch_size, seed, profile=args.profile)
        for seed in seeds
    ]
    for r in runs:
        _print_run(r)
    if len(runs) > 1:
        _print_seeds(runs, seeds)
    return 0


def _print_seeds(runs: list[dict[str, Any]], seeds: list[int]) -> None:
    """Mean ± sd over the seeds (each seed: its own data, initialisation and sampling)."""
    print(f"\nover seeds {seeds}: mean ± sd")
    for name in ("ours", "cornac"):
        cols = {k: np.array([r[name][k] for r in runs]) for k in ("epoch_s", "valid", "test")}
        print(
            f"{name:<8} s/epoch {cols['epoch_s'].mean():.3f} ± {cols['epoch_s'].std(ddof=1):.3f}   "
            f"valid R@20 {cols['valid'].mean():.4f} ± {cols['valid'].std(ddof=1):.4f}   "
            f"test R@20 {cols['test'].mean():.4f} ± {cols['test'].std(ddof=1):.4f}"
        )
    ratio = np.array([r["epoch_ratio_ours_over_cornac"] for r in runs])
    print(f"epoch time ratio ours/cornac: {ratio.mean():.2f} (per seed {', '.join(f'{x:.2f}' for x in ratio)})")


def _print_run(r: dict[str, Any]) -> None:
    print(
        f"data: {r['n_users']} users, {r['n_items']} items, {r['train_pairs']} train pairs, {r['dim']}-d features; "
        f"{r['epochs']} epochs, batch {r['batch_size']}, torch threads {r['torch_threads']} "
        f"(generated in {r['generate_s']:.1f}s)"
    )
    print(f"{'model':<8} {'s/epoch':>9} {'fit s':>8} {'valid R@20':>11} {'test R@20':>10} {'peak RSS MB':>12}")
    for name in ("ours", "cornac"):
        m = r[name]
        print(
            f"{name:<8} {m['epoch_s']:>9.3f} {m['fit_s']:>8.2f} {m['valid']:>11.4f} {m['test']:>10.4f} "
            f"{m['peak_rss_mb']:>12.0f}"
        )
    print(f"epoch time ratio ours/cornac: {r['epoch_ratio_ours_over_cornac']:.2f}")
    for name, text in r["profiles"].items():
        print(f"\n== cProfile of {name}'s fit (top functions by own time; times include the profiler's overhead)")
        print(text.strip())


if __name__ == "__main__":
    sys.exit(main())
