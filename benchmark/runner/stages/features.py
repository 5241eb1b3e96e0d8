"""Features stage: the configured feature sets for a split, produced once and cached.

A feature set is cached under ``<cache>/features/<name>-<key>.safetensors`` where the key hashes
the producer, its params and the split fingerprint; a dataset that shipped a feature of the same
name (Align-MacridVAE, MMRec imports, under ``split_dir/features``) uses its own file instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

from benchmark.features import ItemFeatures
from benchmark.prepare import imported_features
from benchmark.producers import FeatureContext, produce
from benchmark.runner.config import FeatureConfig
from benchmark.split import Split

log = logging.getLogger(__name__)


def build_features(
    features: list[FeatureConfig],
    split: Split,
    split_dir: Path,
    cache_dir: Path,
    raw_dir: Path | None = None,
    device: str = "cpu",
) -> dict[str, ItemFeatures]:
    """Produce (or load from ``cache_dir``) every feature set in ``features``, by name."""
    feats = imported_features(split_dir)
    ctx = FeatureContext(
        split=split, split_dir=split_dir, cache_dir=cache_dir, raw_dir=raw_dir, device=device, progress=True
    )
    for fc in features:
        if fc.name in feats:  # an imported dataset shipped it (e.g. Align-MacridVAE's CLIP features)
            log.info("features %s: using the dataset's own file, not producer %s", fc.name, fc.producer)
            continue
        feats[fc.name] = _cached_or_produced(fc, ctx)
    return feats


def _cached_or_produced(fc: FeatureConfig, ctx: FeatureContext) -> ItemFeatures:
    split = ctx.split
    key = hashlib.sha256(
        json.dumps([fc.producer, fc.params, split.fingerprint], sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    fdir = ctx.cache_dir / "features"
    fname = f"{fc.name}-{key}"
    if (fdir / f"{fname}.safetensors").exists():
        f = ItemFeatures.load(fdir, fname)
        f.name = fc.name
        log.info("features %s: cached (%s)", fc.name, fname)
        return f
    t0 = time.perf_counter()
    f = produce(fc.producer, ctx, fc.params, output_name=fc.name)
    f.provenance["wall_seconds"] = round(time.perf_counter() - t0, 3)
    f.provenance["split_fingerprint"] = split.fingerprint
    ItemFeatures(fname, f.values, f.mask, f.provenance).save(fdir)
    log.info("features %s: %d×%d, coverage %.1f%%", fc.name, f.n_items, f.dim, 100 * f.coverage)
    return f
