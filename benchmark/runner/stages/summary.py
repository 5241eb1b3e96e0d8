"""Summary stage: a run's finished units → seed-averaged per-user metrics → paired tests against
the baseline → ``metrics.json``, ``statistics.json``, leaderboards, subsets, plots.

Nothing written here depends on wall time, so two runs with the same seeds give identical files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from benchmark.io import atomic_open, write_json, write_parquet
from benchmark.runner.config import StatisticsConfig
from benchmark.runner.modes import write_modes
from benchmark.runner.results import RunResults


@dataclass
class Summary:
    """What the summary stage computed (also written to the run directory)."""

    models: list[str]
    baseline: str
    metrics: list[str]
    means: dict[str, dict[str, float]]
    tests: list[dict[str, Any]]
    spread: dict[str, Any]
    n_users: int


def summarise(results: RunResults, statistics: StatisticsConfig, metrics: list[str] | None = None) -> Summary:
    """Seed-average per-user metrics, test against the baseline, write tables and plots.

    ``metrics``: ``metric@k`` columns in leaderboard order (default: the per-user files' order).
    """
    from benchmark.stats import compare

    present = results.models
    if not present:
        raise RuntimeError(f"no finished units in {results.run_dir}")
    per_model = results.averaged(present)
    metric_cols = metrics or [c for c in per_model[present[0]].columns if c != "user_id"]
    base = statistics.baseline if statistics.baseline in present else results.baseline
    tests: list[dict[str, Any]] = []
    if len(present) > 1:
        tests = compare(
            per_model,
            baseline=base,
            metrics=metric_cols,
            test=statistics.test,
            correction=statistics.correction,
            alpha=statistics.alpha,
            n_resamples=statistics.n_resamples,
            seed=0,
        )
    summary = Summary(
        models=present,
        baseline=base,
        metrics=metric_cols,
        means={m: {c: float(per_model[m][c].mean()) for c in metric_cols} for m in present},
        tests=tests,
        spread={m: results.spread(m) for m in present},
        n_users=int(len(per_model[present[0]])),
    )
    write_per_user_long(results, present)
    write_metrics_and_statistics(results, summary, statistics)
    write_leaderboards(results, summary, statistics)
    write_subsets(results, present, metric_cols)
    write_plots(results, summary, statistics.plot_metric)
    write_modes(results, present, metric_cols)
    return summary


def write_per_user_long(results: RunResults, models: list[str]) -> None:
    """``per_user_metrics.parquet``: every unit's per-user test metrics, long format."""
    frames = [
        u.per_user.assign(model=m, seed=-1 if u.seed is None else u.seed) for m in models for u in results.units[m]
    ]
    long = pd.concat(frames, ignore_index=True)
    cols = ["model", "seed", "user_id"] + [c for c in long.columns if c not in ("model", "seed", "user_id")]
    write_parquet(results.run_dir / "per_user_metrics.parquet", long[cols])


def write_metrics_and_statistics(results: RunResults, s: Summary, statistics: StatisticsConfig) -> None:
    """``metrics.json`` (means, seed spread, per-unit values) and ``statistics.json`` (the tests)."""
    write_json(
        results.run_dir / "metrics.json",
        {
            "means": s.means,
            "seed_spread": s.spread,
            "n_users": s.n_users,
            "split_fingerprint": results.fingerprint,
            "units": {
                m: [
                    {
                        "seed": u.record["seed"],
                        "valid": u.record["valid"],
                        "test": u.record["test"],
                        "subsets": u.record.get("subsets", []),
                    }
                    for u in results.units[m]
                ]
                for m in s.models
            },
        },
    )
    write_json(
        results.run_dir / "statistics.json",
        {
            "baseline": s.baseline,
            "test": statistics.test,
            "correction": statistics.correction,
            "alpha": statistics.alpha,
            "n_users": s.n_users,
            "comparisons": s.tests,
        },
    )


def write_leaderboards(results: RunResults, s: Summary, statistics: StatisticsConfig) -> None:
    """``leaderboard.{md,tex,csv}`` and, with tests, ``statistics.md``."""
    from benchmark.report import tables

    cfg = results.config
    caption = {
        "title": cfg.description or cfg.experiment,
        "test": statistics.test,
        "correction": statistics.correction,
        "alpha": statistics.alpha,
        "n_users": s.n_users,
        "fingerprint": results.fingerprint[:12],
    }
    for fmt, ext in (("md", "md"), ("latex", "tex"), ("csv", "csv")):
        text = tables.leaderboard(
            s.means, s.tests, fmt=fmt, baseline=s.baseline, caption=caption, metrics=s.metrics, spread=s.spread
        )
        with atomic_open(results.run_dir / f"leaderboard.{ext}", "w", encoding="utf-8") as fh:
            fh.write(text)
    if s.tests:
        with atomic_open(results.run_dir / "statistics.md", "w", encoding="utf-8") as fh:
            fh.write(tables.comparison_table(s.tests, fmt="md"))


def write_plots(results: RunResults, s: Summary, plot_metric: str | None) -> None:
    """A bar chart of one metric (default: the first recall@K) and metrics against K."""
    from benchmark.report import plots

    pm = plot_metric or next((c for c in s.metrics if c.startswith("recall@")), s.metrics[0])
    out = results.run_dir / "plots"
    out.mkdir(exist_ok=True)
    plots.plot_metric_bars(results.averaged(s.models), pm, out / f"bars_{pm.replace('@', '_at_')}.png")
    plots.plot_metric_vs_k(s.means, out / "metrics_vs_k.png")


def write_subsets(results: RunResults, models: list[str], metric_cols: list[str]) -> pd.DataFrame | None:
    """``subsets.{csv,md}``: each model's metrics on all users, on cold-start test items and per
    user-activity bucket (training interactions), averaged over seeds, beside the overall row."""
    rows = [
        {"model": m, "seed": u.record["seed"], **r}
        for m in models
        for u in results.units[m]
        for r in u.record.get("subsets") or []
    ]
    if not rows:
        return None
    df = pd.DataFrame(rows)
    order = {name: i for i, name in enumerate(dict.fromkeys(df["subset"]))}
    cols = [c for c in metric_cols if c in df.columns]
    agg = df.groupby(["model", "subset"], sort=False)[["n_users"] + cols].mean().reset_index()
    agg["_m"] = agg["model"].map({m: i for i, m in enumerate(models)})
    agg["_s"] = agg["subset"].map(order)
    agg = agg.sort_values(["_m", "_s"]).drop(columns=["_m", "_s"]).reset_index(drop=True)
    agg["n_users"] = agg["n_users"].round().astype(int)
    with atomic_open(results.run_dir / "subsets.csv", "w", encoding="utf-8") as fh:
        agg.to_csv(fh, index=False, float_format="%.6g")
    with atomic_open(results.run_dir / "subsets.md", "w", encoding="utf-8") as fh:
        fh.write(subsets_markdown(agg, cols))
    return agg


def subsets_markdown(agg: pd.DataFrame, cols: list[str]) -> str:
    lines = ["| model | subset | users | " + " | ".join(cols) + " |", "|---|---|---:|" + "---:|" * len(cols)]
    for r in agg.to_dict("records"):  # not itertuples: it renames the "metric@k" columns
        vals = " | ".join("—" if pd.isna(r[c]) else f"{r[c]:.4f}" for c in cols)
        lines.append(f"| {r['model']} | {r['subset']} | {r['n_users']} | {vals} |")
    lines += [
        "",
        "Subsets: `all` = every evaluated user; `cold_items` = only test items with no training "
        "interaction as relevant (users without one excluded); `activity [a, b)` = users with a ≤ "
        "training interactions < b. Means over seeds.",
    ]
    return "\n".join(lines) + "\n"
