"""Feature producers registered by name: how the runner gets item features without
importing the packages that make them.

A producer turns a split (and the files it came from) into one or more
:class:`~benchmark.features.ItemFeatures` aligned to the split's item ids — VLM4Rec's
"describe images, then embed the text", CLIP image/text towers, the demo's ``pixels``
feature, imported ``.npy`` files. Packages register producers with
``@register_feature_producer("name")`` in a module named by the ``vlm4rec_bench.features``
entry-point group (the same modules that register models are fine).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.features import ItemFeatures
from benchmark.registry import Registry
from benchmark.split import Split

log = logging.getLogger(__name__)


@dataclass
class FeatureContext:
    """What a producer may read: the split, where it lives, where raw files are, a cache."""

    split: Split
    split_dir: Path
    cache_dir: Path
    raw_dir: Path | None = None
    device: str = "cpu"
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def image_roots(self) -> list[Path]:
        """Where a catalogue's local image paths may point: the dataset's own folders (raw and split)."""
        return [Path(d) for d in (self.raw_dir, self.split_dir) if d is not None]


Producer = Callable[..., ItemFeatures]

#: feature producers by name (``fn(ctx, **params) -> ItemFeatures``), same mechanism as models
PRODUCERS: Registry[Producer] = Registry("feature producer", "vlm4rec_bench.features", context_params=("ctx",))
ENTRY_POINT_GROUP = PRODUCERS.group

register_feature_producer = PRODUCERS.register


def available_producers() -> list[str]:
    return PRODUCERS.names()


def producer_parameters(name: str) -> list[str]:
    return list(PRODUCERS.parameters(name))


def get_producer(name: str) -> Producer:
    return PRODUCERS.get(name)


def produce(name: str, ctx: FeatureContext, params: Mapping[str, Any], output_name: str | None = None) -> ItemFeatures:
    """Run producer ``name`` and check its result is aligned to the split; rename it to ``output_name``."""
    feats = PRODUCERS.create(name, ctx, **params)
    if not isinstance(feats, ItemFeatures):
        raise TypeError(f"feature producer {name!r} returned {type(feats).__name__}, expected ItemFeatures")
    feats.check_aligned(ctx.split.n_items)
    if output_name:
        feats.name = output_name
    feats.provenance.setdefault("producer", name)
    return feats
