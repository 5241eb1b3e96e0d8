"""Features stage: the configured feature sets for a split, produced once and cached.

A feature set is cached under ``<cache>/features/<name>-<key>.safetensors`` where the key hashes
the producer, its params, the split fingerprint and the item table (:func:`catalogue_hash`); a
dataset that shipped a feature of the same name (Align-MacridVAE, MMRec imports, under
``split_dir/features``) uses its own file instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError
from benchmark.features import ItemFeatures
from benchmark.prepare import imported_features
from benchmark.producers import FeatureContext, produce
from benchmark.registry import MODELS
from benchmark.runner.config import FEATURE_PARAMS, FeatureConfig, ModelConfig
from benchmark.split import Split

log = logging.getLogger(__name__)


def build_features(
    features: list[FeatureConfig],
    split: Split,
    split_dir: Path,
    cache_dir: Path,
    raw_dir: Path | None = None,
    device: str = "cpu",
    energy: bool = True,
) -> dict[str, ItemFeatures]:
    """Produce (or load from ``cache_dir``) every feature set in ``features``, by name; each one
    made here records its cost (:mod:`benchmark.runner.costs`; ``energy``: measure kWh too)."""
    feats = imported_features(split_dir)
    ctx = FeatureContext(
        split=split,
        split_dir=split_dir,
        cache_dir=cache_dir,
        raw_dir=raw_dir,
        device=device,
        progress=True,
        extra={"energy": energy},
    )
    for fc in features:
        if fc.name in feats:  # an imported dataset shipped it (e.g. Align-MacridVAE's CLIP features)
            log.info("features %s: using the dataset's own file, not producer %s", fc.name, fc.producer)
            continue
        feats[fc.name] = _cached_or_produced(fc, ctx)
    return feats


def catalogue_hash(split: Split) -> str:
    """sha256 of the split's item table (titles, descriptions, image references…): features are
    made from it, and the split's fingerprint does not cover it (the same split with and without
    ``dataset.meta`` joined has one fingerprint and different texts)."""
    items = split.items.map(_canonical)  # a list reads back from parquet as an array: same text for both
    digest = hashlib.sha256(",".join(items.columns).encode())
    digest.update(pd.util.hash_pandas_object(items, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _canonical(value: object) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return json.dumps([_canonical(v) for v in value])
    return "<NA>" if value is None or (isinstance(value, float) and value != value) else str(value)


def _cached_or_produced(fc: FeatureConfig, ctx: FeatureContext) -> ItemFeatures:
    split = ctx.split
    key = hashlib.sha256(
        json.dumps(
            [fc.producer, fc.params, split.fingerprint, catalogue_hash(split)], sort_keys=True, default=str
        ).encode()
    ).hexdigest()[:16]
    fdir = ctx.cache_dir / "features"
    fname = f"{fc.name}-{key}"
    if (fdir / f"{fname}.safetensors").exists():
        f = ItemFeatures.load(fdir, fname)
        f.name = fc.name
        log.info("features %s: cached (%s)", fc.name, fname)
        return f
    from benchmark.runner.costs import feature_cost, measure

    with measure(ctx.device, energy=bool(ctx.extra.get("energy", True))) as m:
        f = produce(fc.producer, ctx, fc.params, output_name=fc.name)
    f.provenance["wall_seconds"] = m.record["wall_seconds"]
    # the cost goes into the cache entry, so a later run that loads it counts what it cost to make
    f.provenance["cost"] = feature_cost(f.provenance, m.record)
    f.provenance["split_fingerprint"] = split.fingerprint
    ItemFeatures(fname, f.values, f.mask, f.provenance).save(fdir)
    log.info("features %s: %d×%d, coverage %.1f%%", fc.name, f.n_items, f.dim, 100 * f.coverage)
    return f


class FeatureCoverageError(ConfigError):
    """A model would run on a feature that (almost) no item has: it would score every item
    ``-inf`` and get 0 on every metric, silently."""


def model_features(mc: ModelConfig) -> list[str]:
    """The feature names a model entry reads: its params (``feature``, ``text_feature``, …,
    ``a+b`` naming several), or the registered model's defaults for those params."""
    names: list[str] = []
    params = MODELS.parameters(mc.model) if mc.model in MODELS else {}
    for key in FEATURE_PARAMS:
        value = mc.params.get(key, params[key].default if key in params else None)
        if isinstance(value, str):
            names += [n for n in value.split("+") if n not in names]
    return names


def check_feature_coverage(models: list[ModelConfig], feats: Mapping[str, ItemFeatures], floor: float = 0.0) -> None:
    """Refuse to run a model on a feature whose coverage (share of catalogue items that have
    it) is zero or below ``floor``; the error names the feature, the model and the coverage.

    The typical cause: an import without metadata (``dataset.meta``) gives text features of
    empty titles, so "BERT text-only" would score nothing and report zeros.
    """
    for mc in models:
        for name in model_features(mc):
            if name not in feats:
                continue  # the model's own check names a missing feature when it is fitted
            f = feats[name]
            cov = f.coverage
            if cov <= 0 or cov < floor:
                how = "no item has it" if cov <= 0 else f"below the floor evaluation.min_feature_coverage={floor}"
                raise FeatureCoverageError(
                    f"model {mc.name!r}: feature {name!r} covers {100 * cov:.2f}% of the {f.n_items} items "
                    f"({int(f.mask.sum())} items; {how}); its scores would all be -inf. "
                    f"Check the feature's source (an import without `dataset.meta` has no titles) "
                    f"or lower evaluation.min_feature_coverage"
                )
