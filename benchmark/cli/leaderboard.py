"""``vlm4rec-bench leaderboard RESULTS_DIR…``: re-render tables from saved per-user metrics.

Any subset of methods, any baseline, any test/correction/family — no model is re-run. The tests
see every seed of every model, so the default test (``auto``) counts training randomness for
models run with several seeds. Results directories on one split fingerprint share one table;
directories on several splits make a multi-dataset table (a column group per split, markers
within each, one correction over the table: :mod:`benchmark.runner.multidataset`), optionally
with a Friedman test over the datasets and its critical-difference diagram (``--friedman``,
``--cd-diagram``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.errors import CliError

if TYPE_CHECKING:
    import pandas as pd

    from benchmark.report.notes import LeaderboardNotes
    from benchmark.runner.results import RunResults


def register(subparsers: argparse._SubParsersAction) -> None:
    from benchmark.stats import COMPARISONS, CORRECTIONS, TESTS

    p = subparsers.add_parser("leaderboard", help="re-render leaderboards from saved per-user metrics")
    p.add_argument("results", nargs="+", help="run directories (results/<experiment>/<timestamp>)")
    p.add_argument("--models", default=None, help="comma-separated model names to include (default: all)")
    p.add_argument("--baseline", default=None, help="model the others are tested against (default: the config's)")
    p.add_argument("--metrics", default=None, help="comma-separated metric@K columns (default: all)")
    p.add_argument(
        "--test",
        choices=TESTS,
        default="auto",
        help="auto (default): the mixed model over users and seeds when a side has several seeds, else the paired "
        "t-test; the classic tests (t, wilcoxon, randomization, bootstrap) hold the trained models fixed",
    )
    p.add_argument(
        "--comparisons",
        choices=COMPARISONS,
        default="baseline",
        help="the family corrected together: every model against the baseline (default) or all pairs",
    )
    p.add_argument("--correction", choices=CORRECTIONS, default="holm")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument(
        "--show-cost",
        action="store_true",
        help="add a Cost column: each model's wall time over the stages it depended on (its features, training, "
        "evaluation; summed over seeds) and energy in kWh where CodeCarbon measured it",
    )
    p.add_argument("--format", choices=["md", "latex", "csv", "json"], default="md")
    p.add_argument("--out", default=None, help="write here instead of stdout")
    p.add_argument(
        "--friedman",
        default=None,
        metavar="METRIC",
        help="runs on several splits: Friedman test over the datasets on METRIC with the Nemenyi post-hoc "
        "(refused with too few datasets)",
    )
    p.add_argument(
        "--cd-diagram", default=None, metavar="PNG", help="with --friedman: write the critical-difference diagram"
    )
    p.set_defaults(func=_leaderboard)


def _leaderboard(args: argparse.Namespace) -> int:
    from benchmark.io import write_text_or_stdout

    results = _read(args.results)
    if len({r.fingerprint for r in results}) > 1:
        from benchmark.cli.leaderboard_multi import multi_dataset

        if args.show_cost:
            raise CliError("--show-cost: the multi-dataset table has no cost column; render each split's table with it")
        return multi_dataset(args, results)
    if args.friedman or args.cd_diagram:
        raise CliError("--friedman/--cd-diagram compare datasets: give run directories on several splits")
    owners, fingerprint, baseline_default = _load(results)
    models = args.models.split(",") if args.models else list(owners)
    unknown = [m for m in models if m not in owners]
    if unknown:
        raise CliError(f"unknown model(s) {unknown}; available: {', '.join(owners)}")
    per_model = {m: owners[m].per_user(m) for m in models}
    seed_frames = {m: (owners[m].seed_frames(m) if owners[m].seeds(m) != [None] else per_model[m]) for m in models}
    seeds = {m: owners[m].seeds(m) for m in models}
    cols = [c for c in per_model[models[0]].columns if c != "user_id"]
    metrics = args.metrics.split(",") if args.metrics else cols
    bad = [m for m in metrics if m not in cols]
    if bad:
        raise CliError(f"unknown metric column(s) {bad}; available: {', '.join(cols)}")
    baseline = str(args.baseline or (baseline_default if baseline_default in models else models[0]))
    if baseline not in models:
        raise CliError(f"baseline {baseline!r} is not among the models: {', '.join(models)}")
    spread = {m: owners[m].spread(m) for m in models}
    notes = _notes(owners, models)
    costs = _costs(owners, models) if args.show_cost else None
    text = _render(args, per_model, (seed_frames, seeds, spread), metrics, baseline, fingerprint, costs, notes)
    write_text_or_stdout(text, args.out)
    return 0


def _costs(owners: dict[str, RunResults], models: list[str]) -> dict[str, Any]:
    """Each model's cost row (:func:`benchmark.runner.costs.model_costs`) from its own run."""
    from benchmark.runner.costs import model_costs

    by_run: dict[int, dict[str, Any]] = {}
    for m in models:
        by_run.setdefault(id(owners[m]), model_costs(owners[m]))
    return {m: by_run[id(owners[m])].get(m) for m in models}


def _read(dirs: list[str]) -> list[RunResults]:
    from benchmark.runner.results import NotARunDirectory, RunResults

    try:
        return [RunResults.load(d) for d in map(Path, dirs)]
    except NotARunDirectory as exc:
        raise CliError(str(exc)) from None


def _load(runs: list[RunResults]) -> tuple[dict[str, RunResults], str, str | None]:
    """The run directory of each model (one split only), the split fingerprint, and the first
    run's baseline. Models keep the order of the directories, then each config's order."""
    per_model: dict[str, RunResults] = {}
    fingerprints: set[str] = set()
    baseline_default = None
    for results in runs:
        fingerprints.add(results.fingerprint)
        for m in results.models:
            if m in per_model:
                raise CliError(f"model {m!r} appears in more than one results directory")
            per_model[m] = results
        baseline_default = baseline_default or results.config.baseline
    if len(fingerprints) != 1:
        raise CliError(
            f"results come from {len(fingerprints)} different splits ({', '.join(f[:12] for f in sorted(fingerprints))}); "
            "only results on one split can share a table"
        )
    return per_model, fingerprints.pop(), baseline_default


def _notes(owners: dict[str, RunResults], models: list[str]) -> LeaderboardNotes:
    """The tuning and health notes of the shown models, from their runs (the budget caption only
    when every run had the same search policy)."""
    from benchmark.report.notes import LeaderboardNotes
    from benchmark.runner.health import read_health
    from benchmark.runner.stages.summary import leaderboard_notes

    runs = list({id(r): r for r in owners.values()}.values())
    parts = [leaderboard_notes(r, read_health(r.run_dir)) for r in runs]
    policies = {repr(p.policy) for p in parts}
    search = {m: s for p in parts for m, s in p.search.items() if m in models}
    policy = parts[0].policy if len(policies) == 1 else None
    untuned = [m for m in models if m not in search] if policy is not None else []
    warnings = [w for p in parts for w in p.warnings if w["model"] in models]
    return LeaderboardNotes(policy, search, untuned, warnings)


def _render(
    args: argparse.Namespace,
    per_model: dict[str, pd.DataFrame],
    seeded: tuple[dict[str, Any], dict[str, list[int | None]], dict[str, Any]],
    metrics: list[str],
    baseline: str,
    fp: str,
    costs: dict[str, Any] | None,
    notes: LeaderboardNotes,
) -> str:
    import json

    from benchmark.report.notes import leaderboard_with_notes
    from benchmark.stats import compare, family_record

    frames, seeds, spread = seeded
    models = list(per_model)
    means = {m: {c: float(per_model[m][c].mean()) for c in metrics} for m in models}
    tests = (
        compare(
            frames,
            baseline=baseline,
            metrics=metrics,
            test=args.test,
            correction=args.correction,
            alpha=args.alpha,
            pairs="all-pairs" if args.comparisons == "all-pairs" else "baseline",
            seeds=seeds,
        )
        if len(models) > 1
        else []
    )
    n_users = len(per_model[models[0]])
    if args.format == "json":
        out = {
            "runs": means,
            "n_users": n_users,
            "split_fingerprint": fp,
            "seed_spread": spread,
            "families": [family_record(tests)] if tests else [],
            "tests": tests,
            **({"costs": costs} if costs is not None else {}),
        }
        return json.dumps(out, indent=2, default=float) + "\n"
    caption = {
        "test": args.test,
        "correction": args.correction,
        "alpha": args.alpha,
        "n_users": n_users,
        "fingerprint": fp[:12],
    }
    return leaderboard_with_notes(
        means,
        tests,
        notes,
        fmt=args.format,
        caption=caption,
        baseline=baseline,
        metrics=metrics,
        spread=spread,
        costs=costs,
    )
