"""``vlm4rec-bench data export {mmrec,recbole} SPLIT_DIR --out DIR``.

Writes a prepared split (verified against its fingerprint) in MMRec's processed format or
as RecBole atomic files for RecBole's ``benchmark_filename`` option.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from benchmark.errors import CliError

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export a prepared split to MMRec or RecBole files", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("format", choices=("mmrec", "recbole"))
    p.add_argument("split_dir", type=Path, help="a prepared split (with split.json)")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--name", help="dataset name in the written files (default: the split folder's name)")
    p.add_argument(
        "--image-feature",
        metavar="NAME",
        help="mmrec: feature (in --features-dir) written as image_feat.npy, e.g. clip_image",
    )
    p.add_argument(
        "--text-feature", metavar="NAME", help="mmrec: feature (in --features-dir) written as text_feat.npy, e.g. text"
    )
    p.add_argument(
        "--features-dir",
        type=Path,
        help="where the features are (default: SPLIT_DIR/features, then the dataset cache's features, where "
        "`run` keeps them as NAME-<hash>: NAME finds them)",
    )
    p.set_defaults(func=run)


def feature_dirs(args: argparse.Namespace) -> list[Path]:
    """Where ``--image-feature``/``--text-feature`` are looked for: ``--features-dir``, else the
    split's own ``features/`` and the run cache beside it (``<dataset>/cache/features``)."""
    if args.features_dir:
        return [args.features_dir]
    return [args.split_dir / "features", args.split_dir.resolve().parent / "cache" / "features"]


def run(args: argparse.Namespace) -> int:
    from benchmark.data.interop import export_mmrec, export_recbole
    from benchmark.features import ItemFeatures, find_features
    from benchmark.split import Split, SplitIntegrityError

    try:
        split = Split.load(args.split_dir)
    except (FileNotFoundError, SplitIntegrityError) as exc:
        raise CliError(str(exc)) from exc
    name = args.name or args.split_dir.resolve().name
    if args.format == "recbole":
        if args.image_feature or args.text_feature:
            raise CliError("--image-feature/--text-feature are for the mmrec export")
        paths = export_recbole(split, args.out, name)
    else:
        features = {}
        for role, fname in (("image", args.image_feature), ("text", args.text_feature)):
            if fname:
                try:
                    fdir, entry = find_features(fname, feature_dirs(args), split_fingerprint=split.fingerprint)
                except FileNotFoundError as exc:
                    raise CliError(str(exc)) from None
                features[role] = ItemFeatures.load(fdir, entry)
        try:
            paths = export_mmrec(split, args.out, name, features)
        except ValueError as exc:
            raise CliError(str(exc)) from exc
    print(f"exported {args.format} ({split.fingerprint[:12]}) → " + ", ".join(str(p) for p in paths.values()))
    return 0
