"""Features stage: the configured feature sets for a split, produced once and cached.

A feature set is cached under ``<cache>/features/<name>-<key>.{safetensors,json}`` where the key
hashes the producer, its params, the split fingerprint and the catalogue checksum (the item
table: titles, descriptions, image references — the fingerprint does not cover it, and the same
split with and without ``dataset.meta`` joined has one fingerprint and different texts); a dataset
that shipped a feature of the same name (Align-MacridVAE, MMRec imports, under
``split_dir/features``) uses its own file instead.

An entry is written by :meth:`ItemFeatures.save` (the ``.json`` last) and read back by
:func:`benchmark.features.load_cached`, so a run killed mid-write leaves a miss, not a blocker.
Two runs producing the same entry at once take turns (a lock per entry): the second reads what
the first wrote. ``force`` recomputes every entry (a producer's own caches — descriptions —
keep their finished work and retry what failed). A producer whose result is provisional (its
provenance says ``"final": false``, e.g. descriptions that failed and fell back to titles) is
cached for this run only: the next run produces it again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from pathlib import Path

from benchmark.errors import ConfigError
from benchmark.features import ItemFeatures, load_cached
from benchmark.io import file_lock
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
    *,
    force: bool = False,
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
        feats[fc.name] = cached_or_produced(fc, ctx, force=force)
    return feats


def cache_name(fc: FeatureConfig, split: Split) -> str:
    """``<name>-<key>``: the entry of ``fc`` for ``split`` in ``<cache>/features``."""
    catalogue = split.catalogue_sha256 or split.compute_catalogue_checksum()
    key = hashlib.sha256(
        json.dumps([fc.producer, fc.params, split.fingerprint, catalogue], sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    return f"{fc.name}-{key}"


def cached_or_produced(fc: FeatureConfig, ctx: FeatureContext, *, force: bool = False) -> ItemFeatures:
    """The cache entry of ``fc`` when it is complete and final (and not ``force``), else a new one."""
    split = ctx.split
    fdir = ctx.cache_dir / "features"
    fname = cache_name(fc, split)
    with file_lock(fdir / f".{fname}.lock"):  # a second run waits for the first, then reads its entry
        cached = None if force else load_cached(fdir, fname)
        if cached is not None and cached.provenance.get("final", True):
            cached.name = fc.name
            log.info("features %s: cached (%s)", fc.name, fname)
            return cached
        if cached is not None:
            log.info("features %s: the cached entry was provisional (%s); producing it again", fc.name, fname)
        from benchmark.runner.costs import feature_cost, measure

        with measure(ctx.device, energy=bool(ctx.extra.get("energy", True))) as m:
            f = produce(fc.producer, ctx, fc.params, output_name=fc.name)
        f.provenance["wall_seconds"] = m.record["wall_seconds"]
        # the cost goes into the cache entry, so a later run that loads it counts what it cost to make
        f.provenance["cost"] = feature_cost(f.provenance, m.record)
        f.provenance["split_fingerprint"] = split.fingerprint
        f.provenance["catalogue_sha256"] = split.catalogue_sha256
        f.provenance["cache_entry"] = fname
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
