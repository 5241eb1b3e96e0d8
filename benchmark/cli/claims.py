"""``vlm4rec-bench claims RESULTS_DIR``: the paper's numbers beside ours, a verdict per claim."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    from benchmark.stats import CORRECTIONS, TESTS

    p = subparsers.add_parser("claims", help="check the paper's published claims against a results directory")
    p.add_argument("results", help="a run directory (results/<experiment>/<timestamp>)")
    p.add_argument("--published", default=None, help="YAML of published numbers (default: the VLM4Rec paper's)")
    p.add_argument("--test", choices=TESTS, default=None)
    p.add_argument("--correction", choices=CORRECTIONS, default=None)
    p.add_argument("--alpha", type=float, default=None)
    p.add_argument("--format", choices=["md", "json"], default="md")
    p.add_argument("--out", default=None)
    p.set_defaults(func=_claims)


def _claims(args: argparse.Namespace) -> int:
    from benchmark.io import atomic_open
    from benchmark.runner.claims import claims_report

    md, report = claims_report(args.results, args.published, args.test, args.correction, args.alpha)
    text = md if args.format == "md" else json.dumps(report, indent=2, default=float) + "\n"
    if args.out:
        with atomic_open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0
