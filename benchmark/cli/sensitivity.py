"""``vlm4rec-bench sensitivity RUN_A [RUN_B]``: the same models under two protocols — two runs
(e.g. the shipped ``demo-protocol-mmrec`` and ``demo-protocol-global-time``) or two evaluation
modes of one run (``--mode-b captioned-only``): both tables, each model's change and Kendall's τ
between the two orders with its CI (:mod:`benchmark.runner.sensitivity`)."""

from __future__ import annotations

import argparse

from benchmark.errors import BenchError, CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sensitivity", help="compare the same models under two protocols (tables, changes, Kendall's tau)"
    )
    p.add_argument("run_a", help="run directory of protocol A")
    p.add_argument("run_b", nargs="?", default=None, help="run directory of protocol B (default: RUN_A, with --mode-b)")
    p.add_argument("--mode-a", default=None, help="evaluation mode of A (default: the leaderboard's, full-catalogue)")
    p.add_argument("--mode-b", default=None, help="evaluation mode of B (default: the leaderboard's, full-catalogue)")
    p.add_argument("--metric", default=None, help="metric@K the ranks and Kendall's tau use (default: the first shown)")
    p.add_argument(
        "--metrics", default=None, help="comma-separated metric@K columns of the tables (default: all common)"
    )
    p.add_argument("--n-resamples", type=int, default=2000, help="bootstrap resamples of the tau CI (default 2000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--format", choices=["md", "json"], default="md")
    p.add_argument("--out", default=None, help="write here instead of stdout")
    p.set_defaults(func=_sensitivity)


def _sensitivity(args: argparse.Namespace) -> int:
    from benchmark.io import write_text_or_stdout
    from benchmark.report.sensitivity import render_sensitivity
    from benchmark.runner.results import RunResults
    from benchmark.runner.sensitivity import Side, sensitivity

    if args.run_b is None and args.mode_a == args.mode_b:
        raise CliError("one run directory compares two evaluation modes: give --mode-b (or a second run directory)")
    try:
        a = RunResults.load(args.run_a)
        b = RunResults.load(args.run_b) if args.run_b else a
        rep = sensitivity(
            Side(a, args.mode_a),
            Side(b, args.mode_b),
            metric=args.metric,
            metrics=args.metrics.split(",") if args.metrics else None,
            n_resamples=args.n_resamples,
            seed=args.seed,
        )
    except BenchError as exc:
        raise CliError(str(exc)) from None
    text = render_sensitivity(rep, args.format)
    write_text_or_stdout(text, args.out)
    return 0
