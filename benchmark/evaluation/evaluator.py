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
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from benchmark.evaluation import metrics as M
from benchmark.evaluation.masking import csr_rows, mask_with_csr, part_csr, seen_csr, seen_parts_for
from benchmark.evaluation.ranking import PAD_ITEM, topk_items
from benchmark.evaluation.result import EvalResult, check_ks, metric_frame
from benchmark.features import ItemFeatures
from benchmark.split import Split

log = logging.getLogger(__name__)

__all__ = ["EvalResult", "evaluate", "evaluate_topk", "hits_from_csr", "hits_np"]

ScoreFn = Callable[[torch.Tensor], Any]
CSR = tuple[torch.Tensor, torch.Tensor]


# ----------------------------------------------------------------------------- kernels
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


def hits_np(items: np.ndarray, user_ids: np.ndarray, rel_csr: CSR, n_items: int) -> np.ndarray:
    """:func:`hits_from_csr` on NumPy arrays (the evaluator's batch path: ``[B × K]`` is small,
    and NumPy's single-threaded kernels beat a handful of thread-synchronised torch calls)."""
    pos, cols = csr_rows(rel_csr[0], rel_csr[1], torch.from_numpy(user_ids))
    if not len(cols):
        return np.zeros(items.shape, dtype=bool)
    stride = n_items + 1
    rel_keys = pos.numpy() * stride + cols.numpy()  # sorted (items sorted per row)
    keys = np.arange(items.shape[0], dtype=np.int64)[:, None] * stride + items
    where = np.minimum(np.searchsorted(rel_keys, keys), len(rel_keys) - 1)
    return (rel_keys[where] == keys) & (items >= 0)


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
    diversity_feature: ItemFeatures | None = None,
) -> EvalResult:
    """Evaluate ``model`` on ``split.<part>`` by full ranking over the whole catalogue.

    ``model`` is a :class:`~benchmark.recommender.Recommender` (its ``score``) or any callable
    ``user_ids (LongTensor) -> scores [len(user_ids) × n_items]``. ``users`` restricts the
    evaluated users (dense ids; default: all). ``device`` is where ids are sent and where masking
    and ranking run (default: wherever the scores come back). ``keep_topk`` keeps the top-max(K)
    lists for run export. ``name`` labels errors. Scores are computed under ``torch.no_grad``;
    putting the model in eval mode is the caller's business. ``metrics`` may name
    beyond-accuracy metrics (:data:`~benchmark.evaluation.metrics.BEYOND_METRIC_NAMES`), computed
    from the top-K lists with popularity from ``split.train`` and, for ``ild``,
    ``diversity_feature`` (:mod:`benchmark.evaluation.beyond`); per-run ones go to ``run_metrics``.
    """
    ks_t, asked = check_ks(ks, metrics, M.EVALUATION_METRIC_NAMES)
    ms = tuple(m for m in asked if m in M.METRICS)
    beyond = tuple(m for m in asked if m not in M.METRICS)
    seen_parts_for(part)  # validates part
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    score_fn: ScoreFn = model.score if hasattr(model, "score") else model
    if not callable(score_fn):
        raise TypeError(f"model must have .score(user_ids) or be callable; got {type(model).__name__}")
    label = name or type(model).__name__
    dev = torch.device(device) if device is not None else None

    rel = part_csr(split, (part,))
    n_rel_all = (rel[0][1:] - rel[0][:-1]).numpy()
    eval_users, n_excluded = _evaluated_users(split.n_users, users, n_rel_all, label, part)
    seen = seen_csr(split, part) if seen_parts_for(part) else None
    if seen is not None:
        _log_unreachable(seen, rel, eval_users, part, label, split.n_items)

    # beyond-accuracy metrics need the item lists, only an export needs their scores
    acc = _BatchCollector(ks_t, ms, split.n_items, keep_items=keep_topk or bool(beyond), keep_scores=keep_topk)
    for b, uid in enumerate(_batches(eval_users, batch_size, f"evaluate {label} on {part}", progress)):
        scores = _score_batch(score_fn, uid, dev, split.n_items, label, b)
        context = f"model {label}, batch {b} (users {int(uid[0])}..{int(uid[-1])})"
        if seen is not None:
            scores = _writable(scores)
            mask_with_csr(scores, uid, seen, nan_context=context)
        # NaN elsewhere is found among the top-K candidates: no extra pass over the batch
        items, vals = topk_items(scores, ks_t[-1], context=context)
        del scores  # only one batch of scores is ever held
        items_np = items.cpu().numpy()
        hits = hits_np(items_np, uid.numpy(), rel, split.n_items)
        acc.add(items_np, vals, hits, n_rel_all[uid.numpy()])

    topk, topk_scores = acc.topk()
    per_user, run_metrics = _with_beyond(
        metric_frame(eval_users, acc.cols, ks_t, ms), topk, beyond, ks_t, split, diversity_feature
    )
    if not keep_topk:
        topk = None
    return EvalResult(
        per_user=per_user,
        run_metrics=run_metrics,
        ks=ks_t,
        metrics=asked,
        n_users=len(eval_users),
        n_excluded=n_excluded,
        coverage={k: c.value() for k, c in acc.coverage.items()},
        n_relevant=n_rel_all[eval_users].astype(np.int64),
        part=part,
        topk=topk,
        topk_scores=topk_scores,
        user_labels=split.users["orig_user_id"].to_numpy(dtype=object),
        item_labels=split.items["orig_item_id"].to_numpy(dtype=object),
        info={"model": label, "batch_size": batch_size, "split_fingerprint": split.fingerprint},
    )


def _with_beyond(
    per_user: pd.DataFrame,
    topk: np.ndarray | None,
    names: tuple[str, ...],
    ks: tuple[int, ...],
    split: Split,
    feature: ItemFeatures | None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Add the per-user beyond-accuracy columns (K-major, after the accuracy ones); return the run-level values."""
    if not names or topk is None:
        return per_user, {}
    from benchmark.evaluation.beyond import BeyondContext, compute_beyond

    if "ild" in names and feature is None:
        raise ValueError("metric 'ild' needs diversity_feature (the item feature its distances are measured on)")
    cols, run = compute_beyond(topk, BeyondContext.from_split(split, feature), names, ks)
    return per_user.assign(**cols), run


class _BatchCollector:
    """What :func:`evaluate` keeps from each batch: metric columns, coverage, top-K lists."""

    def __init__(
        self, ks: tuple[int, ...], metrics: tuple[str, ...], n_items: int, *, keep_items: bool, keep_scores: bool
    ) -> None:
        self.ks, self.metrics = ks, metrics
        self.coverage = {k: M.CoverageCounter(n_items) for k in ks}
        self.cols: list[dict[str, np.ndarray]] = []
        self.keep_items, self.keep_scores = keep_items, keep_scores
        self._items: list[np.ndarray] = []
        self._scores: list[np.ndarray] = []

    def add(self, items_np: np.ndarray, vals: torch.Tensor, hits: np.ndarray, n_relevant: np.ndarray) -> None:
        self.cols.append(M.compute(hits, n_relevant, self.metrics, self.ks))
        for k in self.ks:
            self.coverage[k].update(items_np[:, :k])
        if self.keep_items:
            self._items.append(items_np.astype(np.int32))
        if self.keep_scores:
            self._scores.append(vals.float().cpu().numpy())

    def topk(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``(items int32, scores float32)`` ``[n_users × max(ks)]``; ``None`` for what was not kept."""
        kmax = self.ks[-1]
        items: np.ndarray | None = None
        scores: np.ndarray | None = None
        if self.keep_items:
            items = np.concatenate(self._items) if self._items else np.zeros((0, kmax), np.int32)
        if self.keep_scores:
            scores = np.concatenate(self._scores) if self._scores else np.zeros((0, kmax), np.float32)
        return items, scores


def _evaluated_users(
    n_users: int,
    users: Iterable[int] | torch.Tensor | np.ndarray | None,
    n_relevant: np.ndarray,
    label: str,
    part: str,
) -> tuple[np.ndarray, int]:
    """Sorted unique dense ids of the users to evaluate (``users``, range-checked, default all)
    that have a relevant item, and the number left out for having none (logged)."""
    if users is None:
        cand = np.arange(n_users, dtype=np.int64)
    else:
        cand = np.unique(
            np.asarray(torch.as_tensor(users).cpu() if isinstance(users, torch.Tensor) else list(users), dtype=np.int64)
        )
        if len(cand) and (cand[0] < 0 or cand[-1] >= n_users):
            raise ValueError(f"user ids must be in [0, {n_users}); got range {cand[0]}..{cand[-1]}")
    keep = n_relevant[cand] > 0
    n_excluded = int((~keep).sum())
    if n_excluded:
        log.info("%s: %d of %d users have no %s item and are excluded", label, n_excluded, len(cand), part)
    return cand[keep], n_excluded


def _batches(users: np.ndarray, batch_size: int, desc: str, progress: bool) -> Iterator[torch.Tensor]:
    """Consecutive batches of ``users`` as LongTensors, with a progress bar."""
    starts = range(0, len(users), batch_size)
    for start in tqdm(starts, total=len(starts), desc=desc, disable=not progress, leave=False):
        yield torch.from_numpy(users[start : start + batch_size])


def _score_batch(
    score_fn: ScoreFn, uid: torch.Tensor, dev: torch.device | None, n_items: int, label: str, batch: int
) -> torch.Tensor:
    """One ``score`` call, checked: ``[len(uid) × n_items]``, floating point (so ``-inf`` fits),
    no NaN, on ``dev`` when one is given."""
    with torch.no_grad():
        scores = score_fn(uid.to(dev) if dev is not None else uid)
    if not isinstance(scores, torch.Tensor):
        scores = torch.as_tensor(np.asarray(scores))
    if scores.shape != (len(uid), n_items):
        raise ValueError(
            f"{label}.score returned shape {tuple(scores.shape)} for batch {batch}; expected ({len(uid)}, {n_items})"
        )
    if dev is not None and scores.device != dev:
        scores = scores.to(dev)
    if not scores.is_floating_point():  # -inf must be representable
        scores = scores.float()
    return scores


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
    ks_t, ms = check_ks(ks, metrics)
    rel_df, n_no_rel = _relevant_frame(relevant)
    run_df = _run_frame(topk, users, ks_t[-1])
    dup = run_df.duplicated(["user", "item"])
    if dup.any():
        ex = run_df.loc[dup, ["user", "item"]].head(3).to_records(index=False).tolist()
        raise ValueError(f"{int(dup.sum())} repeated (user, item) entries in the top-K lists, e.g. {ex}")

    eval_users = _sorted_users(rel_df["user"])
    uindex = pd.Index(eval_users)
    n_rel = rel_df.groupby("user", sort=False).size().reindex(uindex).to_numpy(dtype=np.int64)
    run_users = pd.unique(run_df["user"])
    hits = np.zeros((len(eval_users), ks_t[-1]), dtype=bool)
    merged = run_df.merge(rel_df, on=["user", "item"], how="inner")
    hits[uindex.get_indexer(merged["user"]), merged["rank"].to_numpy() - 1] = True

    return EvalResult(
        per_user=metric_frame(_user_column(eval_users), [M.compute(hits, n_rel, ms, ks_t)], ks_t, ms),
        ks=ks_t,
        metrics=ms,
        n_users=len(eval_users),
        n_excluded=n_no_rel,
        coverage=_label_coverage(run_df, uindex, ks_t, n_items) if n_items is not None else {},
        n_relevant=n_rel,
        n_missing=int((~uindex.isin(run_users)).sum()),
        info={"n_run_users_without_relevant": int((~pd.Index(run_users).isin(uindex)).sum())},
    )


def _sorted_users(users: pd.Series) -> np.ndarray:
    """Distinct users, sorted when their ids are orderable (else in first-seen order)."""
    distinct = pd.unique(users)
    try:
        return np.array(sorted(distinct), dtype=object)
    except TypeError:  # mixed id types: keep first-seen order
        return np.asarray(distinct, dtype=object)


def _user_column(eval_users: np.ndarray) -> np.ndarray:
    """The ``user_id`` column: int64 when every id is an integer, else the ids as given."""
    if len(eval_users) and all(isinstance(u, (int, np.integer)) and not isinstance(u, bool) for u in eval_users):
        return eval_users.astype(np.int64)
    return eval_users


def _label_coverage(run_df: pd.DataFrame, uindex: pd.Index, ks: Sequence[int], n_items: int) -> dict[int, float]:
    """Item coverage@K of the lists of evaluated users, items as labels."""
    inrun = run_df[run_df["user"].isin(uindex)]
    coverage: dict[int, float] = {}
    for k in ks:
        c = M.CoverageCounter(n_items, labels=True)
        c.update(inrun.loc[inrun["rank"] <= k, "item"].to_numpy(dtype=object))
        coverage[k] = c.value()
    return coverage


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
    """Any accepted top-K input as a frame ``user, item, rank`` cut at ``kmax``."""
    if isinstance(topk, pd.DataFrame):
        return _run_from_frame(topk, kmax)
    if isinstance(topk, (np.ndarray, torch.Tensor)):
        return _run_from_array(topk.cpu().numpy() if isinstance(topk, torch.Tensor) else topk, users, kmax)
    if users is not None:
        raise ValueError("users= is only for array input; a mapping names its users")
    us: list[Hashable] = []
    its: list[Hashable] = []
    rk: list[int] = []
    for u, items in topk.items():
        items = list(items)[:kmax]
        us.extend([u] * len(items))
        its.extend(items)
        rk.extend(range(1, len(items) + 1))
    return pd.DataFrame(
        {
            "user": pd.Series(us, dtype=object),
            "item": pd.Series(its, dtype=object),
            "rank": np.asarray(rk, dtype=np.int64),
        }
    )


def _run_from_frame(topk: pd.DataFrame, kmax: int) -> pd.DataFrame:
    missing = {"user", "item", "rank"} - set(topk.columns)
    if missing:
        raise ValueError(f"a top-K frame needs columns user, item, rank; lacks {sorted(missing)}")
    df = topk[["user", "item", "rank"]]
    if df.duplicated(["user", "rank"]).any() or (df["rank"] < 1).any():
        raise ValueError("ranks in a top-K frame must be unique per user and start at 1")
    return df[df["rank"] <= kmax].astype({"rank": np.int64}).reset_index(drop=True)


def _run_from_array(arr: np.ndarray, users: Sequence[Hashable] | None, kmax: int) -> pd.DataFrame:
    if arr.ndim != 2:
        raise ValueError(f"a top-K array must be 2-d, got shape {arr.shape}")
    arr = arr[:, :kmax]
    row_users = np.arange(arr.shape[0]) if users is None else np.asarray(list(users), dtype=object)
    if len(row_users) != arr.shape[0]:
        raise ValueError(f"{len(row_users)} users for {arr.shape[0]} top-K rows")
    r, c = np.nonzero(arr != PAD_ITEM)
    return pd.DataFrame(
        {"user": pd.Series(row_users[r], dtype=object), "item": pd.Series(arr[r, c], dtype=object), "rank": c + 1}
    )
