"""Beyond-accuracy metrics for ``vlm4rec-bench evaluate`` (TREC runs): the catalogue, training
popularity and item feature they need, and their values per run.

The catalogue is every item id in ``--train``, the qrels, ``--item-features`` and any run (so
all runs share it: Gini and the long tail are over the same items); popularity = distinct
training users per item from ``--train`` (a qrels-format file of the training interactions);
``--item-features`` is an ``.npz`` with ``items`` (ids) and ``values`` (``[n × d]``) for ``ild``.
The kernels are :mod:`benchmark.evaluation.beyond`.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import CliError
from benchmark.evaluation.beyond import BeyondContext, compute_beyond, long_tail
from benchmark.evaluation.metrics import BEYOND_METRIC_NAMES, MetricSpec

__all__ = ["BeyondInputs", "add_arguments", "beyond_inputs", "beyond_values"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--train",
        type=Path,
        metavar="QRELS",
        help="training interactions as 'user 0 item rel' lines: the popularity behind aplt, novelty and the long tail",
    )
    p.add_argument(
        "--item-features", type=Path, metavar="NPZ", help="item feature for ild: an .npz with 'items' and 'values'"
    )


@dataclass
class BeyondInputs:
    """The shared catalogue (id → dense index) and the context the kernels read."""

    index: pd.Index
    ctx: BeyondContext


def beyond_inputs(
    args: argparse.Namespace, specs: list[MetricSpec], qrels: pd.DataFrame, runs: list[pd.DataFrame]
) -> BeyondInputs | None:
    """None when no beyond-accuracy metric is asked; a :class:`CliError` when its inputs are missing."""
    names = {s.name for s in specs if s.name in BEYOND_METRIC_NAMES}
    if not names:
        return None
    if args.train is None:
        raise CliError(f"--metrics {', '.join(sorted(names))}: give --train (the training interactions' popularity)")
    if "ild" in names and args.item_features is None:
        raise CliError("--metrics ild: give --item-features (the item feature its distances are measured on)")
    from benchmark.evaluation.trec import read_qrels

    train, _ = read_qrels(args.train, strict=True)
    feats = _read_features(args.item_features) if args.item_features else None
    ids = [train["item"], qrels["item"], *(r["item"] for r in runs)] + ([feats[0]] if feats else [])
    index = pd.Index(sorted(set(pd.concat(ids).astype(str))))
    pairs = train[["user", "item"]].drop_duplicates()
    pop = np.bincount(index.get_indexer(pairs["item"].astype(str)), minlength=len(index))
    values = mask = None
    if feats is not None:
        pos = index.get_indexer(feats[0])
        values = np.zeros((len(index), feats[1].shape[1]))
        values[pos] = feats[1]
        mask = np.zeros(len(index), bool)
        mask[pos] = True
    ctx = BeyondContext(pop, int(pairs["user"].nunique()), long_tail(pop), values, mask, "item-features")
    return BeyondInputs(index, ctx)


def _read_features(path: Path) -> tuple[pd.Series, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as z:
            items, values = pd.Series(z["items"]).astype(str), np.asarray(z["values"], np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise CliError(f"--item-features {path}: need an .npz with arrays 'items' and 'values' ({exc})") from None
    if values.ndim != 2 or len(values) != len(items):
        raise CliError(f"--item-features {path}: 'values' must be [len(items) × d]; got {values.shape}")
    return items, values


def beyond_values(
    inputs: BeyondInputs, ranked: pd.DataFrame, users: np.ndarray, specs: list[MetricSpec]
) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-user columns (aligned with ``users``; a user without a list has an empty one) and
    run-level values of the beyond-accuracy ``specs`` for one ranked run (``user, item, rank``)."""
    wanted = [s for s in specs if s.name in BEYOND_METRIC_NAMES]
    kmax = max(s.k for s in wanted)
    top = ranked[ranked["rank"] <= kmax]
    top = top[top["user"].isin(pd.Index(users))]
    arr = np.full((len(users), kmax), -1, dtype=np.int64)
    arr[pd.Index(users).get_indexer(top["user"]), top["rank"].to_numpy() - 1] = inputs.index.get_indexer(
        top["item"].astype(str)
    )
    names = list(dict.fromkeys(s.name for s in wanted))
    cols, run = compute_beyond(arr, inputs.ctx, names, sorted({s.k for s in wanted}))
    labels = {s.label for s in wanted}
    kept = {
        k: v for k, v in run.items() if k in labels or (k.startswith("ild_") and f"ild@{k.split('@')[1]}" in labels)
    }
    return {c: v for c, v in cols.items() if c in labels}, kept
