"""Summary stage: a run's finished units → per-user metrics (per seed and seed-averaged) →
paired tests over the run's family (against the baseline, or all pairs) → ``metrics.json``,
``statistics.json``, leaderboards, subsets, plots.

The tests see every seed of every model (:meth:`RunResults.seed_inputs`), so the default test
counts training randomness (:mod:`benchmark.stats.mixed`); :func:`compare_models` is the one
place the run's family is computed, used by this stage, ``leaderboard`` and ``claims --family
run``, so a pair gets the same adjusted p-value wherever the family is the same.

Nothing written here depends on wall time, so two runs with the same seeds give identical files.

The leaderboards also carry the tuning and the health of each model
(:func:`leaderboard_notes`, rendered by :mod:`benchmark.report.notes`): the budgets in the
caption, a mark on the rows of models with health warnings, and the lists under the table;
``health.json`` holds the warnings.

A failure in one report (a table, the plots, the subsets) is logged and recorded in
``Summary.errors`` and the others are still written: reporting never loses computed units, and
the runner still writes ``provenance.json``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from benchmark.health import HealthWarning
from benchmark.io import atomic_open, write_json, write_parquet
from benchmark.report.notes import LeaderboardNotes
from benchmark.runner.config import StatisticsConfig
from benchmark.runner.modes import write_modes
from benchmark.runner.results import RunResults

log = logging.getLogger(__name__)
#: tracebacks of failed report steps: the run's log file, and the console only with -v
details = logging.getLogger("vlm4rec_bench.details")


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
    health: list[HealthWarning] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    """Report steps that failed (``"plots: ValueError: …"``); their files are missing."""
    warnings: list[str] = field(default_factory=list)
    """Listed under the leaderboard (md, LaTeX) and in ``metrics.json``."""


def compare_models(
    results: RunResults,
    statistics: StatisticsConfig,
    models: list[str],
    metrics: list[str],
    baseline: str,
) -> list[dict[str, Any]]:
    """The run's family of comparisons: ``models`` against ``baseline`` or all pairs
    (``statistics.comparisons``) on ``metrics``, every seed of every model, one correction."""
    from benchmark.stats import compare

    if len(models) < 2:
        return []
    frames, seeds = results.seed_inputs(models)
    return compare(
        frames,
        baseline=baseline,
        metrics=metrics,
        test=statistics.test,
        correction=statistics.correction,
        alpha=statistics.alpha,
        n_resamples=statistics.n_resamples,
        seed=0,
        pairs="all-pairs" if statistics.comparisons == "all-pairs" else "baseline",
        seeds=seeds,
    )


def summarise(
    results: RunResults,
    statistics: StatisticsConfig,
    metrics: list[str] | None = None,
    warnings: Sequence[str] = (),
) -> Summary:
    """Seed-average per-user metrics, test the run's family, write tables and plots.

    ``metrics``: ``metric@k`` columns in leaderboard order (default: the per-user files' order).
    ``warnings``: things the reader of the leaderboard must know (e.g. a describer that covered
    too few items under ``on_low_coverage: warn``), listed under it and in ``metrics.json``.
    """
    from benchmark.runner.health import run_health, write_health

    present = results.models
    if not present:
        raise RuntimeError(f"no finished units in {results.run_dir}")
    per_model = results.averaged(present)
    metric_cols = metrics or [c for c in per_model[present[0]].columns if c != "user_id"]
    base = statistics.baseline if statistics.baseline in present else results.baseline
    errors: list[str] = []
    tests: list[dict[str, Any]] = guarded(
        "statistics", errors, lambda: compare_models(results, statistics, present, metric_cols, base), []
    )
    summary = Summary(
        models=present,
        baseline=base,
        metrics=metric_cols,
        means={m: {c: float(per_model[m][c].mean()) for c in metric_cols} for m in present},
        tests=tests,
        spread={m: results.spread(m) for m in present},
        n_users=int(len(per_model[present[0]])),
        errors=errors,
        warnings=list(warnings),
    )

    def health() -> list[HealthWarning]:
        metric, found = run_health(results)
        write_health(results.run_dir, metric, found)
        return found

    summary.health = guarded("health", errors, health, [])
    write_per_user_long(results, present)
    write_metrics_and_statistics(results, summary, statistics)
    guarded(
        "leaderboard",
        errors,
        lambda: write_leaderboards(results, summary, statistics, leaderboard_notes(results, summary.health)),
        None,
    )
    guarded("subsets", errors, lambda: write_subsets(results, present, metric_cols), None)
    guarded("plots", errors, lambda: write_plots(results, summary, statistics.plot_metric), None)
    guarded("modes", errors, lambda: write_modes(results, present, metric_cols), None)
    return summary


def guarded(step: str, errors: list[str], fn: Callable[[], Any], default: Any) -> Any:
    """Run one report step; a failure is logged, recorded in ``errors`` and ``default`` returned."""
    try:
        return fn()
    except Exception as exc:  # a report must never lose the computed units
        errors.append(f"{step}: {type(exc).__name__}: {exc}")
        log.error(
            "report step %s failed (%s: %s); the units and the other reports are kept", step, type(exc).__name__, exc
        )
        details.info("report step %s failed", step, exc_info=True)
        return default


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
            "warnings": s.warnings,
            "split_fingerprint": results.fingerprint,
            "units": {
                m: [
                    {
                        "seed": u.record["seed"],
                        "valid": u.record["valid"],
                        "test": u.record["test"],
                        "subsets": u.record.get("subsets", []),
                        "run_metrics": u.record.get("run_metrics", {}),
                    }
                    for u in results.units[m]
                ]
                for m in s.models
            },
        },
    )
    from benchmark.stats import family_record

    write_json(
        results.run_dir / "statistics.json",
        {
            "baseline": s.baseline,
            "test": statistics.test,
            "correction": statistics.correction,
            "alpha": statistics.alpha,
            "n_users": s.n_users,
            "families": [family_record(s.tests, family_description(statistics, s))] if s.tests else [],
            "comparisons": s.tests,
        },
    )


def leaderboard_notes(results: RunResults, warnings: list[HealthWarning]) -> LeaderboardNotes:
    """The run's tuning (policy, each tuned model's search summary from its unit records, the
    models not tuned) and health warnings, for the leaderboards."""
    from benchmark.configuration import to_dict

    policy = results.config.search
    search = {m: dict(us[0].record["search"]) for m, us in results.units.items() if us[0].record.get("search")}
    search = {m: search[m] for m in results.models if m in search}
    untuned = [m for m in results.models if m not in search] if policy is not None else []
    return LeaderboardNotes(
        to_dict(policy) if policy is not None else None, search, untuned, [w.to_dict() for w in warnings]
    )


def family_description(statistics: StatisticsConfig, s: Summary) -> str:
    """The family of a run's statistics in words (stored in ``statistics.json``)."""
    what = (
        f"every model against every other ({len(s.models)} models)"
        if statistics.comparisons == "all-pairs"
        else f"every model against the baseline {s.baseline}"
    )
    return f"{what} on {len(s.metrics)} metric(s): {len(s.tests)} comparisons, one {statistics.correction} correction"


def write_leaderboards(results: RunResults, s: Summary, statistics: StatisticsConfig, notes: LeaderboardNotes) -> None:
    """``leaderboard.{md,tex,csv}`` (with the tuning and health ``notes``) and, with tests, ``statistics.md``."""
    from benchmark.report import tables
    from benchmark.report.notes import leaderboard_with_notes

    cfg = results.config
    caption: dict[str, Any] = {
        "title": cfg.description or cfg.experiment,
        "test": statistics.test,
        "correction": statistics.correction,
        "alpha": statistics.alpha,
        "n_users": s.n_users,
        "fingerprint": results.fingerprint[:12],
    }
    versions = results.code_versions(s.models)
    if len(versions) > 1:
        caption["code_versions"] = [f"{len(keys)} unit(s) by {label}" for label, keys in versions.items()]
    for fmt, ext in (("md", "md"), ("latex", "tex"), ("csv", "csv")):
        text = leaderboard_with_notes(
            s.means, s.tests, notes, fmt=fmt, caption=caption, baseline=s.baseline, metrics=s.metrics, spread=s.spread
        )
        text += warnings_block(s.warnings, fmt)
        with atomic_open(results.run_dir / f"leaderboard.{ext}", "w", encoding="utf-8") as fh:
            fh.write(text)
    if s.tests:
        with atomic_open(results.run_dir / "statistics.md", "w", encoding="utf-8") as fh:
            fh.write(tables.comparison_table(s.tests, fmt="md"))


def warnings_block(warnings: Sequence[str], fmt: str) -> str:
    """The run's warnings under a leaderboard (none in CSV, which must stay a plain table)."""
    if not warnings or fmt == "csv":
        return ""
    if fmt == "md":
        return "\n**Warnings**\n\n" + "".join(f"- {w}\n" for w in warnings)
    from benchmark.report.labels import latex_escape

    return "".join(f"\n\\noindent\\textbf{{Warning:}} {latex_escape(w)}\n" for w in warnings)


def write_plots(results: RunResults, s: Summary, plot_metric: str | None) -> None:
    """A bar chart of one metric (default: the first recall@K) and metrics against K."""
    from benchmark.report import plots

    pm = plot_metric or next((c for c in s.metrics if c.startswith("recall@")), s.metrics[0])
    out = results.run_dir / "plots"
    out.mkdir(exist_ok=True)
    plots.plot_metric_bars(results.averaged(s.models), pm, out / f"bars_{pm.replace('@', '_at_')}.png")
    # the families this run has (any metric list works, not only recall and NDCG)
    families = list(dict.fromkeys(c.split("@", 1)[0] for c in s.metrics if "@" in c))
    if families:
        plots.plot_metric_vs_k(s.means, out / "metrics_vs_k.png", metrics=families)


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
