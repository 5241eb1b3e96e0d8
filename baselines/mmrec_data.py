"""Our split and item features in the shapes MMRec's classes read, built by hand (never ``quick_start``).

- :func:`write_inputs` writes the files an MMRec model opens itself from its dataset folder: the
  item features as ``image_feat.npy``/``text_feat.npy`` (no interaction file, so no part of the
  split but ``train`` reaches MMRec) and, for models that read one (DualGNN, DRAGON), the user–user graph
  ``user_graph_dict.npy`` that MMRec's ``preprocessing/dualgnn-gen-u-u-matrix.py`` makes
  (:func:`user_graph_dict`).
- :func:`train_loader` builds MMRec's own ``RecDataset`` from ``split.train`` (rows in the order
  of the exported ``.inter`` file, so MMRec's shuffling draws the same batches as its ``main.py``
  on that file) and its ``TrainDataLoader`` (MMRec's negative sampling). Only the training part
  is handed to MMRec: validation runs through our evaluator, and the test part never reaches it.

MMRec has no feature mask. An item without a feature (``mask`` False, e.g. an item the LVLM did
not describe) gets the mean of the items that have one, as MMRec's own preprocessing fills items
without an image; a zero row would make the cosine k-NN graphs of SMORE, LATTICE, MGCN … divide
by zero. (:func:`benchmark.data.interop.export_mmrec` writes zeros instead, so that its files
read back with the mask.)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

# the feature file names written into the working dataset folder (the MMRec config points at them) are the
# ones `export_mmrec` writes
from benchmark.data.interop import MMREC_FEATURE_FILES as FEATURE_FILES
from benchmark.features import ItemFeatures
from benchmark.split import Split

USER_GRAPH_FILE = "user_graph_dict.npy"
#: neighbours kept per user, as in MMRec's DualGNN preprocessing script
USER_GRAPH_TOP = 200


def user_graph_dict(users: np.ndarray, items: np.ndarray, n_users: int, top: int = USER_GRAPH_TOP) -> dict[int, list]:
    """``{user: [neighbour ids, shared-item counts]}`` for every user id ``0..n_users-1``.

    Two users are neighbours when they share a training item; the weight is how many they share;
    each user keeps its ``top`` heaviest neighbours, heaviest first (ties: lower id first). Built
    with one sparse product instead of MMRec's dense ``n_users × n_users`` matrix.
    """
    r = sp.csr_matrix((np.ones(len(users), dtype=np.float32), (users, items)), shape=(n_users, int(items.max()) + 1))
    r.sum_duplicates()
    r.data[:] = 1.0  # a repeated (user, item) pair counts once, as in MMRec's per-user item sets
    co = (r @ r.T).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    out: dict[int, list] = {}
    for u in range(n_users):
        lo, hi = co.indptr[u], co.indptr[u + 1]
        cols, vals = co.indices[lo:hi], co.data[lo:hi]
        order = np.lexsort((cols, -vals))[:top]
        out[u] = [cols[order].astype(int).tolist(), vals[order].astype(float).tolist()]
    return out


def write_inputs(
    workdir: Path,
    split: Split,
    features: Mapping[str, ItemFeatures],
    user_graph: bool,
) -> dict[str, Path]:
    """Write MMRec's dataset folder for ``split`` into ``workdir``; ``features`` keyed by role (image/text)."""
    workdir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for role, feats in features.items():
        feats.check_aligned(split.n_items)
        values = feats.values.detach().cpu().numpy().astype(np.float32, copy=True)
        mask = feats.mask.cpu().numpy()
        if not mask.any():
            raise ValueError(f"item feature {feats.name!r} has no item with a value")
        values[~mask] = values[mask].mean(axis=0)
        paths[role] = workdir / FEATURE_FILES[role]
        np.save(paths[role], values)
    if user_graph:
        train = split.train
        graph = user_graph_dict(train["user_id"].to_numpy(), train["item_id"].to_numpy(), split.n_users)
        paths["user_graph"] = workdir / USER_GRAPH_FILE
        np.save(paths["user_graph"], np.array(graph, dtype=object), allow_pickle=True)
    return paths


def train_frame(split: Split, uid_field: str, iid_field: str) -> pd.DataFrame:
    """``split.train`` as MMRec's training frame: its two id columns, rows in the export's order."""
    train = split.train
    return pd.DataFrame(
        {uid_field: train["user_id"].to_numpy(dtype=np.int64), iid_field: train["item_id"].to_numpy(dtype=np.int64)}
    )


def train_loader(dataset_mod: Any, dataloader_mod: Any, config: Any, split: Split) -> Any:
    """MMRec's ``TrainDataLoader`` over our ``split.train`` (user/item counts = ours, not max id + 1)."""
    df = train_frame(split, config["USER_ID_FIELD"], config["ITEM_ID_FIELD"])
    dataset = dataset_mod.RecDataset(config, df=df)
    dataset.user_num, dataset.item_num = split.n_users, split.n_items
    dataset.inter_num = len(df)  # MMRec sets this while printing the dataset; its loader reads it
    return dataloader_mod.TrainDataLoader(config, dataset, batch_size=config["train_batch_size"], shuffle=True)
