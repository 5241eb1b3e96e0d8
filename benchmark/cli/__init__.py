"""``vlm4rec-bench`` command line.

Each subcommand is a module in this package exposing ``register(subparsers)`` which adds its
parser and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an
exit code). Modules are discovered automatically; packages other than ``benchmark`` add
commands through the ``vlm4rec_bench.commands`` entry-point group (value: a ``register``
function).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from benchmark import __version__
from benchmark.errors import BenchError

log = logging.getLogger("vlm4rec_bench")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vlm4rec-bench",
        description="Benchmark harness for multimodal recommendation (VLM4Rec and baselines on one split).",
    )
    parser.add_argument("--version", action="version", version=f"vlm4rec-bench {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith(("_", "data_"))):
        module = importlib.import_module(f"{__name__}.{mod}")
        if hasattr(module, "register"):
            module.register(sub)
    for ep in entry_points(group="vlm4rec_bench.commands"):
        try:
            ep.load()(sub)
        except Exception as exc:  # a broken plug-in command must not break the others
            log.warning("could not load command plug-in %s: %s", ep.name, exc)
    return parser


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except BenchError as exc:  # CliError, ConfigError, BadInputError, …: one line, no traceback
        log.error("%s", exc)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
