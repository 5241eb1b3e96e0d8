"""PNG plots: per-method bars with CIs, and Recall/NDCG vs K curves.

Figures are built with :class:`matplotlib.figure.Figure` on the Agg canvas directly — no pyplot
and no global backend switch — and written atomically (:func:`benchmark.io.atomic_path`).
matplotlib is imported when a figure is drawn, not with the package: the command line imports
:mod:`benchmark.report` for its format names at start-up, and matplotlib takes half a second.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from benchmark.io import atomic_path
from benchmark.report.labels import metric_label, order_metrics, split_metric
from benchmark.stats.resampling import bootstrap_means

if TYPE_CHECKING:
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)


def plot_metric_bars(
    per_user_by_run: Mapping[str, pd.DataFrame],
    metric: str,
    path: str | os.PathLike[str],
    ci: float = 0.95,
    seed: int = 0,
    n_resamples: int = 10000,
) -> Path:
    """Bar per run of the mean of ``metric`` over users, with a bootstrap-percentile CI.

    The CI of each run's mean resamples its users with replacement (``n_resamples`` times,
    seeded); it describes the uncertainty of that run's mean alone — whether two runs differ is
    for the paired tests in :mod:`benchmark.stats`. Returns the written path.
    """
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if not per_user_by_run:
        raise ValueError("no runs to plot")
    names, means, lows, highs, n_users = [], [], [], [], set()
    q = [(1.0 - ci) / 2.0 * 100.0, (1.0 + ci) / 2.0 * 100.0]
    for name, df in per_user_by_run.items():
        if metric not in df.columns:
            raise ValueError(f"run {name!r} has no column {metric!r} (columns: {list(df.columns)})")
        vals = df[metric].to_numpy(dtype=np.float64)
        if vals.size == 0 or not np.isfinite(vals).all():
            raise ValueError(f"run {name!r}: {metric!r} is empty or holds non-finite values")
        boot = bootstrap_means(vals[:, None], n_resamples, np.random.default_rng([seed, 0xBA5]))[:, 0]
        lo, hi = np.percentile(boot, q)
        names.append(str(name))
        means.append(float(vals.mean()))
        lows.append(float(lo))
        highs.append(float(hi))
        n_users.add(vals.size)
    m = np.array(means)
    yerr = np.vstack([m - np.array(lows), np.array(highs) - m])

    fig = _figure(figsize=(max(4.0, 1.1 * len(names) + 1.5), 3.8))
    ax = fig.add_subplot()
    x = np.arange(len(names))
    ax.bar(x, m, yerr=yerr, capsize=4, color="#4C72B0", edgecolor="black", linewidth=0.6, error_kw={"elinewidth": 1.0})
    for xi, hi, val in zip(x, highs, m):
        ax.annotate(
            f"{val:.4f}", (xi, hi), xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=8
        )
    ax.set_xticks(x, names, rotation=30 if len(names) > 4 else 0, ha="right" if len(names) > 4 else "center")
    ax.set_ylabel(metric_label(metric))
    ax.set_ylim(0, max(highs) * 1.15 if max(highs) > 0 else 1.0)
    users = ", ".join(str(n) for n in sorted(n_users))
    ax.set_title(f"{metric_label(metric)} per method ({int(ci * 100)}% bootstrap CI, n_users = {users})", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return _save(fig, path)


def plot_metric_vs_k(
    means: Mapping[str, Mapping[str, float]],
    path: str | os.PathLike[str],
    metrics: Sequence[str] | None = None,
) -> Path:
    """One panel per metric family (``recall``, ``ndcg``, …): mean vs K, one line per run.

    ``means`` is run → ``"family@K"`` → mean. ``metrics``: the families to draw (default: every
    family the runs have, in display order). A family given that none of the runs has is an error.
    """
    if not means:
        raise ValueError("no runs to plot")
    if metrics is None:
        names = [name for row in means.values() for name in row if split_metric(name)[1] is not None]
        metrics = list(dict.fromkeys(split_metric(name)[0] for name in order_metrics(names)))
    families = list(metrics)
    if not families:
        raise ValueError("no '<metric>@K' values to plot")
    series: dict[str, dict[str, list[tuple[int, float]]]] = {f: {} for f in families}
    for run, row in means.items():
        for name, value in row.items():
            fam, k = split_metric(name)
            if k is not None and fam.lower() in {f.lower() for f in families}:
                f = next(x for x in families if x.lower() == fam.lower())
                series[f].setdefault(str(run), []).append((k, float(value)))
    empty = [f for f in families if not series[f]]
    if empty:
        raise ValueError(f"no '<metric>@K' values for {empty} in any run")

    fig = _figure(figsize=(4.2 * len(families), 3.6))
    axes = fig.subplots(1, len(families), squeeze=False)[0]
    markers = "osD^vP*X"
    for ax, fam in zip(axes, families):
        ks_all: set[int] = set()
        for i, (run, pts) in enumerate(series[fam].items()):
            pts.sort()
            ks = [k for k, _ in pts]
            ks_all.update(ks)
            ax.plot(ks, [v for _, v in pts], marker=markers[i % len(markers)], label=run, linewidth=1.4)
        ax.set_xticks(sorted(ks_all))
        ax.set_xlabel("K")
        ax.set_ylabel(f"{metric_label(fam)}@K")
        ax.set_title(f"{metric_label(fam)} vs K", fontsize=10)
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=8, loc="best")
    return _save(fig, path)


def _figure(figsize: tuple[float, float]) -> Figure:
    """A constrained-layout figure on its own Agg canvas (no pyplot state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=150, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    target = Path(path)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
    log.info("wrote %s", target)
    return target
