"""``vlm4rec-bench configs``: list (or print) the shipped experiment configs."""

from __future__ import annotations

import argparse

from benchmark.errors import CliError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("configs", help="list the shipped experiment configs, or print one")
    p.add_argument("name", nargs="?", help="print this config's YAML")
    p.set_defaults(func=_configs)


def _configs(args: argparse.Namespace) -> int:
    import yaml

    from benchmark.runner.config import shipped_configs

    shipped = shipped_configs()
    if args.name:
        if args.name not in shipped:
            raise CliError(f"no shipped config {args.name!r}; shipped: {', '.join(sorted(shipped))}")
        print(shipped[args.name].read_text(encoding="utf-8"), end="")
        return 0
    for name in sorted(shipped):
        data = yaml.safe_load(shipped[name].read_text(encoding="utf-8")) or {}
        desc = str(data.get("description") or "").strip()
        print(f"{name:24s} {desc.split('. ')[0].rstrip('.') + '.' if desc else ''}")
    return 0
