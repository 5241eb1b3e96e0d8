"""Item features for the baselines: CLIP image/text (:mod:`.clip`), the demo's weight-free
``pixels`` (:mod:`.pixels`) and imports of published feature files (:mod:`.imported`).

The producers below register them with the harness (``benchmark.producers``) so the runner
can build them by name; heavy libraries are imported only when a producer runs.

==================  ==================================================================
``clip-image``      :func:`baselines.features.clip.clip_features` with ``kind="image"``
``clip-text``       the same with ``kind="text"`` (title, optionally + description)
``pixels``          :func:`baselines.features.pixels.pixel_features`
``import-npy``      :func:`baselines.features.imported.import_npy`
``import-mmrec``    :func:`baselines.features.imported.import_mmrec`
==================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmark.features import ItemFeatures
from benchmark.producers import FeatureContext, register_feature_producer


def _images_dir(ctx: FeatureContext, images: str | None) -> Path | None:
    """An explicit ``images`` directory, else ``<raw_dir>/images`` when it exists."""
    if images is not None:
        return Path(images)
    if ctx.raw_dir is not None and (Path(ctx.raw_dir) / "images").is_dir():
        return Path(ctx.raw_dir) / "images"
    return None


def _accelerator(ctx: FeatureContext, accelerator: str | None) -> str:
    if accelerator:
        return accelerator
    return "gpu" if str(ctx.device).startswith("cuda") else "cpu"


def _clip(
    ctx: FeatureContext,
    kind: str,
    model: str,
    pretrained: str | None,
    images: str | None,
    text_fields: Sequence[str],
    normalize: bool,
    batch_size: int,
    devices: int | str,
    strategy: str,
    precision: str,
    accelerator: str | None,
) -> ItemFeatures:
    from baselines.features.clip import clip_features

    return clip_features(
        ctx.split,
        kind,
        model,
        pretrained,
        images=_images_dir(ctx, images),
        text_fields=tuple(text_fields),
        normalize=normalize,
        batch_size=batch_size,
        accelerator=_accelerator(ctx, accelerator),
        devices=devices,
        strategy=strategy,
        precision=precision,
        cache_dir=Path(ctx.cache_dir) / "features",
        progress=ctx.progress,
    )


@register_feature_producer("clip-image")
def clip_image(
    ctx: FeatureContext,
    model: str = "ViT-L-14",
    pretrained: str | None = "openai",
    images: str | None = None,
    normalize: bool = True,
    batch_size: int = 64,
    devices: int | str = 1,
    strategy: str = "auto",
    precision: str = "fp32",
    accelerator: str | None = None,
) -> ItemFeatures:
    """CLIP image features (``clip_image``) of every item with a local image."""
    return _clip(
        ctx,
        "image",
        model,
        pretrained,
        images,
        ("title",),
        normalize,
        batch_size,
        devices,
        strategy,
        precision,
        accelerator,
    )


@register_feature_producer("clip-text")
def clip_text(
    ctx: FeatureContext,
    model: str = "ViT-L-14",
    pretrained: str | None = "openai",
    text_fields: Sequence[str] = ("title",),
    normalize: bool = True,
    batch_size: int = 256,
    devices: int | str = 1,
    strategy: str = "auto",
    precision: str = "fp32",
    accelerator: str | None = None,
) -> ItemFeatures:
    """CLIP text features (``clip_text``) of every item's title (+ description if asked)."""
    return _clip(
        ctx,
        "text",
        model,
        pretrained,
        None,
        text_fields,
        normalize,
        batch_size,
        devices,
        strategy,
        precision,
        accelerator,
    )


@register_feature_producer("pixels")
def pixels(
    ctx: FeatureContext,
    images: str | None = None,
    bins: int = 8,
    thumb: int = 8,
    max_side: int = 256,
    hist_weight: float = 1.0,
) -> ItemFeatures:
    """Colour histogram + thumbnail (``pixels``) of every item with a local image."""
    from baselines.features.pixels import pixel_features

    return pixel_features(
        ctx.split, _images_dir(ctx, images), bins, thumb, max_side, hist_weight, progress=ctx.progress
    )


@register_feature_producer("import-npy")
def import_npy(
    ctx: FeatureContext, npy: str, ids: str, name: str = "imported", id_column: str | None = None
) -> ItemFeatures:
    """A ``.npy`` whose rows follow the original item ids listed in ``ids``."""
    from baselines.features.imported import import_npy as _import

    return _import(ctx.split, npy, ids, name, id_column)


@register_feature_producer("import-mmrec")
def import_mmrec(ctx: FeatureContext, feat: str, item_map: str, name: str = "imported") -> ItemFeatures:
    """MMRec's ``image_feat.npy``/``text_feat.npy`` with its ``i_id_mapping.csv``."""
    from baselines.features.imported import import_mmrec as _import

    return _import(ctx.split, feat, item_map, name)
