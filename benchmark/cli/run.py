"""``vlm4rec-bench run [CONFIG] [--override key=value …]``: a whole comparison, resumable."""

from __future__ import annotations

import argparse
import logging

from benchmark.errors import CliError

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    from benchmark.runner.tracking import LOGGERS

    p = subparsers.add_parser(
        "run",
        help="run an experiment (default: the built-in offline demo)",
        description="Dataset → split → features → models × seeds → per-user metrics → statistics → leaderboard. "
        "Without CONFIG runs the offline demo (synthetic catalogue, reference captions instead of an LVLM, real "
        "MiniLM, pixel features instead of CLIP).",
    )
    p.add_argument("config", nargs="?", default=None, help="YAML file or shipped config name (see `configs`)")
    p.add_argument(
        "--override",
        "-o",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. seeds=[0,1] or models.0.params.aggregation=last_n",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="recompute every unit and every feature set, in a new run directory (a describer's cache keeps "
        "its finished descriptions; failed ones are retried on every run)",
    )
    for flag, what in (("models", "models"), ("features", "feature sets")):
        p.add_argument(
            f"--{flag}",
            type=_names,
            default=None,
            metavar="A,B",
            help=f"run only these {what} of the config (by name)",
        )
        p.add_argument(
            f"--skip-{flag}",
            type=_names,
            default=[],
            metavar="A,B",
            help=f"leave these {what} of the config out"
            + (" (and the models that use them)" if flag == "features" else ""),
        )
    p.add_argument(
        "--logger",
        choices=LOGGERS,
        default=None,
        help="experiment tracker (default: the config's; W&B runs offline without an API key)",
    )
    p.add_argument("--results-dir", default=None, help="where run directories go (default: the config's)")
    p.add_argument("--run-dir", default=None, help="use (or resume) exactly this run directory")
    p.add_argument(
        "--allow-mixed",
        action="store_true",
        help="resume even when finished units were written by other code (commit, uncommitted changes, package "
        "versions); the mixture is recorded in provenance.json and the leaderboard caption",
    )
    p.set_defaults(func=_run)


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give one or more names, comma-separated")
    return names


def _run(args: argparse.Namespace) -> int:
    from benchmark.configuration import ConfigError
    from benchmark.runner.config import load_config, select_entries
    from benchmark.runner.pipeline import run_experiment

    overrides = list(args.override)
    if args.results_dir:
        overrides.append(f"results_dir={args.results_dir}")
    try:
        cfg = load_config(args.config, overrides)
        if args.models is not None or args.skip_models or args.features is not None or args.skip_features:
            cfg = select_entries(
                cfg,
                models=args.models,
                skip_models=args.skip_models,
                features=args.features,
                skip_features=args.skip_features,
            )
    except ConfigError as exc:
        raise CliError(f"config error: {exc}") from None
    if args.config is None:
        log.info(
            "no CONFIG given: running the built-in offline demo. Its captions come from the demo generator "
            "(not an LVLM), text embeddings from the real all-MiniLM-L6-v2, and its image feature is a plain "
            "pixel feature in place of CLIP; its numbers say nothing about real data."
        )
    result = run_experiment(
        cfg, force=args.force, run_dir=args.run_dir, logger_kind=args.logger, allow_mixed=args.allow_mixed
    )
    board = result.run_dir / "leaderboard.md"
    if board.exists():
        print(board.read_text(encoding="utf-8"))
    print(f"results: {result.run_dir}  ({len(result.units_run)} units run, {len(result.units_skipped)} already done)")
    if result.report_errors:
        log.error(
            "%d report step(s) failed (%s); every unit is saved — see %s",
            len(result.report_errors),
            "; ".join(result.report_errors),
            result.run_dir / "run.log",
        )
        return 1
    return 0
