"""``vlm4rec-bench data prepare``: read → filter → split a release's files into DIR.

Settings come from flags or from ``--config FILE.yaml`` with the same keys (``release``,
``reviews``, ``meta``, ``kcore``, ``user_kcore``, ``item_kcore``, ``dedupe``, ``image_only``,
``protocol``, ``seed``, ``strict``, ``out``, ``protocol_params``, ``category``, ``variant``);
flags given next to ``--config`` override the file. Relative paths in the file are relative to it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import CliError
from benchmark.filtering import DEDUPE_RULES
from benchmark.prepare import PREPARE_PROTOCOLS, RELEASES, PrepareConfig, PrepareConfigError, prepare
from benchmark.split import PARTS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="read → dedupe → filter → split a release's files into a fingerprinted split",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help="YAML file with the same keys as the flags")
    p.add_argument("--release", choices=RELEASES)
    p.add_argument("--reviews", help="reviews/ratings file (for --protocol official: the benchmark directory)")
    p.add_argument("--meta", help="item metadata file (catalogue); needed for --image-only")
    p.add_argument("--kcore", type=int, help="k-core on both users and items (default: 5; paper: users 5, items 0)")
    p.add_argument("--user-kcore", type=int, help="k for users (0 disables)")
    p.add_argument("--item-kcore", type=int, help="k for items (0 disables)")
    p.add_argument(
        "--dedupe", choices=DEDUPE_RULES, help="which interaction to keep per (user, item) (default earliest)"
    )
    p.add_argument("--image-only", action="store_true", default=None, help="keep items with an image URL only")
    p.add_argument("--protocol", choices=PREPARE_PROTOCOLS, help="split protocol (default paper)")
    p.add_argument("--seed", type=int, help="random seed (default 20230219)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="protocol parameter, repeatable (e.g. valid_frac=0.1 for global-time)",
    )
    p.add_argument("--category", help="official: category name, e.g. All_Beauty")
    p.add_argument("--variant", help="official: benchmark variant, e.g. last_out")
    p.add_argument("--strict", action="store_true", default=None, help="stop at the first bad input line")
    p.add_argument("--out", help="output directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    values: dict[str, Any] = {}
    base_dir = None
    if args.config is not None:
        if not args.config.is_file():
            raise CliError(f"--config {args.config}: no such file")
        loaded = yaml.safe_load(args.config.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise CliError(f"--config {args.config}: expected a mapping of settings, got {type(loaded).__name__}")
        values.update(loaded)
        base_dir = args.config.parent
    flags = {
        k: getattr(args, k)
        for k in (
            "release",
            "reviews",
            "meta",
            "kcore",
            "user_kcore",
            "item_kcore",
            "dedupe",
            "image_only",
            "protocol",
            "seed",
            "strict",
            "out",
            "category",
            "variant",
        )
    }
    flag_paths = {k: str(Path(v).resolve()) for k, v in flags.items() if k in ("reviews", "meta", "out") and v}
    flags.update(flag_paths)  # flags are relative to the working directory, not the config file
    values.update({k: v for k, v in flags.items() if v is not None})
    if args.param:
        params = dict(values.get("protocol_params") or {})
        for item in args.param:
            key, sep, raw = item.partition("=")
            if not sep or not key:
                raise CliError(f"--param {item!r}: expected KEY=VALUE")
            params[key] = yaml.safe_load(raw)
        values["protocol_params"] = params
    try:
        config = PrepareConfig.from_mapping(values, base_dir=base_dir)
        split = prepare(config)
    except PrepareConfigError as exc:
        raise CliError(str(exc)) from exc
    except (ValueError, FileNotFoundError) as exc:  # bad input (BadInputError is a ValueError), bad params
        raise CliError(f"data prepare failed: {exc}") from exc
    s = split.summary()
    print(f"split {split.protocol} written to {config.out}")
    print(f"  users {s['n_users']}, items {s['n_items']}, interactions {s['interactions']}")
    for part in PARTS:
        ps = s["parts"][part]
        print(f"  {part:<5} {ps['interactions']:>10} interactions  {ps['users']:>8} users  {ps['items']:>8} items")
    print(f"  fingerprint {split.fingerprint}")
    return 0
