"""The one recommender interface every model implements (Cornac-style two methods).

``fit(split, features) -> self`` learns from ``split.train`` (and may read ``split.valid`` for
model selection; never ``split.test``). ``score(user_ids) -> Tensor[len(user_ids), n_items]``
returns raw scores over the *whole* catalogue; masking of already-seen items and top-K are the
evaluator's job (:mod:`benchmark.evaluation`), so every model is ranked by the same rule.
Higher is better; ``-inf`` is allowed (ranked last), NaN is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import torch

from benchmark.features import ItemFeatures
from benchmark.split import Split


@runtime_checkable
class Recommender(Protocol):
    """What the evaluator and the runner need from a model."""

    def fit(self, split: Split, features: Mapping[str, ItemFeatures]) -> Recommender: ...

    def score(self, user_ids: torch.Tensor) -> torch.Tensor: ...


class BaseRecommender:
    """Convenience base: stores constructor params for provenance and checks ``score`` input."""

    #: feature names this model reads from the ``features`` mapping passed to ``fit``
    required_features: tuple[str, ...] = ()

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = dict(params)
        self.n_users = 0
        self.n_items = 0

    def check_features(self, features: Mapping[str, ItemFeatures], split: Split) -> None:
        """Raise a clear error if a required feature set is absent or misaligned."""
        for name in self.required_features:
            if name not in features:
                raise KeyError(
                    f"{type(self).__name__} needs item features {name!r}; available: {sorted(features) or 'none'}"
                )
            features[name].check_aligned(split.n_items)

    def fit(self, split: Split, features: Mapping[str, ItemFeatures]) -> BaseRecommender:
        self.n_users, self.n_items = split.n_users, split.n_items
        return self

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Name, class and parameters for the results' provenance."""
        return {"class": f"{type(self).__module__}.{type(self).__qualname__}", "params": self.params}
