"""Full-ranking evaluation, batch by batch: score → mask → deterministic top-K → hits → metrics.

Protocol (the same for every model):

1. Users with no relevant item in the evaluated part are excluded and counted (``n_excluded``).
2. For each batch of users: one ``score`` call over the whole catalogue, then
   :func:`~benchmark.evaluation.masking.mask_seen` (valid: train items; test: train + valid items),
   then :func:`~benchmark.evaluation.ranking.topk_items` (score desc, lower item id first; ``-inf``
   never recommended), then hits against the user's relevant items, then every metric for every K
   (:mod:`benchmark.evaluation.metrics`). Only one batch of scores is ever held in memory.
3. Relevant items of a user = the distinct items of that user in the evaluated part. If such an
   item is also in a masked part (a repeat interaction) it stays relevant but cannot be retrieved;
   the number of such pairs is logged (leak-free splits have none).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from benchmark.evaluation import metrics as M
from benchmark.evaluation.masking import csr_rows, mask_with_csr, part_csr, seen_csr, seen_parts_for
from benchmark.evaluation.ranking import PAD_ITEM, check_no_nan, topk_items
from benchmark.split import Split

log = logging.getLogger(__name__)

__all__ = ["EvalResult", "evaluate", "evaluate_topk", "hits_from_csr"]

ScoreFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class EvalResult:
    """Per-user metrics of one model on one part, plus what is needed to report and export them."""

    per_user: pd.DataFrame
    """``user_id`` + one float64 column per ``metric@k``, one row per evaluated user."""
    ks: tuple[int, ...]
    metrics: tuple[str, ...]
    n_users: int
    """Users evaluated (rows of ``per_user``)."""
    n_excluded: int
    """Users left out because they have no relevant item in the evaluated part."""
    coverage: dict[int, float] = field(default_factory=dict)
    """Item coverage@K per K (fraction of the catalogue in any user's top K); empty if unknown."""
    n_relevant: np.ndarray | None = None
    """Relevant items per evaluated user (aligned with ``per_user``)."""
    n_missing: int = 0
    """Evaluated users the model/run gave no list for (they score 0; :func:`evaluate_topk`)."""
    part: str | None = None
    topk: np.ndarray | None = None
    """int32 ``[n_users × max(ks)]`` recommended dense item ids (``-1`` = none), when kept."""
    topk_scores: np.ndarray | None = None
    user_labels: np.ndarray | None = None
    """Original user id per dense user id (for export)."""
    item_labels: np.ndarray | None = None
    """Original item id per dense item id (for export)."""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """The metric column labels, ``metric@k`` (K-major order)."""
        return [c for c in self.per_user.columns if c != "user_id"]

    def means(self) -> dict[str, float]:
        """Mean of every metric column over the evaluated users (0 users → NaN)."""
        return {c: (float(self.per_user[c].mean()) if self.n_users else float("nan")) for c in self.columns}

    def to_trec_run(self, path: str | Path, tag: str = "run") -> Path:
        """Write the kept top-K lists as a TREC run (``user Q0 item rank score tag``), original ids.

        Needs ``evaluate(..., keep_topk=True)``. Scores are written with 9 significant digits, so
        float32 scores (and their ties) survive the round trip; a reader re-ranks ties by item id
        *string*, which is our dense-id order whenever dense ids follow sorted original ids (the
        default of :meth:`Split.from_parts`). Import it back with
        :func:`benchmark.evaluation.trec.read_run`; the qrels come from
        :func:`benchmark.evaluation.trec.write_qrels`.
        """
        if self.topk is None:
            raise ValueError("this result kept no top-K lists; evaluate with keep_topk=True to export a run")
        from benchmark.evaluation.trec import write_run

        users = self.per_user["user_id"].to_numpy()
        if self.user_labels is not None:
            users = self.user_labels[users]
        return write_run(path, users, self.topk, self.topk_scores, tag=tag, item_labels=self.item_labels)


# ----------------------------------------------------------------------------- helpers
def hits_from_csr(
    items: torch.Tensor, user_ids: torch.Tensor, rel_csr: tuple[torch.Tensor, torch.Tensor], n_items: int
) -> torch.Tensor:
    """Bool ``[B × K]``: is ``items[b, r]`` among user ``user_ids[b]``'s relevant items (CSR)?

    Vectorised with one ``searchsorted`` over (row, item) keys; padding (``-1``) is never a hit.
    """
    indptr, indices = rel_csr
    pos, cols = csr_rows(indptr, indices, user_ids)
    stride = n_items + 1
    rel_keys = (pos * stride + cols).to(items.device)  # sorted: rows ascending, items sorted per row
    keys = torch.arange(items.shape[0], device=items.device).unsqueeze(1) * stride + items
    if rel_keys.numel() == 0:
        return torch.zeros_like(items, dtype=torch.bool)
    where = torch.searchsorted(rel_keys, keys.reshape(-1)).clamp_(max=rel_keys.numel() - 1)
    found = (rel_keys[where] == keys.reshape(-1)).view_as(items)
    return found & (items >= 0)


def _check_ks(ks: Iterable[int], metrics: Iterable[str]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    ks_t = tuple(sorted({int(k) for k in ks}))
    if not ks_t or ks_t[0] < 1:
        raise ValueError(f"ks must be positive cut-offs, got {ks!r}")
    ms = tuple(dict.fromkeys(metrics))
    bad = [m for m in ms if m not in M.METRICS]
    if bad or not ms:
        raise ValueError(f"unknown metrics {bad or ms}; allowed: {', '.join(M.METRICS)}")
    return ks_t, ms


def _frame(
    user_ids: np.ndarray, cols: list[dict[str, np.ndarray]], ks: Sequence[int], metrics: Sequence[str]
) -> pd.DataFrame:
    data: dict[str, Any] = {"user_id": user_ids}
    for k in ks:
        for m in metrics:
            label = f"{m}@{k}"
            data[label] = np.concatenate([c[label] for c in cols]) if cols else np.zeros(0, dtype=np.float64)
    return pd.DataFrame(data)


# ----------------------------------------------------------------------------- full ranking
def evaluate(
    model: Any,
    split: Split,
    part: str = "test",
    ks: Iterable[int] = (10, 20),
    metrics: Iterable[str] = M.DEFAULT_METRICS,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
    users: Iterable[int] | torch.Tensor | np.ndarray | None = None,
    progress: bool = True,
    keep_topk: bool = False,
    name: str | None = None,
) -> EvalResult:
    """Evaluate ``model`` on ``split.<part>`` by full ranking over the whole catalogue.

    ``model`` is a :class:`~benchmark.recommender.Recommender` (its ``score``) or any callable
    ``user_ids (LongTensor) -> scores [len(user_ids) × n_items]``. ``users`` restricts the
    evaluated users (dense ids; default: all). ``device`` is where ids are sent and where masking
    and ranking run (default: wherever the scores come back). ``keep_topk`` keeps the top-max(K)
    lists for run export. ``name`` labels errors. Scores are computed under ``torch.no_grad``;
    putting the model in eval mode is the caller's business.
    """
    ks_t, ms = _check_ks(ks, metrics)
    seen_parts_for(part)  # validates part
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    score_fn: ScoreFn = model.score if hasattr(model, "score") else model
    if not callable(score_fn):
        raise TypeError(f"model must have .score(user_ids) or be callable; got {type(model).__name__}")
    label = name or type(model).__name__
    n_items = split.n_items
    kmax = ks_t[-1]
    dev = torch.device(device) if device is not None else None

    rel_indptr, rel_indices = part_csr(split, (part,))
    n_rel_all = (rel_indptr[1:] - rel_indptr[:-1]).numpy()
    if users is None:
        cand = np.arange(split.n_users, dtype=np.int64)
    else:
        cand = np.unique(
            np.asarray(torch.as_tensor(users).cpu() if isinstance(users, torch.Tensor) else list(users), dtype=np.int64)
        )
        if len(cand) and (cand[0] < 0 or cand[-1] >= split.n_users):
            raise ValueError(f"user ids must be in [0, {split.n_users}); got range {cand[0]}..{cand[-1]}")
    keep = n_rel_all[cand] > 0
    eval_users = cand[keep]
    n_excluded = int((~keep).sum())
    if n_excluded:
        log.info("%s: %d of %d users have no %s item and are excluded", label, n_excluded, len(cand), part)

    seen = seen_csr(split, part) if seen_parts_for(part) else None
    if seen is not None:
        _log_unreachable(seen, (rel_indptr, rel_indices), eval_users, part, label, n_items)

    coverage = {k: M.CoverageCounter(n_items) for k in ks_t}
    cols: list[dict[str, np.ndarray]] = []
    kept_items: list[np.ndarray] = []
    kept_scores: list[np.ndarray] = []
    n_batches = (len(eval_users) + batch_size - 1) // batch_size
    batches = range(0, len(eval_users), batch_size)
    for b, start in enumerate(
        tqdm(batches, total=n_batches, desc=f"evaluate {label} on {part}", disable=not progress, leave=False)
    ):
        uid = torch.from_numpy(eval_users[start : start + batch_size])
        with torch.no_grad():
            scores = score_fn(uid.to(dev) if dev is not None else uid)
        if not isinstance(scores, torch.Tensor):
            scores = torch.as_tensor(np.asarray(scores))
        if scores.shape != (len(uid), n_items):
            raise ValueError(
                f"{label}.score returned shape {tuple(scores.shape)} for batch {b}; expected ({len(uid)}, {n_items})"
            )
        if dev is not None and scores.device != dev:
            scores = scores.to(dev)
        if not scores.is_floating_point():  # -inf must be representable
            scores = scores.float()
        context = f"model {label}, batch {b} (users {int(uid[0])}..{int(uid[-1])})"
        check_no_nan(scores, context)  # before masking, so a NaN on a seen item is caught too
        if seen is not None:
            scores = _writable(scores)
            mask_with_csr(scores, uid, seen)
        items, vals = topk_items(scores, kmax, check_nan=False)
        del scores
        hits = hits_from_csr(items, uid, (rel_indptr, rel_indices), n_items).cpu().numpy()
        items_np = items.cpu().numpy()
        cols.append(M.compute(hits, n_rel_all[uid.numpy()], ms, ks_t))
        for k in ks_t:
            coverage[k].update(items_np[:, :k])
        if keep_topk:
            kept_items.append(items_np.astype(np.int32))
            kept_scores.append(vals.float().cpu().numpy())

    per_user = _frame(eval_users, cols, ks_t, ms)
    return EvalResult(
        per_user=per_user,
        ks=ks_t,
        metrics=ms,
        n_users=len(eval_users),
        n_excluded=n_excluded,
        coverage={k: c.value() for k, c in coverage.items()},
        n_relevant=n_rel_all[eval_users].astype(np.int64),
        part=part,
        topk=np.concatenate(kept_items)
        if keep_topk and kept_items
        else (np.zeros((0, kmax), np.int32) if keep_topk else None),
        topk_scores=np.concatenate(kept_scores)
        if keep_topk and kept_scores
        else (np.zeros((0, kmax), np.float32) if keep_topk else None),
        user_labels=split.users["orig_user_id"].to_numpy(dtype=object),
        item_labels=split.items["orig_item_id"].to_numpy(dtype=object),
        info={"model": label, "batch_size": batch_size, "split_fingerprint": split.fingerprint},
    )


def _writable(scores: torch.Tensor) -> torch.Tensor:
    """Masking writes in place: copy when the scores are a view of something the model may own
    (e.g. a slice of a cached score matrix) or still carry autograd history."""
    if scores.requires_grad or scores._base is not None:
        return scores.detach().clone()
    return scores


def _csr_keys(csr: tuple[torch.Tensor, torch.Tensor], stride: int) -> np.ndarray:
    """Sorted unique ``user * stride + item`` keys of a whole CSR."""
    indptr, indices = csr[0].numpy(), csr[1].numpy()
    rows = np.repeat(np.arange(len(indptr) - 1, dtype=np.int64), np.diff(indptr))
    return rows * stride + indices


def _log_unreachable(
    seen: tuple[torch.Tensor, torch.Tensor],
    rel: tuple[torch.Tensor, torch.Tensor],
    users: np.ndarray,
    part: str,
    label: str,
    n_items: int,
) -> None:
    if not len(users):
        return
    stride = n_items + 1
    rel_keys = _csr_keys(rel, stride)
    if len(users) < len(rel[0]) - 1:  # a user subset: keep only its pairs
        rel_keys = rel_keys[np.isin(rel_keys // stride, users)]
    overlap = np.intersect1d(_csr_keys(seen, stride), rel_keys, assume_unique=True).size
    if overlap:
        log.warning(
            "%s: %d relevant (user, item) pairs of %s are also in the masked parts %s; they stay relevant "
            "but cannot be recommended",
            label,
            overlap,
            part,
            seen_parts_for(part),
        )


# ----------------------------------------------------------------------------- given top-K lists
TopK = Mapping[Hashable, Sequence[Hashable]] | np.ndarray | torch.Tensor | pd.DataFrame
Relevant = Mapping[Hashable, Iterable[Hashable]] | pd.DataFrame


def evaluate_topk(
    topk: TopK,
    relevant: Relevant,
    ks: Iterable[int] = (10, 20),
    metrics: Iterable[str] = M.DEFAULT_METRICS,
    *,
    users: Sequence[Hashable] | None = None,
    n_items: int | None = None,
) -> EvalResult:
    """Metrics of top-K lists produced elsewhere (already ranked; first = best).

    ``topk``: ``{user: [item, ...]}``, an array ``[n × L]`` whose row ``i`` belongs to
    ``users[i]`` (default ``i``) with ``-1`` = padding, or a frame ``user, item, rank`` (rank 1 = best). ``relevant``: ``{user: items}`` or a frame with
    ``user`` and ``item`` columns. Evaluated users are those with ≥1 relevant item (``n_excluded``
    counts relevant-map users with none); an evaluated user without a list (absent or empty)
    scores 0 and is counted in ``n_missing``. A list that repeats an item is an error. ``n_items`` (catalogue size) enables
    item coverage.
    """
    ks_t, ms = _check_ks(ks, metrics)
    kmax = ks_t[-1]
    rel_df, n_no_rel = _relevant_frame(relevant)
    run_df = _run_frame(topk, users, kmax)
    dup = run_df.duplicated(["user", "item"])
    if dup.any():
        ex = run_df.loc[dup, ["user", "item"]].head(3).to_records(index=False).tolist()
        raise ValueError(f"{int(dup.sum())} repeated (user, item) entries in the top-K lists, e.g. {ex}")

    eval_users = pd.unique(rel_df["user"])
    try:
        eval_users = np.array(sorted(eval_users), dtype=object)
    except TypeError:  # mixed id types: keep first-seen order
        eval_users = np.asarray(eval_users, dtype=object)
    uindex = pd.Index(eval_users)
    n_rel = rel_df.groupby("user", sort=False).size().reindex(uindex).to_numpy(dtype=np.int64)
    run_users = pd.unique(run_df["user"])
    n_missing = int((~uindex.isin(run_users)).sum())

    hits = np.zeros((len(eval_users), kmax), dtype=bool)
    merged = run_df.merge(rel_df, on=["user", "item"], how="inner")
    rows = uindex.get_indexer(merged["user"])
    hits[rows, merged["rank"].to_numpy() - 1] = True
    cols = [M.compute(hits, n_rel, ms, ks_t)]

    coverage: dict[int, float] = {}
    if n_items is not None:
        inrun = run_df[run_df["user"].isin(uindex)]
        for k in ks_t:
            c = M.CoverageCounter(n_items, labels=True)
            c.update(inrun.loc[inrun["rank"] <= k, "item"].to_numpy(dtype=object))
            coverage[k] = c.value()
    user_col = eval_users
    if len(eval_users) and all(isinstance(u, (int, np.integer)) and not isinstance(u, bool) for u in eval_users):
        user_col = eval_users.astype(np.int64)
    per_user = _frame(user_col, cols, ks_t, ms)
    return EvalResult(
        per_user=per_user,
        ks=ks_t,
        metrics=ms,
        n_users=len(eval_users),
        n_excluded=n_no_rel,
        coverage=coverage,
        n_relevant=n_rel,
        n_missing=n_missing,
        info={"n_run_users_without_relevant": int((~pd.Index(run_users).isin(uindex)).sum())},
    )


def _relevant_frame(relevant: Relevant) -> tuple[pd.DataFrame, int]:
    if isinstance(relevant, pd.DataFrame):
        missing = {"user", "item"} - set(relevant.columns)
        if missing:
            raise ValueError(f"relevant frame lacks columns {sorted(missing)}")
        df = relevant[["user", "item"]]
        n_empty = 0
    else:
        us, its, n_empty = [], [], 0
        for u, items in relevant.items():
            items = list(dict.fromkeys(items))
            if not items:
                n_empty += 1
            us.extend([u] * len(items))
            its.extend(items)
        df = pd.DataFrame({"user": pd.Series(us, dtype=object), "item": pd.Series(its, dtype=object)})
    return df.drop_duplicates().reset_index(drop=True), n_empty


def _run_frame(topk: TopK, users: Sequence[Hashable] | None, kmax: int) -> pd.DataFrame:
    if isinstance(topk, pd.DataFrame):
        missing = {"user", "item", "rank"} - set(topk.columns)
        if missing:
            raise ValueError(f"a top-K frame needs columns user, item, rank; lacks {sorted(missing)}")
        df = topk[["user", "item", "rank"]]
        if df.duplicated(["user", "rank"]).any() or (df["rank"] < 1).any():
            raise ValueError("ranks in a top-K frame must be unique per user and start at 1")
        return df[df["rank"] <= kmax].astype({"rank": np.int64}).reset_index(drop=True)
    if isinstance(topk, (np.ndarray, torch.Tensor)):
        arr = topk.cpu().numpy() if isinstance(topk, torch.Tensor) else topk
        if arr.ndim != 2:
            raise ValueError(f"a top-K array must be 2-d, got shape {arr.shape}")
        arr = arr[:, :kmax]
        row_users = np.arange(arr.shape[0]) if users is None else np.asarray(list(users), dtype=object)
        if len(row_users) != arr.shape[0]:
            raise ValueError(f"{len(row_users)} users for {arr.shape[0]} top-K rows")
        r, c = np.nonzero(arr != PAD_ITEM)
        df = pd.DataFrame(
            {"user": pd.Series(row_users[r], dtype=object), "item": pd.Series(arr[r, c], dtype=object), "rank": c + 1}
        )
    else:
        if users is not None:
            raise ValueError("users= is only for array input; a mapping names its users")
        us, its, rk = [], [], []
        for u, items in topk.items():
            items = list(items)[:kmax]
            us.extend([u] * len(items))
            its.extend(items)
            rk.extend(range(1, len(items) + 1))
        df = pd.DataFrame(
            {
                "user": pd.Series(us, dtype=object),
                "item": pd.Series(its, dtype=object),
                "rank": np.asarray(rk, dtype=np.int64),
            }
        )
    return df
