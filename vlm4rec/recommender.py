"""VLM4Rec: profile matching over LVLM-description embeddings (nothing is trained).

A user's profile aggregates their history's item text embeddings (``mean`` as in the paper,
``last_n``, or ``exp_recency``) and every catalogue item is scored by cosine similarity.
The scoring is :class:`benchmark.profiles.ProfileMatcher`'s; this class fixes the defaults to
the paper's and checks that the features were made with the text choice the run asks for.
"""

from __future__ import annotations

from collections.abc import Mapping

from benchmark.features import ItemFeatures
from benchmark.profiles import ProfileMatcher
from benchmark.registry import register_model
from benchmark.split import Split
from vlm4rec.texts import TEXT_CHOICES


@register_model("vlm4rec")
class VLM4Rec(ProfileMatcher):
    """Cosine profile matching on the ``feature`` item features (default ``text``).

    ``text``: when given, the features' provenance must record this text choice (one of
    :data:`vlm4rec.texts.TEXT_CHOICES`: ``description``, ``title+description``, ``title``,
    ``metadata``, ``catalogue``), so a config cannot silently run on embeddings of another text.
    """

    def __init__(
        self,
        feature: str = "text",
        aggregation: str = "mean",
        last_n: int = 10,
        decay: float = 0.9,
        text: str | None = None,
    ) -> None:
        if text is not None and text not in TEXT_CHOICES:
            raise ValueError(f"unknown text choice {text!r}; allowed: {', '.join(TEXT_CHOICES)}")
        super().__init__(feature=feature, aggregation=aggregation, last_n=last_n, decay=decay)
        self.params["text"] = text

    def fit(self, split: Split, features: Mapping[str, ItemFeatures]) -> VLM4Rec:
        self.check_features(features, split)
        want = self.params["text"]
        if want is not None:
            for name in self.feature_names:
                got = features[name].provenance.get("text_choice")
                if got != want:
                    raise ValueError(
                        f"VLM4Rec(text={want!r}) got features {name!r} made from text {got!r}; "
                        f"re-run `vlm4rec-bench encode --text {want}`"
                    )
        super().fit(split, features)
        return self
