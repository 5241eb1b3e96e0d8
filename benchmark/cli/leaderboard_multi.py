"""``vlm4rec-bench leaderboard`` over run directories on several splits: the multi-dataset table
(:mod:`benchmark.runner.multidataset`, rendered by :mod:`benchmark.report.multidataset`) and,
on request, Friedman's test over the datasets with its critical-difference diagram."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from benchmark.errors import BenchError, CliError

if TYPE_CHECKING:
    from benchmark.runner.multidataset import MultiTable
    from benchmark.runner.results import RunResults
    from benchmark.stats.ranks import FriedmanResult


def multi_dataset(args: argparse.Namespace, results: list[RunResults]) -> int:
    """Build, render and write the multi-dataset table (and the Friedman result / CD diagram)."""
    from benchmark.io import write_text_or_stdout
    from benchmark.report.multidataset import render_multi
    from benchmark.runner.multidataset import build_table, group_datasets

    try:
        table = build_table(
            group_datasets(results),
            models=args.models.split(",") if args.models else None,
            metrics=args.metrics.split(",") if args.metrics else None,
            baseline=args.baseline,
            test=args.test,
            correction=args.correction,
            alpha=args.alpha,
            pairs="all-pairs" if args.comparisons == "all-pairs" else "baseline",
        )
    except BenchError as exc:
        raise CliError(str(exc)) from None
    friedman = _friedman(args, table) if (args.friedman or args.cd_diagram) else None
    text = render_multi(table, args.format, extra={"friedman": friedman.to_dict()} if friedman else None)
    if friedman is not None and args.format in ("md", "latex"):
        from benchmark.report.cd_diagram import friedman_text
        from benchmark.report.labels import latex_escape

        line = friedman_text(friedman)
        text += "\n" + (line if args.format == "md" else "% " + latex_escape(line)) + "\n"
    write_text_or_stdout(text, args.out)
    return 0


def friedman_values(table: MultiTable, metric: str) -> Any:
    """Datasets × models frame of ``metric`` means, for the models with results on every dataset."""
    import pandas as pd

    from benchmark.stats.ranks import complete_models

    models = complete_models(table.means, table.models)
    return pd.DataFrame(
        [[table.means[d][m][metric] for m in models] for d in table.datasets], index=table.datasets, columns=models
    )


def _friedman(args: argparse.Namespace, table: MultiTable) -> FriedmanResult:
    from benchmark.report.cd_diagram import plot_cd_diagram
    from benchmark.stats.ranks import TooFewDatasets, friedman

    metric = args.friedman or table.metrics[0]
    if metric not in table.metrics:
        raise CliError(f"--friedman {metric!r} is not a shown metric: {', '.join(table.metrics)}")
    try:
        res = friedman(friedman_values(table, metric), alpha=args.alpha, metric=metric)
    except TooFewDatasets as exc:
        raise CliError(str(exc)) from None
    if args.cd_diagram:
        plot_cd_diagram(res, args.cd_diagram)
    return res
