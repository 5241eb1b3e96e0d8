"""``vlm4rec-bench data prepare``: read → filter → split a release's files into DIR.

Settings come from flags or from ``--config FILE.yaml`` with the keys of the experiment
config's ``dataset`` section (``release``, ``reviews``, ``meta``, ``kcore``, ``user_kcore``,
``item_kcore``, ``dedupe``, ``image_only``, ``protocol``, ``split_seed`` (or ``seed``),
``protocol_params``, ``strict``, ``category``, ``variant``, …) plus ``out``; flags given next to
``--config`` override the file. Relative paths in the file are relative to it. Unset seed and
k-core take the protocol's defaults (paper: seed 20230219, users 5 / items 0; others: seed 0,
5 / 5) — the same as in a ``run`` config, so both give the same split fingerprint.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmark.configuration import load_yaml
from benchmark.errors import CliError, ConfigError
from benchmark.prepare import DatasetConfig, add_flags, dataset_from_mapping, flag_values, load_dataset
from benchmark.split import PARTS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="read → dedupe → filter → split a release's files into a fingerprinted split",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, help="YAML file with the keys of a run config's `dataset` section")
    add_flags(p)  # one flag per DatasetConfig key: --release, --reviews, --kcore, --seed, --param KEY=VALUE, …
    p.add_argument("--out", help="output directory")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    values, base_dir = _file_values(args.config)
    values.update(flag_values(args))
    out = values.pop("out", None)
    if args.out:
        out = str(Path(args.out).resolve())
    elif out is not None and base_dir is not None and not Path(str(out)).is_absolute():
        out = str(base_dir / str(out))
    if not out:
        raise CliError("data prepare: setting 'out' (--out) is required")
    values.setdefault("source", "files")
    try:
        ds = dataset_from_mapping(values, base_dir)
        if ds.source != "files":
            raise ConfigError(f"source: data prepare reads release files (source 'files'); got {ds.source!r}")
        summary = load_dataset(ds, out).summary  # the split's rows are never loaded here
    except ConfigError as exc:
        raise CliError(f"data prepare: {exc} (a flag is the key with dashes: user_kcore → --user-kcore)") from exc
    except (ValueError, FileNotFoundError) as exc:  # bad input (BadInputError is a ValueError), bad params
        raise CliError(f"data prepare failed: {exc}") from exc
    _print_split(summary, ds, out)
    return 0


def _file_values(config: Path | None) -> tuple[dict[str, Any], Path | None]:
    """The settings of a ``--config`` file (and its folder, for relative paths)."""
    if config is None:
        return {}, None
    if not config.is_file():
        raise CliError(f"--config {config}: no such file")
    try:
        loaded = load_yaml(config)
    except ConfigError as exc:
        raise CliError(f"--config {exc}") from None
    return loaded, config.parent


def _print_split(summary: dict[str, Any], ds: DatasetConfig, out: str) -> None:
    s = summary["split"]
    settings = ds.split_settings()
    print(f"split {summary['protocol']} written to {out}")
    if not ds.official:
        print(f"  seed {settings.seed}, k-core users {settings.user_kcore} items {settings.item_kcore}")
    print(f"  users {s['n_users']}, items {s['n_items']}, interactions {s['interactions']}")
    for part in PARTS:
        ps = s["parts"][part]
        print(f"  {part:<5} {ps['interactions']:>10} interactions  {ps['users']:>8} users  {ps['items']:>8} items")
    print(f"  fingerprint {summary['fingerprint']}")
