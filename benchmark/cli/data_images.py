"""``vlm4rec-bench data images``: fetch and verify the product images of a catalogue or split."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "images",
        help="fetch, verify and index the images of a split or catalogue (resumable)",
        description="Fetch every item's image (http(s)://, file:// or local path) into --out, verify each "
        "decodes (with a decompression-bomb limit), and write index.parquet (item -> file, sha256) "
        "and fetch_report.json (every failure with its reason). Re-running skips images already there.",
    )
    p.add_argument(
        "source",
        metavar="SPLIT_DIR_OR_CATALOGUE",
        help="a prepared split folder (items.parquet) or a catalogue .parquet/.csv with item,image_url",
    )
    p.add_argument("--out", required=True, help="folder for the images, index.parquet and fetch_report.json")
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--retries", type=int, default=3)
    p.add_argument("--timeout", type=float, default=20.0)
    p.add_argument("--max-pixels", type=int, default=None, help="reject images with more pixels (bomb limit)")
    p.add_argument(
        "--image-root",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder local image paths may point into, besides the split/catalogue's own folder "
        "(repeatable); a local path outside them is refused and counted as outside_root",
    )
    p.add_argument("--strict", action="store_true", help="exit with status 1 when any image failed")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from benchmark.data.images import DEFAULT_MAX_PIXELS, fetch_images, read_catalogue_table

    src = Path(args.source)
    if not src.exists():
        raise CliError(f"{src} does not exist")
    try:
        table = read_catalogue_table(src)
        report = fetch_images(
            table,
            args.out,
            workers=args.workers,
            retries=args.retries,
            timeout=args.timeout,
            max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS,
            base_dir=src if src.is_dir() else src.parent,
            roots=[Path(r) for r in args.image_root],
            progress=not args.quiet,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    print(report.summary())
    print(f"index: {report.index_path}")
    return 1 if (args.strict and report.failures) else 0
