"""Memory an MMRec model will need, estimated before anything is built; refuse what will not fit.

Several MMRec models build dense ``n_items × n_items`` item–item similarity graphs (FREEDOM,
LATTICE, MGCN, SMORE, DRAGON, PGL, ItemKNNCBF, DA-MRS): 35,000 items make one such float32 matrix
4.9 GB, and LATTICE keeps several alive while it trains. A model that does not fit would be
killed by the OS (or fail deep in CUDA); instead the estimate is logged first and a run that
would not fit is refused with it (:class:`InsufficientMemoryError`).

The estimate, in float32 (4 bytes) values:
``dense × n_items²`` (dense graphs alive at the model's peak, :data:`DENSE_ITEM_GRAPHS`)
``+ 4 × max(batch_size, eval_batch_size) × (n_users + n_items)`` (score blocks and in-batch
contrastive terms) ``+ 16 × (n_users + n_items) × (embedding_size + feature dims)`` (embeddings,
features, their gradients and Adam's two moments, the best-state copy). The counts of dense
graphs come from the growth of peak RSS with ``n_items`` over one epoch on CPU (600 users;
n_items 3,800 → 8,600, LATTICE 2,900 → 5,800): FREEDOM 1.0, DRAGON 0.8, ItemKNNCBF 3.9,
LATTICE 12.2 (its learned graph is rebuilt densely, with autograd, every step); FREEDOM-like
models are counted 2 for headroom.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import torch

from benchmark.errors import BenchError

log = logging.getLogger(__name__)

#: dense n_items × n_items float32 matrices alive at once at the model's peak (fit and score)
DENSE_ITEM_GRAPHS: dict[str, int] = {
    "FREEDOM": 2,
    "PGL": 2,
    "DRAGON": 2,
    "SMORE": 2,
    "MGCN": 2,
    "DAMRS": 2,
    "ItemKNNCBF": 4,
    "LATTICE": 13,
}
#: share of the available memory a run may plan to use (the rest is headroom for fragmentation)
USABLE_FRACTION = 0.9


class InsufficientMemoryError(BenchError, MemoryError):
    """The model's estimated peak memory exceeds what the device has available."""


def estimate_bytes(
    model: str, n_users: int, n_items: int, feature_dims: Mapping[str, int], settings: Mapping[str, Any]
) -> tuple[int, int]:
    """(estimated peak bytes, bytes of its dense item–item graphs) for one fit of ``model``."""
    dense = DENSE_ITEM_GRAPHS.get(model, 0) * 4 * n_items * n_items
    batch = max(int(settings.get("train_batch_size") or 0), int(settings.get("eval_batch_size") or 0))
    emb = int(settings.get("embedding_size") or 64) + sum(feature_dims.values())
    rest = 4 * (4 * batch * (n_users + n_items) + 16 * (n_users + n_items) * emb)
    return dense + rest, dense


def available_bytes(device: torch.device) -> int:
    """Free memory on ``device``: CUDA's free bytes, else the system's available RAM."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))


def check_memory(
    model: str,
    n_users: int,
    n_items: int,
    feature_dims: Mapping[str, int],
    settings: Mapping[str, Any],
    device: torch.device,
) -> int:
    """Log the estimate; raise :class:`InsufficientMemoryError` when it exceeds the usable memory."""
    need, dense = estimate_bytes(model, n_users, n_items, feature_dims, settings)
    have = available_bytes(device)
    graphs = (
        f", of which {DENSE_ITEM_GRAPHS[model]} dense {n_items:,}² item-item graph(s) {_gib(dense)}" if dense else ""
    )
    message = f"MMRec {model} on {n_users:,} users × {n_items:,} items: estimated peak memory {_gib(need)}{graphs}"
    log.info("%s; %s available on %s", message, _gib(have), device)
    if need > USABLE_FRACTION * have:
        raise InsufficientMemoryError(
            f"{message}, but only {_gib(have)} is available on {device}: refused before building it "
            "(use a machine or GPU with more memory, or a smaller catalogue)"
        )
    return need


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"
