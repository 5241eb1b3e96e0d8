"""The one recommender interface every model implements (Cornac-style two methods).

``fit(split, features) -> self`` learns from ``split.train`` (and may read ``split.valid`` for
model selection; never ``split.test``). ``score(user_ids) -> Tensor[len(user_ids), n_items]``
returns raw scores over the *whole* catalogue; masking of already-seen items and top-K are the
evaluator's job (:mod:`benchmark.evaluation`), so every model is ranked by the same rule.
Higher is better; ``-inf`` is allowed (ranked last), NaN is an error.

:class:`ModelParams` is what every model class of this repository shares, trained or not
(:class:`BaseRecommender` here, ``baselines.trainable.TrainableRecommender`` on Lightning): its
constructor arguments recorded in ``self.params`` (Cornac's "hyper-parameters as attributes"),
``get_params()`` / ``clone(**overrides)`` read from the constructor's signature (for
hyper-parameter search), and the one ``check_features``.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import torch

from benchmark.features import ItemFeatures
from benchmark.split import Split
from benchmark.train_config import TrainConfig, resolve_train


@runtime_checkable
class Recommender(Protocol):
    """What the evaluator and the runner need from a model."""

    def fit(self, split: Split, features: Mapping[str, ItemFeatures]) -> Recommender: ...

    def score(self, user_ids: torch.Tensor) -> torch.Tensor: ...


def check_features(model: str, required: tuple[str, ...], features: Mapping[str, ItemFeatures], n_items: int) -> None:
    """Raise a clear error if a feature set ``model`` requires is absent or not aligned to the items."""
    for name in required:
        if name not in features:
            raise KeyError(f"{model} needs item features {name!r}; available: {sorted(features) or 'none'}")
        features[name].check_aligned(n_items)


def init_param_names(cls: type) -> tuple[list[str], bool]:
    """The named parameters of ``cls.__init__`` (``self`` left out), and whether it takes ``**kwargs``."""
    params = list(inspect.signature(cls).parameters.values())
    names = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return names, any(p.kind is p.VAR_KEYWORD for p in params)


class ModelParams:
    """Mix-in: constructor arguments as ``self.params``; ``get_params``/``clone``; ``check_features``.

    A subclass records every constructor argument in ``self.params`` under its own name (by
    passing them to ``BaseRecommender.__init__``), so ``clone`` can rebuild it from the
    signature, as Cornac's ``Recommender.clone`` does from attributes.
    """

    #: feature names this model reads from the ``features`` mapping passed to ``fit``
    required_features: tuple[str, ...] = ()
    params: dict[str, Any]

    def check_features(self, features: Mapping[str, ItemFeatures], split: Split) -> None:
        """Raise a clear error if a required feature set is absent or misaligned."""
        check_features(type(self).__name__, tuple(self.required_features), features, split.n_items)

    def get_params(self) -> dict[str, Any]:
        """The constructor arguments this instance was made with, by name (deep copies); a
        ``train`` argument is the effective :class:`~benchmark.train_config.TrainConfig`."""
        names, takes_kwargs = init_param_names(type(self))
        params = dict(self.params)
        train = getattr(self, "train_config", None)
        if "train" in names and isinstance(train, TrainConfig):
            params["train"] = train
        missing = [n for n in names if n not in params]
        if missing:
            raise AttributeError(
                f"{type(self).__name__}.__init__ argument(s) {missing} are not recorded in self.params; "
                "pass every constructor argument to the base class's __init__"
            )
        return {k: copy.deepcopy(params[k]) for k in (list(params) if takes_kwargs else names)}

    def clone(self, **overrides: Any) -> Any:
        """A new, unfitted instance with the same parameters except ``overrides``; ``train`` given
        as a mapping changes only the trainer settings it names."""
        params = self.get_params()
        _, takes_kwargs = init_param_names(type(self))
        unknown = [k for k in overrides if k not in params]
        if unknown and not takes_kwargs:
            raise TypeError(
                f"{type(self).__name__}.clone: unknown parameter(s) {unknown}; allowed: {', '.join(params)}"
            )
        if isinstance(params.get("train"), TrainConfig) and isinstance(overrides.get("train"), Mapping):
            overrides["train"] = resolve_train(params["train"].to_dict(), overrides["train"])
        return type(self)(**{**params, **overrides})


class BaseRecommender(ModelParams):
    """Convenience base: stores constructor params for provenance and checks ``score`` input."""

    def __init__(self, **params: Any) -> None:
        self.params: dict[str, Any] = dict(params)
        self.n_users = 0
        self.n_items = 0

    def fit(self, split: Split, features: Mapping[str, ItemFeatures]) -> BaseRecommender:
        self.n_users, self.n_items = split.n_users, split.n_items
        return self

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """Class and parameters (and the effective train config, if any) for the results' provenance."""
        out: dict[str, Any] = {"class": f"{type(self).__module__}.{type(self).__qualname__}", "params": self.params}
        train = getattr(self, "train_config", None)
        if isinstance(train, TrainConfig):
            out["train"] = train.to_dict()
        return out
