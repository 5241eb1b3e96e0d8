"""``vlm4rec-bench claims RESULTS_DIR``: the paper's numbers beside ours, a verdict per claim."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    from benchmark.runner.verdicts import FAMILIES
    from benchmark.stats import CORRECTIONS, TESTS

    p = subparsers.add_parser(
        "claims",
        help="check the paper's published claims against results: a direction and a size verdict per claim",
        description="Each claim gets a direction verdict (supported / contradicted / not significant / not "
        "testable, from the test's own statistic) and a size verdict (the published relative improvement inside or "
        "outside our CI). Several run directories (e.g. two evaluation protocols) are shown side by side.",
    )
    p.add_argument("results", nargs="+", help="run directories (results/<experiment>/<timestamp>)")
    p.add_argument("--published", default=None, help="YAML of published numbers (default: the VLM4Rec paper's)")
    p.add_argument("--test", choices=TESTS, default=None, help="default: each run's statistics.test (auto)")
    p.add_argument("--correction", choices=CORRECTIONS, default=None)
    p.add_argument("--alpha", type=float, default=None)
    p.add_argument(
        "--family",
        choices=FAMILIES,
        default="claims",
        help="claims (default): the claims' distinct comparisons, corrected together; run: the run's own family "
        "(statistics.comparisons), so adjusted p-values equal those of its statistics.json",
    )
    p.add_argument(
        "--logger",
        choices=["none", "wandb", "mlflow"],
        default=None,
        help="log the verdict table to W&B or MLflow (job type claims, in the first run's project; default: the "
        "first run's logging.logger)",
    )
    p.add_argument("--format", choices=["md", "json"], default="md")
    p.add_argument("--out", default=None)
    p.set_defaults(func=_claims)


def _claims(args: argparse.Namespace) -> int:
    from benchmark.errors import CliError
    from benchmark.io import write_text_or_stdout
    from benchmark.runner.claims import claims_report
    from benchmark.runner.results import RunResults
    from benchmark.runner.tracking import log_claims_run

    # Each run is read once: the report and its tracked run share it.
    runs = [RunResults.load(d) for d in args.results]
    try:
        md, report = claims_report(runs, args.published, args.test, args.correction, args.alpha, family=args.family)
    except ValueError as exc:
        if "family 'run'" not in str(exc):
            raise
        raise CliError(str(exc)) from None
    log_claims_run({**report, "published": args.published or ""}, runs[0], args.logger)
    text = md if args.format == "md" else json.dumps(report, indent=2, default=float) + "\n"
    write_text_or_stdout(text, args.out)
    return 0
