"""``vlm4rec-bench data demo``: write the synthetic offline demo catalogue (Amazon 2023 layout)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="generate the synthetic offline demo catalogue (reviews, meta, PNG images, reference captions)",
        description="Write the built-in synthetic demo catalogue in the Amazon 2023 file layout. "
        "Deterministic by --seed; a complete folder with the same parameters is reused. "
        "Synthetic data: results on it say nothing about real data (datasets/demo.md).",
    )
    p.add_argument("--out", default="datasets/demo/raw", help="output folder (default datasets/demo/raw)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--items", type=int, default=800, help="number of items (default 800)")
    p.add_argument("--users", type=int, default=600, help="number of users (default 600)")
    p.add_argument("--image-size", type=int, default=64, help="image side in pixels (default 64)")
    p.add_argument(
        "--relative-image-urls",
        action="store_true",
        help="write image URLs relative to the folder instead of absolute file:// URIs",
    )
    p.add_argument("--force", action="store_true", help="regenerate even when a matching demo is there")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from benchmark.demo import generate_demo
    from benchmark.errors import CliError
    from benchmark.io import read_json

    try:
        paths = generate_demo(
            args.out,
            seed=args.seed,
            n_items=args.items,
            n_users=args.users,
            image_size=args.image_size,
            image_urls="relative" if args.relative_image_urls else "file",
            force=args.force,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc
    counts = read_json(paths.manifest)["counts"]
    state = "reused" if paths.reused else "wrote"
    print(
        f"{state} demo catalogue in {paths.root}: {counts['items']} items, {counts['users']} users, "
        f"{counts['interactions']} interactions"
    )
    print(
        f"reviews {paths.reviews}\nmeta    {paths.meta}\ncaptions {paths.captions} (generator output, not model output)"
    )
    return 0
