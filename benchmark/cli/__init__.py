"""``vlm4rec-bench`` command line.

Each subcommand is a module in this package exposing ``register(subparsers)`` which adds its
parser and sets ``func`` (a callable taking the parsed ``argparse.Namespace`` and returning an
exit code). Modules are discovered automatically; packages other than ``benchmark`` add
commands through the ``vlm4rec_bench.commands`` entry-point group (value: a ``register``
function).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from importlib.metadata import entry_points

from benchmark import __version__
from benchmark.errors import BenchError

log = logging.getLogger("vlm4rec_bench")
#: tracebacks behind one-line errors: on the console only with -v (and in a run's log file)
details = logging.getLogger("vlm4rec_bench.details")


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
    _add_verbosity(sub)
    return parser


def _add_verbosity(sub: argparse._SubParsersAction) -> None:
    """``-v``/``-q`` after the command too (``run CONFIG -v``), at every level of subcommands.
    ``SUPPRESS`` defaults, so a subcommand sets them only when they are given there."""
    for p in set(sub.choices.values()):
        flags = {s for a in p._actions for s in a.option_strings}
        if not flags & {"-v", "--verbose"}:
            p.add_argument(
                "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output (-vv for debug)"
            )
        if not flags & {"-q", "--quiet"}:
            p.add_argument(
                "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="warnings and errors only"
            )
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                _add_verbosity(action)


#: loggers whose INFO messages the console shows by default (the rest go to the run's log file)
OWN_LOGGERS: tuple[str, ...] = ("vlm4rec_bench", "benchmark", "vlm4rec", "baselines", "__main__")


class ConsoleFilter(logging.Filter):
    """Quiet by default: our own INFO messages and everyone's errors reach the console; other
    libraries' INFO lines (Lightning's tips, RecBole's banner and config dump) and Python
    warnings (deprecations, non-writable arrays) only with ``-v``. Everything still reaches the
    run's log file (``results/<experiment>/<timestamp>/run.log``), which has no such filter."""

    def __init__(self, verbose: int = 0, quiet: bool = False) -> None:
        super().__init__()
        self.verbose, self.quiet = verbose, quiet

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "vlm4rec_bench.details":  # tracebacks behind a one-line error
            return bool(self.verbose)
        own = record.name.split(".", 1)[0] in OWN_LOGGERS
        if record.levelno >= logging.ERROR:
            return True
        if self.verbose:
            return not self.quiet or record.levelno >= logging.WARNING
        if record.name == "py.warnings":
            return False
        if self.quiet:
            return own and record.levelno >= logging.WARNING
        return own or record.levelno >= logging.WARNING


def setup_logging(verbose: int = 0, quiet: bool = False) -> None:
    """Console logging (see :class:`ConsoleFilter`); Python warnings become log records, so that
    they go to the run's log file instead of the console."""
    level = logging.DEBUG if verbose > 1 else logging.INFO
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_vlm4rec_console", False):
            root.removeHandler(h)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S"))
    handler.addFilter(ConsoleFilter(verbose, quiet))
    handler._vlm4rec_console = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)


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
        details.info("details", exc_info=True)
        return 2
    except OSError as exc:  # disk full, permission denied, a file vanished: the environment, not a bug
        log.error("%s", describe_os_error(exc))
        details.info("details", exc_info=True)
        return 2


def describe_os_error(exc: OSError) -> str:
    """One line for an operating-system error: what failed, on which file, and what to do."""
    where = " ".join(str(f) for f in (exc.filename, exc.filename2) if f)
    text = exc.strerror or str(exc)
    hint = {
        errno.ENOSPC: "free some disk space and run the same command again (finished work is kept)",
        errno.EDQUOT: "free some disk space and run the same command again (finished work is kept)",
        errno.EACCES: "check the folder's permissions",
        errno.EROFS: "write somewhere writable (e.g. --results-dir)",
    }.get(exc.errno or 0)
    return f"{type(exc).__name__}: {text}" + (f": {where}" if where else "") + (f" — {hint}" if hint else "")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
