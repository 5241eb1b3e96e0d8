"""The paper's training-free CLIP baselines: mean-profile cosine recommenders over item features.

Each user is the unweighted mean of their training items' (L2-normalised) feature vectors and
items are ranked by cosine similarity to it — the same :class:`benchmark.profiles.ProfileMatcher`
VLM4Rec uses, only the item vectors differ:

==================  ====================================================================
``vision-only``     CLIP image features (``clip_image``)
``text-only``       CLIP text features of the title (``clip_text``)
``naive-fusion``    50/50 average of the normalised image and text vectors (one CLIP space,
                    so the dimensions match)
``concat-fusion``   concatenation of the normalised image and text vectors
==================  ====================================================================

Feature names are parameters, so the same baselines run on the offline demo's ``pixels``
feature or on imported features. ``normalize_items=False`` averages (and concatenates) the raw
vectors instead, as the paper's ``evaluate_all_final.py`` does with its raw CLIP embeddings
(``0.5 * bert + 0.5 * vision``, ``np.concatenate``, ``mean(axis=0)``). Items lacking a feature score ``-inf``; for the fusions an
item needs both parts.
"""

from __future__ import annotations

from collections.abc import Sequence

from benchmark.profiles import ProfileMatcher
from benchmark.registry import register_model


@register_model("vision-only")
def vision_only(
    feature: str = "clip_image",
    aggregation: str = "mean",
    last_n: int = 10,
    decay: float = 0.9,
    normalize_items: bool = True,
) -> ProfileMatcher:
    """Mean profile of the history's image vectors, cosine to every item's image vector."""
    return ProfileMatcher(
        feature=feature, aggregation=aggregation, last_n=last_n, decay=decay, normalize_items=normalize_items
    )


@register_model("text-only")
def text_only(
    feature: str = "clip_text",
    aggregation: str = "mean",
    last_n: int = 10,
    decay: float = 0.9,
    normalize_items: bool = True,
) -> ProfileMatcher:
    """Mean profile of the history's text vectors, cosine to every item's text vector."""
    return ProfileMatcher(
        feature=feature, aggregation=aggregation, last_n=last_n, decay=decay, normalize_items=normalize_items
    )


@register_model("naive-fusion")
def naive_fusion(
    image_feature: str = "clip_image",
    text_feature: str = "clip_text",
    weights: Sequence[float] = (0.5, 0.5),
    aggregation: str = "mean",
    last_n: int = 10,
    decay: float = 0.9,
    normalize_items: bool = True,
) -> ProfileMatcher:
    """Item vector = weighted average of the normalised image and text vectors (paper: 50/50)."""
    return ProfileMatcher(
        feature=f"{image_feature}+{text_feature}",
        fusion="average",
        weights=list(weights),
        aggregation=aggregation,
        last_n=last_n,
        decay=decay,
        normalize_items=normalize_items,
    )


@register_model("concat-fusion")
def concat_fusion(
    image_feature: str = "clip_image",
    text_feature: str = "clip_text",
    aggregation: str = "mean",
    last_n: int = 10,
    decay: float = 0.9,
    normalize_items: bool = True,
) -> ProfileMatcher:
    """Item vector = [normalised image ; normalised text]."""
    return ProfileMatcher(
        feature=f"{image_feature}+{text_feature}",
        fusion="concat",
        aggregation=aggregation,
        last_n=last_n,
        decay=decay,
        normalize_items=normalize_items,
    )
