"""The VLM4Rec paper's evaluation protocol as a named mode: ``captioned-only``.

The default mode, ``full-catalogue`` (:func:`benchmark.evaluation.evaluate`), ranks the whole
catalogue for every user, masks what the user has seen and counts every test item as
relevant. The paper (``tyvalencia/enhancing-mm-rec-sys`` @ 66d74f005ce9faaa1d685e5ea75640b9736704f9,
``scripts/evaluate_all_final.py``) measured something else; this mode reproduces it, line by line
of ``evaluate_recommender`` and ``main``:

- **candidates** = the items the model has a representation for: ``evaluate_recommender``
  ranks ``valid_items`` — ``llava_items`` (the captioned items) for the LLaVA rows, ``all_items``
  for title / vision — so here the items the model scores finite (a feature-based model scores
  ``-inf`` where its feature is missing), optionally intersected with one feature's items for
  every model (``CaptionedSettings.feature``);
- **relevant** = the user's test items among the candidates only (``user_test = [i for i in
  user_test if i in item_to_idx]``), counted per *row* as ``len(user_test)`` does (a repeated
  review counts twice in the denominator of Recall and in IDCG);
- **profile** from train **and** valid (``user_history = np.concatenate([user_train,
  user_val])``): the runner calls the model's ``use_history(split, ("train", "valid"))`` before
  this mode's test evaluation (models without it keep their own profile, and the unit record says so);
- **seen items are not removed** from the ranking (the script never masks);
- users with no candidate item in their history, or none in their test items, are **skipped**
  (the two ``continue`` statements), counted per reason;
- a random **fraction of the test users** (``main``: ``np.random.choice(test_users,
  size=max(1, len(test_users) // 100), replace=False)``, unseeded): here
  :func:`sample_users` with ``CaptionedSettings.user_fraction`` (default 0.01) and a recorded
  seed, drawn from every user with a test row *before* the skipping, as the script does. Every
  user is scored once, so :func:`sampling_spread` can report how much the mean moves over
  ``sample_repeats`` such samples — how much a 1% sample moves the published numbers.

Ties: the script's ``np.argsort(-scores)`` orders tied items arbitrarily; here the harness's
rule (lower item id first) applies, so results are reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from benchmark.errors import ConfigError
from benchmark.evaluation import metrics as M
from benchmark.evaluation.evaluator import _batches, _score_batch, hits_from_csr
from benchmark.evaluation.masking import csr_rows, part_csr, seen_parts_for
from benchmark.evaluation.ranking import topk_items
from benchmark.evaluation.result import EvalResult, check_ks, metric_frame
from benchmark.split import Split

#: evaluation modes a config may name; the first is the default (the leaderboard's)
EVALUATION_MODES: tuple[str, ...] = ("full-catalogue", "captioned-only")
PAPER_USER_FRACTION = 0.01


@dataclass
class CaptionedSettings:
    """``evaluation.captioned``: the settings of the ``captioned-only`` mode.

    ``feature``: ``None`` (the paper) = each model's own items; a feature name = that feature's
    items for every model (one common candidate set). ``user_fraction``: share of the test users
    evaluated (the paper: 0.01; 1.0 = all); ``sample_seed``: the seed of that sample (recorded);
    ``sample_repeats``: samples drawn to report the spread of the mean (0 = none).
    """

    feature: str | None = None
    user_fraction: float = PAPER_USER_FRACTION
    sample_seed: int = 0
    sample_repeats: int = 1000

    def validate(self, path: str = "") -> None:
        p = f"{path}." if path else ""
        if not 0 < self.user_fraction <= 1:
            raise ConfigError(f"{p}user_fraction: a share in (0, 1]; got {self.user_fraction}")
        if self.sample_repeats < 0:
            raise ConfigError(f"{p}sample_repeats: must be >= 0; got {self.sample_repeats}")


def sample_size(n_users: int, fraction: float) -> int:
    """``max(1, ⌊n · fraction⌋)`` — the script's ``max(1, len(test_users) // 100)`` for 0.01."""
    return max(1, math.floor(n_users * fraction + 1e-9)) if n_users else 0


def sample_users(population: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """A seeded sample (without replacement) of ``sample_size`` users of ``population``, sorted.

    ``numpy.random.default_rng(seed).choice`` stands in for the script's unseeded
    ``np.random.choice``; the population is every user with a row in the evaluated part.
    """
    pop = np.asarray(population, dtype=np.int64)
    if fraction >= 1:
        return np.sort(pop)
    return np.sort(np.random.default_rng(seed).choice(pop, size=sample_size(len(pop), fraction), replace=False))


def part_users(split: Split, part: str) -> np.ndarray:
    """Users with at least one row in ``part`` (the script's ``test['user'].unique()``), sorted."""
    return np.unique(split.part(part)["user_id"].to_numpy(dtype=np.int64))


def _multi_csr(split: Split, parts: Iterable[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per-user item rows of ``parts`` *with* repeats (CSR ``indptr, items``)."""
    frames = [split.part(p)[["user_id", "item_id"]] for p in parts]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"user_id": [], "item_id": []})
    u = df["user_id"].to_numpy(dtype=np.int64)
    order = np.argsort(u, kind="stable")
    indptr = np.zeros(split.n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(u, minlength=split.n_users), out=indptr[1:])
    return indptr, df["item_id"].to_numpy(dtype=np.int64)[order]


def _in_candidates(csr: tuple[np.ndarray, np.ndarray], uid: torch.Tensor, cand: torch.Tensor) -> np.ndarray:
    """Per row of the batch: how many of the user's CSR rows are candidate items for that row."""
    pos, cols = csr_rows(torch.from_numpy(csr[0]), torch.from_numpy(csr[1]), uid.cpu())
    ok = cand[pos.to(cand.device), cols.to(cand.device)].cpu().numpy() if len(cols) else np.zeros(0, dtype=bool)
    return np.bincount(pos.numpy()[ok], minlength=len(uid))


def evaluate_captioned(
    model: Any,
    split: Split,
    part: str = "test",
    ks: Iterable[int] = (10, 20),
    metrics: Iterable[str] = M.DEFAULT_METRICS,
    *,
    candidates: np.ndarray | torch.Tensor | None = None,
    users: Iterable[int] | np.ndarray | None = None,
    batch_size: int = 1024,
    device: str | torch.device | None = None,
    progress: bool = False,
    name: str | None = None,
) -> EvalResult:
    """Per-user metrics of ``model`` on ``split.<part>`` under the ``captioned-only`` rules
    (module docstring): no seen-item masking, candidates = finite scores (∩ ``candidates``),
    relevant rows among the candidates, users without a candidate in their history (the parts
    before ``part``) or in ``part`` skipped and counted in ``info``.

    ``users``: the users to score (default: every user with a row in ``part``). The model's
    profile is whatever the model holds; the runner sets train + valid first (``use_history``).
    """
    ks_t, ms = check_ks(ks, metrics)
    history_parts = seen_parts_for(part)
    label = name or type(model).__name__
    score_fn = model.score if hasattr(model, "score") else model
    dev = torch.device(device) if device is not None else None
    fixed = None if candidates is None else torch.as_tensor(np.asarray(candidates, dtype=bool))
    if fixed is not None and fixed.shape != (split.n_items,):
        raise ValueError(f"candidates must be a bool mask over the {split.n_items} items; got {tuple(fixed.shape)}")
    pool = part_users(split, part) if users is None else np.unique(np.asarray(list(users), dtype=np.int64))
    rel_rows, hist_rows = _multi_csr(split, (part,)), _multi_csr(split, history_parts)
    rel_set = part_csr(split, (part,))
    kept_users: list[np.ndarray] = []
    cols: list[dict[str, np.ndarray]] = []
    n_rel_all: list[np.ndarray] = []
    skipped = {"no_candidate_in_history": 0, "no_candidate_relevant": 0}
    for b, uid in enumerate(_batches(pool, batch_size, f"evaluate {label} on {part} (captioned-only)", progress)):
        scores = _score_batch(score_fn, uid, dev, split.n_items, label, b).clone()
        cand = scores > float("-inf")  # NaN was refused by _score_batch
        if fixed is not None:
            cand &= fixed.to(cand.device)[None, :]
        scores[~cand] = float("-inf")
        n_rel = _in_candidates(rel_rows, uid, cand)
        has_hist = _in_candidates(hist_rows, uid, cand) > 0 if history_parts else np.ones(len(uid), bool)
        skipped["no_candidate_in_history"] += int((~has_hist).sum())
        skipped["no_candidate_relevant"] += int((has_hist & (n_rel == 0)).sum())
        keep = has_hist & (n_rel > 0)
        if not keep.any():
            continue
        kept = uid[torch.from_numpy(keep)]
        items, _ = topk_items(scores[torch.from_numpy(keep).to(scores.device)], ks_t[-1], check_nan=False)
        hits = hits_from_csr(items, kept, rel_set, split.n_items).cpu().numpy()
        cols.append(M.compute(hits, n_rel[keep], ms, ks_t))
        kept_users.append(kept.numpy())
        n_rel_all.append(n_rel[keep])
    evaluated = np.concatenate(kept_users) if kept_users else np.zeros(0, dtype=np.int64)
    return EvalResult(
        per_user=metric_frame(evaluated, cols, ks_t, ms),
        ks=ks_t,
        metrics=ms,
        n_users=len(evaluated),
        n_excluded=sum(skipped.values()),
        n_relevant=np.concatenate(n_rel_all) if n_rel_all else np.zeros(0, dtype=np.int64),
        part=part,
        info={
            "model": label,
            "mode": "captioned-only",
            "users_scored": int(len(pool)),
            "skipped": skipped,
            "candidates": "the model's own items" if fixed is None else f"{int(fixed.sum())} items of one feature",
            "history_parts": list(history_parts),
            "split_fingerprint": split.fingerprint,
        },
    )


def sampling_spread(
    per_user: pd.DataFrame, population: np.ndarray, fraction: float, seed: int, repeats: int
) -> dict[str, Any]:
    """How much a ``fraction`` sample of ``population`` moves each metric's mean.

    ``per_user``: the metrics of every *evaluated* user (skipped users have no row and drop out
    of a sample, as in the script). Draw ``repeats`` samples (seeds ``seed + 1 …``; ``seed``
    itself is the recorded sample) and report, per metric, the mean over all evaluated users,
    the recorded sample's mean and the distribution of the sample means: ``mean``, ``sd``,
    ``p2.5``, ``p97.5``, ``min``, ``max`` (NaN-free: a sample with no evaluated user is left out
    and counted in ``empty_samples``).
    """
    cols = [c for c in per_user.columns if c != "user_id"]
    ids = per_user["user_id"].to_numpy(dtype=np.int64)
    values = per_user[cols].to_numpy(dtype=np.float64)
    pos = pd.Index(ids)

    def sample_mean(s: int) -> np.ndarray | None:
        rows = pos.get_indexer(sample_users(population, fraction, s))
        rows = rows[rows >= 0]
        return values[rows].mean(axis=0) if len(rows) else None

    recorded = sample_mean(seed)
    draws = [m for m in (sample_mean(seed + 1 + r) for r in range(repeats)) if m is not None]
    out: dict[str, Any] = {
        "user_fraction": fraction,
        "sample_seed": seed,
        "population": int(len(population)),
        "sample_size": sample_size(len(population), fraction),
        "repeats": repeats,
        "empty_samples": repeats - len(draws),
        "metrics": {},
    }
    arr = np.array(draws) if draws else np.zeros((0, len(cols)))
    for j, c in enumerate(cols):
        d = arr[:, j]
        out["metrics"][c] = {
            "all_users": float(values[:, j].mean()) if len(values) else None,
            "recorded_sample": None if recorded is None else float(recorded[j]),
            **(
                {
                    "mean": float(d.mean()),
                    "sd": float(d.std(ddof=1)) if len(d) > 1 else 0.0,
                    "p2.5": float(np.percentile(d, 2.5)),
                    "p97.5": float(np.percentile(d, 97.5)),
                    "min": float(d.min()),
                    "max": float(d.max()),
                }
                if len(d)
                else {}
            ),
        }
    return out
