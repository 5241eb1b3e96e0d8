"""``vlm4rec-bench data import {align-macridvae,mmrec,official-2023} PATH --out DIR``.

Turns another framework's (or the 2023 release's) split into one of ours: the split is saved
with :meth:`Split.save` (its fingerprint, and the read reports in ``summary.json``) and
imported features go to ``DIR/features/<name>.safetensors``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from benchmark.data.readers import RELEASES
from benchmark.errors import CliError, ConfigError
from benchmark.prepare import IMPORT_SOURCES, DatasetConfig, load_dataset

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="import a split from Align-MacridVAE, MMRec or the 2023 official benchmark",
        description=__doc__.split("\n\n")[0],
    )
    p.add_argument("source", choices=IMPORT_SOURCES, help="format of PATH")
    p.add_argument(
        "path", type=Path, help="dataset folder (align-macridvae, mmrec) or benchmark directory (official-2023)"
    )
    p.add_argument("--out", type=Path, required=True, help="directory for the imported split")
    p.add_argument("--name", help="mmrec: dataset name ({name}.inter); default: the folder name")
    p.add_argument("--category", help="official-2023: category, e.g. All_Beauty")
    p.add_argument("--variant", help="official-2023: last_out, last_out_w_his (default), timestamp or timestamp_w_his")
    p.add_argument(
        "--meta",
        type=Path,
        help="the release's metadata file, joined onto the imported items (titles, descriptions, image URLs); "
        "release 2018 for align-macridvae, 2023 for official-2023, --release for mmrec",
    )
    p.add_argument("--release", choices=RELEASES, help="release of --meta (default: the source's own)")
    p.add_argument("--strict", action="store_true", help="stop at the first bad input line")
    p.set_defaults(func=run)


def dataset_config(args: argparse.Namespace) -> DatasetConfig:
    """The dataset config these arguments describe (what a ``run`` config's ``dataset`` would say)."""
    from benchmark.configuration import from_dict

    if not args.path.exists():
        raise CliError(f"{args.path} does not exist")
    values = {
        "name": args.name or args.path.name,
        "source": args.source,
        "path": str(args.path),
        "category": args.name if args.source == "mmrec" else args.category,
        "variant": args.variant,
        "meta": str(args.meta) if args.meta else None,
        "release": args.release,
        "strict": args.strict,
    }
    try:
        return from_dict(DatasetConfig, {k: v for k, v in values.items() if v is not None})
    except ConfigError as exc:
        raise CliError(f"data import: {exc} (a flag is the key with dashes, path is PATH)") from exc


def run(args: argparse.Namespace) -> int:
    from benchmark.data.read_report import BadInputError

    ds = dataset_config(args)
    try:
        loaded = load_dataset(ds, args.out)
    except (BadInputError, FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    split, features = loaded.split, loaded.features
    s = split.summary()
    meta = ""
    if args.meta:
        n_meta = int(split.items["has_meta"].sum())
        meta = f"; metadata for {n_meta} of {split.n_items} items ({split.n_items - n_meta} unmatched)"
    print(
        f"imported {args.source} split → {args.out}: {s['n_users']} users, {s['n_items']} items, "
        + ", ".join(f"{p} {v['interactions']}" for p, v in s["parts"].items())
        + (f"; features {', '.join(features)}" if features else "")
        + meta
        + f"; fingerprint {split.fingerprint[:12]}"
    )
    return 0
