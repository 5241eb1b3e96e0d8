"""Baselines' subcommands for ``vlm4rec-bench`` (``vlm4rec_bench.commands`` entry point).

``vlm4rec-bench features SPLIT_DIR --kind KIND --out DIR`` computes item features aligned to a
prepared split and saves them as ``DIR/<name>.safetensors`` + ``DIR/<name>.json`` (provenance).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from benchmark.features import ItemFeatures
    from benchmark.split import Split

log = logging.getLogger(__name__)

KINDS = ("clip-image", "clip-text", "pixels", "import")
DEFAULT_NAMES = {"clip-image": "clip_image", "clip-text": "clip_text", "pixels": "pixels", "import": "imported"}


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the baselines' subcommands (feature extraction)."""
    p = subparsers.add_parser(
        "features",
        help="compute or import item features aligned to a prepared split",
        description="Compute CLIP image/text or pixel features for a split's items, or import a published "
        "feature file (.npy) aligned through original item ids. Items without an image/text are "
        "kept with mask=False and counted.",
    )
    p.add_argument("split_dir", type=Path, help="a prepared split directory (split.json, items.parquet, …)")
    p.add_argument("--kind", required=True, choices=KINDS)
    p.add_argument("--out", required=True, type=Path, help="output directory for <name>.safetensors/.json")
    p.add_argument("--name", help="feature name (default: clip_image, clip_text, pixels or imported)")
    g = p.add_argument_group("images (clip-image, pixels)")
    g.add_argument(
        "--images",
        type=Path,
        help="directory with fetched images (an index.* file mapping url->path, "
        "or files named <item id>.jpg|png); local paths and file:// URLs must lie inside it or the split "
        "directory (others are refused and counted as outside_root)",
    )
    g = p.add_argument_group("CLIP (clip-image, clip-text)")
    g.add_argument(
        "--clip-model",
        "--model",
        dest="clip_model",
        default="ViT-L-14",
        help="open_clip architecture (default ViT-L-14)",
    )
    g.add_argument(
        "--pretrained",
        default="openai",
        help="open_clip pretrained tag or local weights file; 'none' for random init (default openai)",
    )
    g.add_argument(
        "--text-fields", default="title", help="comma-separated item fields for clip-text (e.g. title,description)"
    )
    g.add_argument("--raw", action="store_true", help="keep raw CLIP projections instead of L2-normalising them")
    g.add_argument("--batch-size", type=int, default=64)
    g.add_argument("--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu")
    g.add_argument("--devices", default="1", help="Lightning devices: a count, 'auto', or a comma list of ids")
    g.add_argument("--strategy", default="auto", help="Lightning strategy, e.g. ddp for several GPUs")
    # the allowed values are checked by ClipConfig (baselines.features.clip.PRECISIONS), not spelled again here
    g.add_argument("--precision", default="fp32", help="open_clip model precision (default fp32)")
    g.add_argument("--num-workers", type=int, default=0)
    g.add_argument("--cache-dir", type=Path, help="reuse/keep results keyed by provenance here")
    g = p.add_argument_group("pixels")
    g.add_argument("--bins", type=int, default=8, help="colour histogram levels per channel (bins**3 values)")
    g.add_argument("--thumb", type=int, default=8, help="thumbnail side (thumb*thumb*3 values)")
    g = p.add_argument_group("import")
    g.add_argument("--npy", type=Path, help="feature matrix (.npy, rows = items)")
    g.add_argument("--ids", type=Path, help="original item id of each row (one per line, or CSV with an id column)")
    g.add_argument("--id-column", help="column of --ids holding the ids")
    g.add_argument("--mmrec-map", type=Path, help="MMRec i_id_mapping.csv (rows of --npy are its itemID)")
    p.set_defaults(func=run_features)


def _devices(value: str) -> int | str | list[int]:
    if value == "auto":
        return value
    if "," in value:
        return [int(v) for v in value.split(",") if v]
    return int(value)


def _clip_features(args: argparse.Namespace, split: Split, name: str) -> ItemFeatures:
    """``--kind clip-image|clip-text``: the flags are :class:`~baselines.features.clip.ClipConfig`'s fields."""
    from baselines.features.clip import ClipConfig, clip_features, load_clip
    from benchmark.errors import CliError

    pretrained = None if str(args.pretrained).lower() in ("none", "") else args.pretrained
    cfg = ClipConfig(
        kind=args.kind.split("-")[1],
        clip_model=args.clip_model,
        pretrained=pretrained,
        precision=args.precision,
        normalize=not args.raw,
        text_fields=tuple(f.strip() for f in args.text_fields.split(",") if f.strip()),
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        accelerator=args.accelerator,
        devices=_devices(args.devices),
        strategy=args.strategy,
    )
    cfg.validate()
    try:
        model = load_clip(cfg.clip_model, pretrained, cfg.precision)
    except Exception as exc:  # open_clip raises several types for an unknown model or absent weights
        raise CliError(
            f"could not build CLIP model {cfg.clip_model!r} (pretrained {args.pretrained!r}): "
            f"{type(exc).__name__}: {exc}"
        ) from None
    return clip_features(
        split, cfg, images=args.images, cache_dir=args.cache_dir, name=name, model=model, roots=[args.split_dir]
    )


def run_features(args: argparse.Namespace) -> int:
    """``vlm4rec-bench features``: compute, save and summarise one feature set."""
    from benchmark.errors import CliError
    from benchmark.split import Split

    try:
        split = Split.load(args.split_dir)
    except FileNotFoundError as exc:
        raise CliError(str(exc)) from None
    name = args.name or DEFAULT_NAMES[args.kind]
    if args.kind in ("clip-image", "clip-text"):
        feats = _clip_features(args, split, name)
    elif args.kind == "pixels":
        from baselines.features.pixels import pixel_features

        feats = pixel_features(split, args.images, bins=args.bins, thumb=args.thumb, name=name, roots=[args.split_dir])
    else:
        from baselines.features.imported import import_mmrec, import_npy

        if args.npy is None or (args.ids is None) == (args.mmrec_map is None):
            raise CliError("--kind import needs --npy and exactly one of --ids or --mmrec-map")
        for path in (args.npy, args.ids, args.mmrec_map):
            if path is not None and not path.exists():
                raise CliError(f"no such file: {path}")
        try:
            feats = (
                import_mmrec(split, args.npy, args.mmrec_map, name)
                if args.mmrec_map
                else import_npy(split, args.npy, args.ids, name, args.id_column)
            )
        except ValueError as exc:
            raise CliError(str(exc)) from None
    path = feats.save(args.out)
    missing = feats.provenance.get("missing") or feats.provenance.get("counts") or {}
    print(
        f"{name}: {feats.n_items} items x {feats.dim} dims, {int(feats.mask.sum())} with a feature, "
        f"{feats.n_items - int(feats.mask.sum())} without"
        + (f" ({', '.join(f'{k}: {v}' for k, v in sorted(missing.items()))})" if missing else "")
    )
    print(f"wrote {path}")
    return 0
