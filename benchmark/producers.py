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

import inspect
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from benchmark.features import ItemFeatures
from benchmark.split import Split

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "vlm4rec_bench.features"


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


Producer = Callable[..., ItemFeatures]
_PRODUCERS: dict[str, Producer] = {}
_LOADED = False


def register_feature_producer(name: str) -> Callable[[Producer], Producer]:
    """Decorator: ``@register_feature_producer("pixels")`` on ``fn(ctx, **params) -> ItemFeatures``."""

    def deco(fn: Producer) -> Producer:
        if name in _PRODUCERS and _PRODUCERS[name] is not fn:
            raise ValueError(f"feature producer {name!r} registered twice")
        _PRODUCERS[name] = fn
        return fn

    return deco


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            ep.load()
        except Exception as exc:  # a broken plug-in must not take the harness down
            log.warning("could not load feature plug-in %s (%s): %s", ep.name, ep.value, exc)


def available_producers() -> list[str]:
    _load()
    return sorted(_PRODUCERS)


def producer_parameters(name: str) -> list[str]:
    fn = get_producer(name)
    return [p for p in inspect.signature(fn).parameters if p != "ctx"]


def get_producer(name: str) -> Producer:
    _load()
    if name not in _PRODUCERS:
        raise KeyError(f"unknown feature producer {name!r}; registered: {', '.join(sorted(_PRODUCERS)) or 'none'}")
    return _PRODUCERS[name]


def produce(name: str, ctx: FeatureContext, params: Mapping[str, Any], output_name: str | None = None) -> ItemFeatures:
    """Run producer ``name`` and check its result is aligned to the split; rename it to ``output_name``."""
    fn = get_producer(name)
    sig = inspect.signature(fn)
    if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        allowed = [p for p in sig.parameters if p != "ctx"]
        bad = [k for k in params if k not in allowed]
        if bad:
            raise TypeError(f"feature producer {name!r} got unknown parameter(s) {bad}; allowed: {allowed}")
    feats = fn(ctx, **params)
    if not isinstance(feats, ItemFeatures):
        raise TypeError(f"feature producer {name!r} returned {type(feats).__name__}, expected ItemFeatures")
    feats.check_aligned(ctx.split.n_items)
    if output_name:
        feats.name = output_name
    feats.provenance.setdefault("producer", name)
    return feats
