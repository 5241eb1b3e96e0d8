"""``vlm4rec-bench leaderboard RESULTS_DIR…``: re-render tables from saved per-user metrics.

Any subset of methods, any baseline, any test/correction — no model is re-run. Several
results directories can be combined only if they share one split fingerprint.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.errors import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("leaderboard", help="re-render leaderboards from saved per-user metrics")
    p.add_argument("results", nargs="+", help="run directories (results/<experiment>/<timestamp>)")
    p.add_argument("--models", default=None, help="comma-separated model names to include (default: all)")
    p.add_argument("--baseline", default=None, help="model the others are tested against (default: the config's)")
    p.add_argument("--metrics", default=None, help="comma-separated metric@K columns (default: all)")
    p.add_argument("--test", choices=["t", "wilcoxon", "randomization", "bootstrap"], default="t")
    p.add_argument("--correction", choices=["holm", "bonferroni", "bh", "none"], default="holm")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--format", choices=["md", "latex", "csv", "json"], default="md")
    p.add_argument("--out", default=None, help="write here instead of stdout")
    p.set_defaults(func=_leaderboard)


def _leaderboard(args: argparse.Namespace) -> int:
    import json

    import yaml

    from benchmark.io import atomic_open, read_json
    from benchmark.report.tables import leaderboard
    from benchmark.runner.pipeline import load_units
    from benchmark.stats import aggregate_seeds, compare

    frames: dict = {}
    fingerprints = set()
    baseline_default = None
    for d in map(Path, args.results):
        if not (d / "split.json").exists():
            raise CliError(f"{d} is not a run directory (no split.json)")
        fingerprints.add(read_json(d / "split.json")["fingerprint"])
        _, fr = load_units(d)
        for m, fs in fr.items():
            if m in frames:
                raise CliError(f"model {m!r} appears in more than one results directory")
            frames[m] = fs
        if baseline_default is None and (d / "config.resolved.yaml").exists():
            cfg = yaml.safe_load((d / "config.resolved.yaml").read_text(encoding="utf-8"))
            baseline_default = (cfg.get("statistics") or {}).get("baseline") or cfg["models"][0]["name"]
    if len(fingerprints) != 1:
        raise CliError(
            f"results come from {len(fingerprints)} different splits ({', '.join(f[:12] for f in sorted(fingerprints))}); "
            "only results on one split can share a table"
        )
    models = args.models.split(",") if args.models else list(frames)
    unknown = [m for m in models if m not in frames]
    if unknown:
        raise CliError(f"unknown model(s) {unknown}; available: {', '.join(frames)}")
    per_model = {m: aggregate_seeds(frames[m])[0] for m in models}
    cols = [c for c in per_model[models[0]].columns if c != "user_id"]
    metrics = args.metrics.split(",") if args.metrics else cols
    bad = [m for m in metrics if m not in cols]
    if bad:
        raise CliError(f"unknown metric column(s) {bad}; available: {', '.join(cols)}")
    baseline = args.baseline or (baseline_default if baseline_default in models else models[0])
    if baseline not in models:
        raise CliError(f"baseline {baseline!r} is not among the models: {', '.join(models)}")
    means = {m: {c: float(per_model[m][c].mean()) for c in metrics} for m in models}
    tests = (
        compare(
            per_model, baseline=baseline, metrics=metrics, test=args.test, correction=args.correction, alpha=args.alpha
        )
        if len(models) > 1
        else []
    )
    fp = fingerprints.pop()
    if args.format == "json":
        text = (
            json.dumps(
                {"runs": means, "n_users": len(per_model[models[0]]), "split_fingerprint": fp, "tests": tests},
                indent=2,
                default=float,
            )
            + "\n"
        )
    else:
        caption = {
            "test": args.test,
            "correction": args.correction,
            "alpha": args.alpha,
            "n_users": len(per_model[models[0]]),
            "fingerprint": fp[:12],
        }
        text = leaderboard(means, tests, fmt=args.format, baseline=baseline, caption=caption, metrics=metrics)
    if args.out:
        with atomic_open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0
