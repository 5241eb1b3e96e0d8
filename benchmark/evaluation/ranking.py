"""Deterministic top-K: score descending, ties broken by the lower item id first.

``torch.topk`` does not order ties stably and, at the K-th position, may pick any of several
items with the same score, so its output alone is not reproducible across devices or batch
sizes. :func:`topk_items` uses it only to find the K-th value per row and then fixes the set
exactly: every item with a score above the K-th value is in; among the items *equal* to it the
lowest ids are taken. The final order is (score desc, item id asc) by two stable sorts.

``-inf`` items never count as recommended: a row with fewer than K finite-or-``+inf`` scores
yields a shorter list, padded with item ``-1`` (score ``-inf``). NaN scores raise ``ValueError``.
"""

from __future__ import annotations

import torch

__all__ = ["topk_items", "check_no_nan", "check_candidates_for_nan", "PAD_ITEM"]

PAD_ITEM = -1


def _order_rows(vals: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sort each row by (value desc, id asc): stable sort by id, then stable sort by value."""
    idx, perm = torch.sort(idx, dim=1, stable=True)
    vals = torch.gather(vals, 1, perm)
    vals, perm = torch.sort(vals, dim=1, descending=True, stable=True)
    return vals, torch.gather(idx, 1, perm)


def check_no_nan(scores: torch.Tensor, context: str = "") -> None:
    """Raise ``ValueError`` naming ``context`` and the first bad rows if ``scores`` has NaN."""
    if not scores.is_floating_point():
        return
    # Row sums are NaN whenever a row holds a NaN (one read pass, no [B x n] mask); a NaN sum
    # without NaN (inf - inf) falls through to the exact check below.
    if bool(torch.isnan(scores.sum(dim=1)).any()) and bool(torch.isnan(scores).any()):
        bad = torch.isnan(scores).any(dim=1).nonzero().flatten()[:5].tolist()
        where = f" ({context})" if context else ""
        raise ValueError(f"NaN scores{where}: rows {bad} of this batch contain NaN; scores must be finite or -inf")


def check_candidates_for_nan(scores: torch.Tensor, candidates: torch.Tensor, context: str = "") -> None:
    """:func:`check_no_nan` without a pass over ``scores``: ``torch.topk`` orders NaN above every
    number on CPU and CUDA, so a row holding a NaN has one among its top candidates. Other
    devices get the full check."""
    if not scores.is_floating_point():
        return
    if scores.device.type not in ("cpu", "cuda"):
        check_no_nan(scores, context)
    elif candidates.numel() and bool(torch.isnan(candidates[:, 0]).any()):
        check_no_nan(scores, context)  # raises, naming the rows


def topk_items(
    scores: torch.Tensor, k: int, *, context: str = "", check_nan: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top ``k`` item ids and scores per row, deterministic under ties.

    Returns ``(items int64 [B × k], values [B × k])``; positions past a row's last recommendable
    item hold ``-1`` / ``-inf`` (including when ``k`` exceeds the catalogue). ``context`` names the
    model/batch in the NaN error (found among the top candidates, no extra pass over ``scores``);
    ``check_nan=False`` skips the check (the caller did it).
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-d [users x items], got shape {tuple(scores.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not scores.is_floating_point():
        scores = scores.float()
    n_rows, n_items = scores.shape
    k_eff = min(k, n_items)
    if n_rows == 0 or k_eff == 0:
        items = torch.full((n_rows, k), PAD_ITEM, dtype=torch.long, device=scores.device)
        return items, torch.full((n_rows, k), float("-inf"), dtype=scores.dtype, device=scores.device)
    # One extra candidate tells whether the top-K *set* is ambiguous: only when the (K+1)-th
    # largest score equals the K-th (ties at -inf don't matter: those items are dropped anyway).
    n_cand = min(k_eff + 1, n_items)
    vals, idx = torch.topk(scores, n_cand, dim=1, largest=True, sorted=True)
    if check_nan:
        check_candidates_for_nan(scores, vals, context)
    kth = vals[:, k_eff - 1 : k_eff]
    if n_cand > k_eff:
        ambiguous = (vals[:, k_eff] == kth.squeeze(1)) & (kth.squeeze(1) > float("-inf"))
        vals, idx = vals[:, :k_eff], idx[:, :k_eff]
        if bool(ambiguous.any()):
            vals, idx = _fix_cut_ties(scores, vals, idx, kth, ambiguous.nonzero().flatten(), k_eff)
    # topk's order is already by value; only rows with equal values inside the list need the
    # (value desc, id asc) re-sort
    if k_eff > 1:
        tied = (vals[:, 1:] == vals[:, :-1]).any(dim=1)
        if bool(tied.any()):
            rows = tied.nonzero().flatten()
            v, i = _order_rows(vals[rows], idx[rows])
            vals = vals.clone()
            idx = idx.clone()
            vals[rows], idx[rows] = v, i
    idx = idx.masked_fill(vals == float("-inf"), PAD_ITEM)
    if k_eff < k:
        pad = k - k_eff
        idx = torch.cat([idx, idx.new_full((n_rows, pad), PAD_ITEM)], dim=1)
        vals = torch.cat([vals, vals.new_full((n_rows, pad), float("-inf"))], dim=1)
    return idx, vals


def _fix_cut_ties(
    scores: torch.Tensor, vals: torch.Tensor, idx: torch.Tensor, kth: torch.Tensor, rows: torch.Tensor, k_eff: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rebuild the top ``k_eff`` of ``rows``, whose K-th score is tied with items outside the
    list: every item above the K-th value, then the lowest ids among those equal to it, in
    (value desc, id asc) order. Returns new ``(vals, idx)``; other rows are unchanged."""
    sub = scores[rows]
    kth_sub = kth[rows]
    n_gt = (sub > kth_sub).sum(dim=1, keepdim=True)
    eq = sub == kth_sub
    take_eq = eq & (torch.cumsum(eq, dim=1) <= (k_eff - n_gt))
    chosen = (sub > kth_sub) | take_eq
    # every row has exactly k_eff chosen items; nonzero() lists them row-major, ids ascending
    sel = chosen.nonzero()[:, 1].view(len(rows), k_eff)
    # ``sel`` is in id order; a stable sort by value (desc) gives (value desc, id asc). This
    # must happen here: the adjacent-tie test in the caller cannot see that e.g. [5, 1, 7] is unsorted.
    sel_vals, perm = torch.sort(torch.gather(sub, 1, sel), dim=1, descending=True, stable=True)
    idx = idx.clone()
    vals = vals.clone()
    idx[rows] = torch.gather(sel, 1, perm)
    vals[rows] = sel_vals
    return vals, idx
