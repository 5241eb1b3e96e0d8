"""``vlm4rec-bench data …``: download, read, prepare and convert datasets.

Each ``data`` subcommand is a module ``benchmark/cli/data_<name>.py`` with ``register(sub)``.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil

import benchmark.cli as _cli


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="download, prepare, import and export datasets")
    sub = parser.add_subparsers(dest="data_command", metavar="DATA_COMMAND")
    for mod in sorted(m.name for m in pkgutil.iter_modules(_cli.__path__) if m.name.startswith("data_")):
        module = importlib.import_module(f"benchmark.cli.{mod}")
        module.register(sub)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
