"""The one function that turns a :class:`DatasetConfig` into a split (+ imported features).

``vlm4rec-bench run`` (its dataset stage), ``data prepare`` and ``data import`` all call
:func:`load_dataset`, so the same config gives the same split — and the same fingerprint —
whichever front-end made it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.errors import ConfigError
from benchmark.io import read_json
from benchmark.prepare.config import DatasetConfig
from benchmark.prepare.files import catalogue_coverage, prepare_official, read_catalogue, require_path
from benchmark.split import Split

if TYPE_CHECKING:  # torch (under ItemFeatures) is imported only when a split comes with features
    from benchmark.features import ItemFeatures

log = logging.getLogger(__name__)


@dataclass
class LoadedDataset:
    """A split on disk and what came with it.

    ``split_dir``: where the split is (``out``, or the ``prepared`` folder itself);
    ``raw_dir``: where the source files are (feature producers resolve relative image paths
    against it), ``None`` when unknown; ``features``: feature sets the source shipped (saved
    under ``split_dir/features``). ``split`` is loaded from ``split_dir`` (fingerprint verified)
    when first asked for, so a front-end that only writes the split (``data prepare``) never
    holds its rows.
    """

    split_dir: Path
    raw_dir: Path | None
    features: dict[str, ItemFeatures] = field(default_factory=dict)
    loaded: Split | None = None

    @property
    def split(self) -> Split:
        if self.loaded is None:
            self.loaded = Split.load(self.split_dir)
        return self.loaded

    @property
    def summary(self) -> dict[str, Any]:
        """The split's ``summary.json`` (counts per part, fingerprint, per-stage counts)."""
        return dict(read_json(self.split_dir / "summary.json"))


def load_dataset(ds: DatasetConfig, out: str | Path, *, raw_dir: str | Path | None = None) -> LoadedDataset:
    """Build the split ``ds`` describes and save it (with any imported features) to ``out``.

    ``raw_dir``: for ``demo``, where the generated catalogue goes (default ``out/raw``). A
    ``prepared`` source is loaded (fingerprint verified) from ``ds.path``; nothing is written.
    """
    out = Path(out)
    demo_dir = Path(raw_dir) if raw_dir is not None else out / "raw"
    if ds.source == "prepared":
        split_dir = require_path("path", ds.path)
        return LoadedDataset(split_dir, None, imported_features(split_dir), Split.load(split_dir))
    split: Split | None = None
    if ds.source == "demo":
        _demo(ds, out, demo_dir)
    elif ds.official:
        split = prepare_official(ds, source_dir(ds, demo_dir), out)  # type: ignore[arg-type]
    elif ds.source == "files":
        from benchmark.prepare.engine import prepare_files_out_of_core  # DuckDB: only when a split is made

        prepare_files_out_of_core(ds, out)
    elif ds.source in ("align-macridvae", "mmrec"):
        split = _import_folder(ds, out)
    else:  # pragma: no cover - the config validator rejects it
        raise ConfigError(f"source: unknown dataset source {ds.source!r}")
    return LoadedDataset(out, source_dir(ds, demo_dir), imported_features(out), split)


def source_dir(ds: DatasetConfig, demo_dir: Path) -> Path | None:
    """Where ``ds``'s source files are: feature producers resolve relative image paths (the
    demo's) and look for ``images/`` there. ``None`` for a ``prepared`` split."""
    if ds.source == "demo":
        return demo_dir
    if ds.source == "files":
        return Path(ds.reviews) if ds.official else Path(ds.reviews).parent  # type: ignore[arg-type]
    return Path(ds.path) if ds.source != "prepared" else None  # type: ignore[arg-type]


def _demo(ds: DatasetConfig, out: Path, raw_dir: Path) -> str:
    """Generate the demo catalogue (2023 layout) under ``raw_dir``, then treat it as ``files``."""
    from benchmark.demo import generate_demo
    from benchmark.prepare.engine import prepare_files_out_of_core

    # relative image URLs keep the files (and so the split's recorded checksums and its
    # fingerprint) identical wherever the cache lives
    try:
        paths = generate_demo(raw_dir, **({"image_urls": "relative"} | dict(ds.demo)))
    except (TypeError, ValueError) as exc:  # a bad `demo` parameter is a config error, not a crash
        raise ConfigError(f"demo: {exc}") from None
    files = dataclasses.replace(ds, release="2023", reviews=str(paths.reviews), meta=str(paths.meta))
    return prepare_files_out_of_core(files, out)


def _import_folder(ds: DatasetConfig, out: Path) -> Split:
    """Another framework's split and features (Align-MacridVAE, MMRec's processed folder),
    saved to ``out`` (features under ``out/features``).

    ``ds.meta`` (the release's metadata) is joined onto the imported items by original id —
    only the lines of those items are read — so titles, descriptions and image URLs are there
    for text and image features; ``summary.json``'s ``catalogue`` counts the items it matched
    and did not (a join that matches nothing is logged as an error-level warning: the ids of
    the metadata and of the folder do not agree)."""
    from benchmark.data import interop

    folder = require_path("path", ds.path)
    items = interop.align_item_ids(folder) if ds.source == "align-macridvae" else None
    catalogue, reports, _ = read_catalogue(ds, items=set(items) if items is not None else None)
    if ds.source == "align-macridvae":
        split, feats = interop.import_align_macridvae(folder, catalogue)
    else:
        split, feats = interop.import_mmrec(folder, ds.category or ds.name, catalogue)
    summary: dict[str, Any] = {
        "import": {"source": ds.source, "path": str(folder)},
        "read_reports": reports,
        "config": ds.to_dict(),
        "catalogue": catalogue_coverage(split.items) if catalogue is not None else {"meta": None},
    }
    if "image_path" in split.items.columns:
        summary["catalogue"]["with_image_file"] = int(split.items["image_path"].notna().sum())
    if catalogue is not None and summary["catalogue"]["with_meta"] == 0:
        log.error(
            "none of the %d imported items has a line in %s: the metadata's ids (e.g. %s) and the import's (e.g. %s) "
            "do not match, so every item has empty text and no image URL",
            split.n_items,
            ds.meta,
            list(catalogue["item"].head(3)),
            list(split.items["orig_item_id"].head(3)),
        )
    split.save(out, extra_summary=summary)
    for f in feats.values():
        f.save(out / "features")
    return split


def imported_features(split_dir: Path) -> dict[str, ItemFeatures]:
    """Feature sets saved beside a split by an import (``split_dir/features/<name>.json``)."""
    d = Path(split_dir) / "features"
    if not d.is_dir() or not any(d.glob("*.json")):
        return {}
    from benchmark.features import ItemFeatures

    return {meta.stem: ItemFeatures.load(d, meta.stem) for meta in sorted(d.glob("*.json"))}
