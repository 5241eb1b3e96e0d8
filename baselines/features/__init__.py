"""Item features for the baselines: CLIP image/text (:mod:`.clip`), the demo's weight-free
``pixels`` (:mod:`.pixels`) and imports of published feature files (:mod:`.imported`).

The producers below register them with the harness (``benchmark.producers``) so the runner
can build them by name; heavy libraries are imported only when a producer runs.

==================  ==================================================================
``clip-image``      :func:`baselines.features.clip.clip_features` with ``kind="image"``
                    (``clip_model``: the open_clip architecture, ``pretrained``: its weights)
``clip-text``       the same with ``kind="text"`` (title, optionally + description)
``pixels``          :func:`baselines.features.pixels.pixel_features`
``import-npy``      :func:`baselines.features.imported.import_npy`
``import-mmrec``    :func:`baselines.features.imported.import_mmrec`
==================  ==================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

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


def _clip(ctx: FeatureContext, images: str | None, **settings: Any) -> ItemFeatures:
    """Both CLIP producers: their parameters are :class:`~baselines.features.clip.ClipConfig`'s."""
    from baselines.features.clip import ClipConfig, clip_features

    settings["accelerator"] = _accelerator(ctx, settings["accelerator"])
    settings["text_fields"] = tuple(settings.get("text_fields", ("title",)))
    return clip_features(
        ctx.split,
        ClipConfig(**settings),
        images=_images_dir(ctx, images),
        cache_dir=Path(ctx.cache_dir) / "features",
        progress=ctx.progress,
        roots=ctx.image_roots,
    )


@register_feature_producer("clip-image")
def clip_image(
    ctx: FeatureContext,
    clip_model: str = "ViT-L-14",
    pretrained: str | None = "openai",
    images: str | None = None,
    normalize: bool = True,
    batch_size: int = 64,
    devices: int | str = 1,
    strategy: str = "auto",
    precision: str = "fp32",
    accelerator: str | None = None,
) -> ItemFeatures:
    """CLIP image features (``clip_image``) of every item with a local image.

    ``clip_model`` is the open_clip architecture, ``pretrained`` its weights tag (or file).
    """
    return _clip(
        ctx,
        images,
        kind="image",
        clip_model=clip_model,
        pretrained=pretrained,
        normalize=normalize,
        batch_size=batch_size,
        devices=devices,
        strategy=strategy,
        precision=precision,
        accelerator=accelerator,
    )


@register_feature_producer("clip-text")
def clip_text(
    ctx: FeatureContext,
    clip_model: str = "ViT-L-14",
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
        None,
        kind="text",
        clip_model=clip_model,
        pretrained=pretrained,
        text_fields=text_fields,
        normalize=normalize,
        batch_size=batch_size,
        devices=devices,
        strategy=strategy,
        precision=precision,
        accelerator=accelerator,
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
        ctx.split,
        _images_dir(ctx, images),
        bins,
        thumb,
        max_side,
        hist_weight,
        progress=ctx.progress,
        roots=ctx.image_roots,
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
