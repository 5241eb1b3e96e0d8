"""``vlm4rec-bench data download``: fetch an Amazon release's files from the official URLs."""

from __future__ import annotations

import argparse

from benchmark.errors import CliError


def register(sub: argparse._SubParsersAction) -> None:
    from benchmark.data.download import KINDS, SOURCES
    from benchmark.data.readers import RELEASES

    p = sub.add_parser(
        "download",
        help="download Amazon review files (2014, 2018, 2023) resumably, with checksums",
        description="Download one category of an Amazon review release from the official URLs. "
        "Resumes partial downloads, records size and sha256 in downloads.json, and verifies the "
        "official checksums where known (2023 --source hf).",
    )
    p.add_argument("--release", required=True, choices=RELEASES)
    p.add_argument("--category", help="category as the release spells it, e.g. All_Beauty, Clothing_Shoes_and_Jewelry")
    p.add_argument(
        "--kind",
        default="all",
        choices=("all", *KINDS),
        help="which files (default all: reviews, meta, ratings; splits only for 2023 --source hf)",
    )
    p.add_argument("--five-core", action="store_true", help="the 5-core variant where the release has one")
    p.add_argument(
        "--source",
        choices=sorted({s for (_, s) in SOURCES}),
        help="host (default: 2014 snap, 2018/2023 ucsd; 2023 also mcauleylab and hf)",
    )
    p.add_argument("--base-url", help="replace the source's base URL (a mirror)")
    p.add_argument("--out", help="output folder (default datasets/amazon-<release>-<Cat>/raw)")
    p.add_argument("--retries", type=int, default=5)
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per connection attempt")
    p.add_argument("--dry-run", action="store_true", help="print the URLs and destinations only")
    p.add_argument("--list", action="store_true", help="print the table of official URL patterns and exit")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from benchmark.data.download import DownloadError, describe_table, download_file, plan_downloads

    if args.list:
        print(describe_table())
        return 0
    if not args.category:
        raise CliError("--category is required (e.g. --category All_Beauty)")
    try:
        files = plan_downloads(
            args.release,
            args.category,
            kind=args.kind,
            five_core=args.five_core,
            source=args.source,
            base_url=args.base_url,
            out_dir=args.out,
        )
        for f in files:
            if args.dry_run:
                check = f"  sha256 {f.expected_sha256}" if f.expected_sha256 else ""
                print(f"{f.url} -> {f.dest}{check}")
                continue
            rec = download_file(
                f.url,
                f.dest,
                expected_sha256=f.expected_sha256,
                expected_size=f.expected_size,
                retries=args.retries,
                timeout=args.timeout,
                progress=not args.quiet,
                extra={"release": args.release, "category": args.category, "kind": f.kind},
            )
            state = "kept" if rec.skipped else "downloaded"
            verified = " (official checksum verified)" if rec.verified else ""
            print(f"{state} {f.dest}  {rec.size} bytes  sha256 {rec.sha256}{verified}")
    except DownloadError as exc:
        raise CliError(str(exc)) from exc
    return 0
