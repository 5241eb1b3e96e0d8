"""Protocol sensitivity: the same models on the same data under two protocols, side by side.

A side is a run directory and an evaluation mode (``None``: the leaderboard's full-catalogue
mode), so the two sides can be two splits of one dataset (``mmrec`` vs ``global-time`` — the
shipped pair ``demo-protocol-mmrec``/``demo-protocol-global-time``) or two evaluation modes of
one run (full-catalogue vs ``captioned-only``). The report holds both leaderboards, each
model's change (B − A, absolute and relative) and rank under each, and Kendall's τ-b between
the two model orders on one metric with a bootstrap CI over users
(:func:`benchmark.stats.ranks.kendall_tau`). Models on one side only are listed, not compared.
Rendering: :mod:`benchmark.report.sensitivity`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from benchmark.errors import BenchError
from benchmark.runner.results import RunResults

__all__ = ["Side", "SensitivityReport", "sensitivity"]


@dataclass
class Side:
    """One protocol: a run directory read back and the evaluation mode used (None: full-catalogue)."""

    results: RunResults
    mode: str | None = None

    @property
    def label(self) -> str:
        ds = self.results.config.dataset
        return f"{ds.name} · {ds.protocol}" + (f" · {self.mode}" if self.mode else "")

    def frames(self) -> dict[str, pd.DataFrame]:
        return self.results.averaged(mode=self.mode)


@dataclass
class SensitivityReport:
    """Both sides' means and seed spread, per-model changes and ranks, Kendall's τ."""

    labels: tuple[str, str]
    models: list[str]
    metrics: list[str]
    means: tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]
    spread: tuple[dict[str, Any], dict[str, Any]]
    metric: str
    ranks: tuple[dict[str, float], dict[str, float]]
    tau: dict[str, Any]
    n_users: tuple[int, int]
    fingerprints: tuple[str, str]
    only: dict[str, list[str]] = field(default_factory=dict)

    def change(self, model: str, metric: str) -> tuple[float, float]:
        """(B − A, (B − A) / A) of ``model`` on ``metric`` (relative NaN when A is 0)."""
        a, b = self.means[0][model][metric], self.means[1][model][metric]
        return b - a, (b - a) / a if a else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "sides": [
                {"label": lab, "n_users": n, "split_fingerprint": fp, "means": m, "seed_spread": s, "ranks": r}
                for lab, n, fp, m, s, r in zip(
                    self.labels, self.n_users, self.fingerprints, self.means, self.spread, self.ranks
                )
            ],
            "models": self.models,
            "metrics": self.metrics,
            "rank_metric": self.metric,
            "changes": {
                m: {c: dict(zip(("abs", "rel"), self.change(m, c))) for c in self.metrics} for m in self.models
            },
            "kendall_tau": self.tau,
            "only_on_one_side": self.only,
        }


def sensitivity(
    a: Side,
    b: Side,
    *,
    metric: str | None = None,
    metrics: list[str] | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> SensitivityReport:
    """Compare the models both sides share (module docstring).

    Raises:
        BenchError: fewer than 2 shared models, a metric missing on a side, an unknown mode.
    """
    from benchmark.stats.ranks import block_ranks, kendall_tau

    frames = []
    for side in (a, b):
        if side.mode is not None and side.mode not in side.results.modes():
            raise BenchError(
                f"{side.results.run_dir}: no evaluation mode {side.mode!r}; has {side.results.modes() or 'none'}"
            )
        frames.append(side.frames())
    shared = [m for m in frames[0] if m in frames[1]]
    if len(shared) < 2:
        raise BenchError(f"the two sides share {len(shared)} model(s) ({', '.join(shared) or 'none'}); need at least 2")
    cols = [c for c in frames[0][shared[0]].columns if c != "user_id" and c in frames[1][shared[0]].columns]
    shown = metrics or cols
    bad = [c for c in [*shown, *([metric] if metric else [])] if c not in cols]
    if bad:
        raise BenchError(f"metric(s) {bad} are not on both sides; common: {', '.join(cols)}")
    key = metric or shown[0]
    means = tuple({m: {c: float(f[m][c].mean()) for c in shown} for m in shared} for f in frames)
    # each side one block: 1 = best, ties share their average rank
    ranked = block_ranks(pd.DataFrame([{m: mm[m][key] for m in shared} for mm in means]))
    ranks = tuple({str(m): float(v) for m, v in row.items()} for _, row in ranked.iterrows())
    tau = kendall_tau(
        {m: frames[0][m][key].to_numpy(np.float64) for m in shared},
        {m: frames[1][m][key].to_numpy(np.float64) for m in shared},
        n_resamples=n_resamples,
        seed=seed,
    )
    spread = tuple({m: s.results.spread(m, s.mode) for m in shared} for s in (a, b))
    only = {
        a.label: [m for m in frames[0] if m not in frames[1]],
        b.label: [m for m in frames[1] if m not in frames[0]],
    }
    return SensitivityReport(
        (a.label, b.label) if a.label != b.label else (f"A: {a.label}", f"B: {b.label}"),
        shared,
        shown,
        (means[0], means[1]),
        (spread[0], spread[1]),
        key,
        (ranks[0], ranks[1]),
        tau,
        (len(frames[0][shared[0]]), len(frames[1][shared[0]])),
        (a.results.fingerprint, b.results.fingerprint),
        {k: v for k, v in only.items() if v},
    )
