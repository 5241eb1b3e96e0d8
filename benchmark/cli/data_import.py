"""``vlm4rec-bench data import {align-macridvae,mmrec,official-2023} PATH --out DIR``.

Turns another framework's (or the 2023 release's) split into one of ours: the split is saved
with :meth:`Split.save` (its fingerprint, and the read reports in ``summary.json``) and
imported features go to ``DIR/features/<name>.safetensors``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from benchmark.errors import CliError

log = logging.getLogger(__name__)
SOURCES = ("align-macridvae", "mmrec", "official-2023")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="import a split from Align-MacridVAE, MMRec or the 2023 official benchmark",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("source", choices=SOURCES, help="format of PATH")
    p.add_argument(
        "path", type=Path, help="dataset folder (align-macridvae, mmrec) or benchmark directory (official-2023)"
    )
    p.add_argument("--out", type=Path, required=True, help="directory for the imported split")
    p.add_argument("--name", help="mmrec: dataset name ({name}.inter); default: the folder name")
    p.add_argument("--category", help="official-2023: category, e.g. All_Beauty")
    p.add_argument(
        "--variant",
        default="last_out_w_his",
        help="official-2023: last_out, last_out_w_his (default), timestamp or timestamp_w_his",
    )
    p.add_argument("--meta", type=Path, help="official-2023: a 2023 metadata file for the item catalogue")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from benchmark.data import interop
    from benchmark.data.read_report import BadInputError
    from benchmark.data.readers import read_meta

    if not args.path.exists():
        raise CliError(f"{args.path} does not exist")
    reports = []
    features = {}
    try:
        if args.source == "official-2023":
            if not args.category:
                raise CliError("official-2023 needs --category (e.g. All_Beauty)")
            catalogue = None
            if args.meta:
                catalogue, meta_report = read_meta(args.meta, "2023", strict=args.strict)
                reports.append(meta_report)
            split = interop.import_2023_official(
                args.path, args.category, args.variant, catalogue, strict=args.strict, reports=reports
            )
        elif args.source == "align-macridvae":
            split, features = interop.import_align_macridvae(args.path)
        else:
            split, features = interop.import_mmrec(args.path, args.name or args.path.name)
    except (BadInputError, FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    split.save(
        args.out,
        extra_summary={
            "import": {"source": args.source, "path": str(args.path)},
            "read_reports": [r.to_dict() for r in reports],
        },
    )
    for feats in features.values():
        feats.save(args.out / "features")
    s = split.summary()
    print(
        f"imported {args.source} split → {args.out}: {s['n_users']} users, {s['n_items']} items, "
        + ", ".join(f"{p} {v['interactions']}" for p, v in s["parts"].items())
        + (f"; features {', '.join(features)}" if features else "")
        + f"; fingerprint {split.fingerprint[:12]}"
    )
    return 0
