"""The one masking rule every model is evaluated under.

When evaluating part P, the items a user has in the parts *before* P are set to ``-inf``:

- ``valid``: items in the user's ``train`` interactions;
- ``test``: items in the user's ``train`` and ``valid`` interactions;
- ``train``: nothing (there is no earlier part).

``-inf`` items are never recommended (see :mod:`benchmark.evaluation.ranking`). Models never mask
themselves (``Recommender.score`` returns raw scores), so every model is ranked by this rule.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence

import numpy as np
import torch

from benchmark.evaluation.ranking import check_no_nan
from benchmark.split import PARTS, Split

__all__ = ["seen_parts_for", "seen_csr", "part_csr", "mask_seen", "mask_with_csr", "csr_rows"]

# CSRs are cached per split object (and per parts) because callers mask batch after batch.
_CACHE: dict[int, dict[tuple[str, ...], tuple[torch.Tensor, torch.Tensor]]] = {}


def seen_parts_for(part: str) -> tuple[str, ...]:
    """Parts whose items are masked when evaluating ``part``."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; allowed: {', '.join(PARTS)}")
    return PARTS[: PARTS.index(part)]


def part_csr(split: Split, parts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """``split.csr(parts)``, cached per split object (callers ask batch after batch, epoch after epoch)."""
    parts = tuple(parts)
    key = id(split)
    per_split = _CACHE.get(key)
    if per_split is None:
        per_split = _CACHE[key] = {}
        weakref.finalize(split, _CACHE.pop, key, None)
    if parts not in per_split:
        per_split[parts] = split.csr(parts)
    return per_split[parts]


def seen_csr(split: Split, part: str) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR ``(indptr, indices)`` of the items masked for ``part`` (cached per split object)."""
    return part_csr(split, seen_parts_for(part))


def csr_rows(indptr: torch.Tensor, indices: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather CSR rows ``rows`` as COO ``(row position in rows, column)`` without a python loop.

    Runs in NumPy on the CPU (the index arrays are small next to a score batch); returns CPU tensors.
    """
    ptr = indptr.cpu().numpy()
    idx = indices.cpu().numpy()
    r = rows.cpu().numpy().astype(np.int64, copy=False)
    starts = ptr[r]
    lengths = ptr[r + 1] - starts
    pos = np.repeat(np.arange(len(r), dtype=np.int64), lengths)
    # element j of the gathered rows sits at starts[row] + (j - first position of its row)
    offsets = np.arange(len(pos), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return torch.from_numpy(pos), torch.from_numpy(idx[np.repeat(starts, lengths) + offsets])


def mask_with_csr(
    scores: torch.Tensor,
    user_ids: torch.Tensor,
    csr: tuple[torch.Tensor, torch.Tensor],
    *,
    nan_context: str | None = None,
) -> torch.Tensor:
    """Set ``scores[b, i] = -inf`` for every item ``i`` in CSR row ``user_ids[b]`` (in place).

    With ``nan_context``, first check that none of the cells about to be masked holds a NaN
    (masking would hide it) and raise naming ``nan_context`` and the rows if one does.
    """
    indptr, indices = csr
    if scores.ndim != 2 or scores.shape[0] != len(user_ids):
        raise ValueError(
            f"scores must be [len(user_ids) x n_items]; got {tuple(scores.shape)} for {len(user_ids)} users"
        )
    pos, cols = csr_rows(indptr, indices, user_ids.detach().cpu())
    if len(cols):
        if int(cols.max()) >= scores.shape[1]:
            raise ValueError(f"scores have {scores.shape[1]} items but the split has item id {int(cols.max())}")
        pos, cols = pos.to(scores.device), cols.to(scores.device)
        if nan_context is not None and bool(torch.isnan(scores[pos, cols]).any()):
            check_no_nan(scores, nan_context)  # raises, naming the rows
        scores[pos, cols] = float("-inf")
    return scores


def mask_seen(scores: torch.Tensor, user_ids: torch.Tensor | Sequence[int], split: Split, part: str) -> torch.Tensor:
    """Mask (in place, and return) the items each user saw in the parts before ``part``.

    ``scores`` is ``[len(user_ids) × n_items]`` (any float dtype, any device); rows follow
    ``user_ids``. Valid: train items masked; test: train + valid items masked.
    """
    uid = user_ids if isinstance(user_ids, torch.Tensor) else torch.as_tensor(list(user_ids), dtype=torch.long)
    if not seen_parts_for(part):
        return scores
    return mask_with_csr(scores, uid, seen_csr(split, part))
