"""``vlm4rec-bench evaluate``: score TREC runs (ours or anyone's) against TREC qrels.

Each run is ranked by score descending, cut at the largest K asked, and scored per user with the
project's metric definitions (:mod:`benchmark.evaluation.metrics`). Tied scores: by default
(``--ties item-asc``) the item id (as a string) ascending decides, the project's own rule;
``--ties trec_eval`` ranks exactly as trec_eval does (scores compared as 32-bit floats, then item
id descending), so numbers match trec_eval's on runs with ties (see
:mod:`benchmark.evaluation.trec`). Users judged relevant in the
qrels but absent from a run score 0 and are counted (``missing_users``); users with no relevant
item (all ``rel <= 0``) are excluded and counted. With several runs, each is compared with the
baseline (default: the first run) by :func:`benchmark.stats.compare`.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.cli.evaluate_beyond import BeyondInputs, beyond_values
from benchmark.data.read_report import ReadReport
from benchmark.errors import BadInputError, CliError
from benchmark.evaluation import metrics as M
from benchmark.evaluation.metrics import MetricSpec
from benchmark.evaluation.trec import TIE_RULES
from benchmark.report.tables import FORMATS as TABLE_FORMATS
from benchmark.stats import CORRECTIONS, MIN_RESAMPLES, TESTS

log = logging.getLogger(__name__)

DEFAULT_METRICS = "recall@10,recall@20,ndcg@10,ndcg@20,hitrate@10,precision@10,mrr@10,map@10"
FORMATS: tuple[str, ...] = ("json", *TABLE_FORMATS)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` command."""
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate TREC run files against TREC qrels (metrics, paired tests, leaderboard)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--qrels", required=True, type=Path, help="qrels file: 'user 0 item rel' per line (rel > 0 = relevant)"
    )
    p.add_argument(
        "--run",
        required=True,
        action="append",
        metavar="[NAME=]PATH",
        help="run file 'user Q0 item rank score tag'; repeat for several runs; NAME defaults to the file stem",
    )
    p.add_argument("--metrics", default=DEFAULT_METRICS, help=f"comma-separated NAME@K (default: {DEFAULT_METRICS})")
    p.add_argument(
        "--ties",
        default=TIE_RULES[0],
        choices=TIE_RULES,
        help="order of items with equal scores: item-asc = item id ascending (default, the project's rule); "
        "trec_eval = exactly trec_eval's (32-bit float scores, then item id descending)",
    )
    p.add_argument("--baseline", help="run the others are tested against (default: the first run)")
    p.add_argument(
        "--test",
        default="auto",
        choices=TESTS,
        help="paired test (default auto: the paired t-test here, as each run file is one model)",
    )
    p.add_argument(
        "--correction",
        default="holm",
        choices=CORRECTIONS,
        help="multiple-comparison correction over the whole table (default holm)",
    )
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument(
        "--n-resamples",
        type=int,
        default=MIN_RESAMPLES,
        help=f"permutations / bootstrap resamples (default and minimum {MIN_RESAMPLES})",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the resampling tests (default 0)")
    p.add_argument(
        "--per-user", type=Path, metavar="OUT.tsv", help="write every per-user value (run, user_id, metrics) as TSV"
    )
    p.add_argument("--format", default="md", choices=FORMATS, help="output on stdout (default md)")
    from benchmark.cli.evaluate_beyond import add_arguments

    add_arguments(p)
    p.add_argument(
        "--skip-malformed",
        action="store_true",
        help="skip (and count/report) malformed or duplicate lines instead of stopping at the first",
    )
    p.set_defaults(func=run)


def _parse_runs(specs: list[str]) -> dict[str, Path]:
    runs: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep:
            name, path = Path(spec).stem, spec
        name = name.strip()
        if not name:
            raise CliError(f"--run {spec!r}: empty run name")
        if name in runs:
            raise CliError(f"two runs are named {name!r}; give distinct names with --run NAME=PATH")
        if not Path(path).is_file():
            raise CliError(f"run file {path} does not exist")
        runs[name] = Path(path)
    return runs


@dataclass
class _Evaluated:
    """Every run scored against the qrels: per-user tables and what the output reports."""

    per_user: dict[str, pd.DataFrame] = field(default_factory=dict)
    """run → ``user_id`` + one column per metric label."""
    means: dict[str, dict[str, float]] = field(default_factory=dict)
    missing: dict[str, int] = field(default_factory=dict)
    """run → qrels users without a list (scored 0)."""
    skipped: dict[str, int] = field(default_factory=dict)
    """``"qrels"`` or run → bad lines skipped (``--skip-malformed``)."""
    run_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    """run → per-run beyond-accuracy values (``gini@10``, …)."""
    n_excluded: int = 0
    """qrels users with no relevant item."""

    @property
    def n_users(self) -> int:
        return len(next(iter(self.per_user.values())))


def run(args: argparse.Namespace) -> int:
    """Score every run against the qrels, compare them with the baseline, print the result."""
    from benchmark.evaluation.metrics import RUN_METRICS

    specs, run_paths, baseline = _check_args(args)
    labels = [s.label for s in specs if s.name not in RUN_METRICS]  # per-user columns
    try:
        done = _evaluate_runs(args.qrels, run_paths, specs, strict=not args.skip_malformed, ties=args.ties, args=args)
    except BadInputError as exc:
        raise CliError(f"{exc} (use --skip-malformed to skip and count such lines)") from None

    tests: list[dict[str, Any]] = []
    if len(done.per_user) > 1:
        from benchmark.stats import compare

        tests = compare(
            done.per_user,
            baseline,
            labels,
            test=args.test,
            correction=args.correction,
            alpha=args.alpha,
            n_resamples=args.n_resamples,
            seed=args.seed,
        )
    if args.per_user:
        _write_per_user(args.per_user, done.per_user, labels)
    if args.format == "json":
        print(json.dumps(_json_output(done, tests, baseline, args), indent=2, allow_nan=False))
    else:
        print(_table_output(done, tests, baseline, labels, args))
    return 0


def _check_args(args: argparse.Namespace) -> tuple[list[MetricSpec], dict[str, Path], str]:
    """Metric specs, run name → file, and the baseline's name; every bad flag is a :class:`CliError`."""
    from benchmark.evaluation.metrics import parse_metrics

    try:
        specs = parse_metrics(args.metrics)
    except ValueError as exc:
        raise CliError(f"--metrics: {exc}") from None
    if not args.qrels.is_file():
        raise CliError(f"qrels file {args.qrels} does not exist")
    run_paths = _parse_runs(args.run)
    baseline = args.baseline or next(iter(run_paths))
    if baseline not in run_paths:
        raise CliError(f"--baseline {baseline!r} is not a run; runs: {', '.join(run_paths)}")
    if not 0 < args.alpha < 1:
        raise CliError(f"--alpha must be in (0, 1), got {args.alpha}")
    if args.n_resamples < MIN_RESAMPLES:
        raise CliError(f"--n-resamples must be at least {MIN_RESAMPLES}, got {args.n_resamples}")
    return specs, run_paths, baseline


def _evaluate_runs(
    qrels_path: Path,
    run_paths: dict[str, Path],
    specs: list[MetricSpec],
    strict: bool,
    ties: str,
    args: argparse.Namespace,
) -> _Evaluated:
    """Read the qrels, then read, re-rank and score each run (bad lines raise unless not ``strict``);
    beyond-accuracy metrics read ``args.train`` / ``args.item_features``. Each run file is read
    once: all of them first when a beyond-accuracy metric needs their items for the shared
    catalogue, else each just before it is scored."""
    from benchmark.cli.evaluate_beyond import beyond_inputs
    from benchmark.evaluation.trec import read_qrels, read_run, relevant_from_qrels

    done = _Evaluated()
    qrels, qrep = read_qrels(qrels_path, strict=strict)
    qrep.log_summary(log)
    done.skipped["qrels"] = qrep.n_problems
    relevant, done.n_excluded = relevant_from_qrels(qrels)
    if relevant.empty:
        raise CliError(f"{qrels_path} has no relevant judgement (rel > 0)")
    if done.n_excluded:
        log.info("%d qrels users have no relevant item and are excluded", done.n_excluded)
    beyond = None
    read: dict[str, tuple[pd.DataFrame, ReadReport]] = {}
    if any(s.name not in M.METRICS for s in specs):
        read = {name: read_run(path, strict=strict) for name, path in run_paths.items()}
        beyond = beyond_inputs(args, specs, qrels, [frame for frame, _ in read.values()])
    for name, path in run_paths.items():
        frame, rrep = read.pop(name) if name in read else read_run(path, strict=strict)
        _evaluate_run(name, frame, rrep, relevant, specs, done, ties, beyond)
    return done


def _evaluate_run(
    name: str,
    frame: pd.DataFrame,
    rrep: ReadReport,
    relevant: pd.DataFrame,
    specs: list[MetricSpec],
    done: _Evaluated,
    ties: str,
    beyond: BeyondInputs | None,
) -> None:
    """Score one run read by :func:`~benchmark.evaluation.trec.read_run` (``frame`` and its report
    ``rrep``) into ``done`` (per-user table, means, missing users, skipped lines)."""
    from benchmark.evaluation.evaluator import evaluate_topk
    from benchmark.evaluation.trec import rank_run

    names = [n for n in dict.fromkeys(s.name for s in specs) if n in M.METRICS] or ["recall"]
    ks = sorted({s.k for s in specs})
    labels = [s.label for s in specs if s.name not in M.RUN_METRICS]
    rrep.log_summary(log)
    done.skipped[name] = rrep.n_problems
    ranked = rank_run(frame, ties=ties)
    n_reordered = _users_reordered(frame, ranked)
    if n_reordered:
        log.warning(
            "run %s: for %d users the rank column orders items differently from the scores; "
            "ranked by score (ties: %s), the rank column is ignored",
            name,
            n_reordered,
            ties,
        )
    res = evaluate_topk(ranked[ranked["rank"] <= max(ks)], relevant, ks, names)
    table = res.per_user
    if beyond is not None:
        cols, done.run_metrics[name] = beyond_values(beyond, ranked, res.per_user["user_id"].to_numpy(), specs)
        table = table.assign(**cols)
    table = table[["user_id", *labels]]
    done.per_user[name] = table
    done.means[name] = {c: float(table[c].mean()) for c in labels}
    done.missing[name] = res.n_missing
    if res.n_missing:
        log.warning("run %s: %d of %d qrels users are missing and score 0", name, res.n_missing, res.n_users)
    extra = res.info.get("n_run_users_without_relevant", 0)
    if extra:
        log.info("run %s: %d users are not judged relevant in the qrels and are ignored", name, extra)


def _write_per_user(path: Path, per_user: dict[str, pd.DataFrame], labels: list[str]) -> None:
    """Every per-user value as one TSV (``run, user_id, metrics…``), written atomically."""
    from benchmark.io import atomic_open

    long = pd.concat([t.assign(run=n)[["run", "user_id", *labels]] for n, t in per_user.items()], ignore_index=True)
    with atomic_open(path, "w", encoding="utf-8") as fh:
        long.to_csv(fh, sep="\t", index=False, float_format="%.12g")
    log.info("per-user values written to %s", path)


def _json_output(
    done: _Evaluated, tests: list[dict[str, Any]], baseline: str, args: argparse.Namespace
) -> dict[str, Any]:
    return {
        "runs": done.means,
        "n_users": done.n_users,
        "missing_users": done.missing,
        "n_excluded": done.n_excluded,
        "skipped_lines": done.skipped,
        "ties": args.ties,
        "baseline": baseline,
        "correction": args.correction,
        "alpha": args.alpha,
        "tests": [_json_safe(t) for t in tests],
        **({"run_metrics": done.run_metrics} if done.run_metrics else {}),
    }


def _table_output(
    done: _Evaluated, tests: list[dict[str, Any]], baseline: str, labels: list[str], args: argparse.Namespace
) -> str:
    from benchmark.report.tables import leaderboard

    caption: dict[str, Any] = {"n_users": done.n_users}
    if tests:
        caption.update(test=args.test, correction=args.correction, alpha=args.alpha)
    notes = [f"{n}: {m} users missing (scored 0)" for n, m in done.missing.items() if m]
    if args.ties != TIE_RULES[0]:
        notes.append(f"tied scores ranked as {args.ties} does")
    for run_name, values in done.run_metrics.items():
        notes.append(f"{run_name}: " + ", ".join(f"{k} = {v:.4f}" for k, v in values.items()))
    if notes and args.format != "csv":
        caption["note"] = "; ".join(notes)
    return leaderboard(
        done.means, tests, fmt=args.format, baseline=baseline if tests else None, caption=caption, metrics=labels
    )


def _users_reordered(frame: pd.DataFrame, ranked: pd.DataFrame) -> int:
    """Users whose file ``rank`` order differs from the score order the evaluation uses (e.g. a
    run with constant scores whose order is in the rank column only)."""
    m = frame[["user", "item", "rank"]].merge(
        ranked[["user", "item", "rank"]].rename(columns={"rank": "new"}), on=["user", "item"]
    )
    m = m.sort_values(["user", "rank", "new"], kind="stable")
    prev = m.groupby("user", sort=False)["new"].shift()
    return int(m.loc[m["new"] < prev, "user"].nunique())


def _json_safe(d: dict[str, Any]) -> dict[str, Any]:
    """NaN/inf → null, so the output is strict JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in d.items()}
