"""One trainer configuration for every trainable model (Lightning-hydra-template style).

Trainer settings — epochs, early stopping, optimiser step size, batch size, where to run — are
not a model's hyper-parameters and are not copied into every model's constructor. A trainable
model takes one ``train: TrainConfig``; a config sets them under the experiment's ``train`` key
(all trainable models) and/or a model entry's ``train`` key (that model only):

.. code-block:: yaml

    train: {max_epochs: 50, patience: 5, accelerator: cpu}
    models:
      - {name: VBPR, model: vbpr, params: {feature: clip_image}, train: {batch_size: 256}}

A model class may declare its own defaults (``train_defaults = {"batch_size": 100}``: Cornac's
VBPR batch); the layers apply in order: :class:`TrainConfig` defaults ← the class's
``train_defaults`` ← the experiment's ``train`` ← the model entry's ``train``
(:func:`resolve_train`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from benchmark.configuration import choice, from_dict
from benchmark.errors import ConfigError
from benchmark.evaluation.metrics import METRIC_NAMES

ACCELERATORS: tuple[str, ...] = ("cpu", "gpu", "cuda", "mps", "auto")


@dataclass
class TrainConfig:
    """How a trainable model is trained and selected.

    ``max_epochs`` passes over the training pairs at most; validation ``metric@eval_k`` on
    ``split.valid`` every ``eval_every`` epochs, stop after ``patience`` checks without
    improvement, restore the best state. ``lr``/``weight_decay``: the optimiser's (Adam);
    ``batch_size``: training triples per step; ``eval_batch_size``: users per ``score`` call while
    validating; ``gradient_clip_val``: Lightning's norm clipping. ``accelerator``, ``devices``,
    ``num_nodes``, ``strategy``: Lightning's. ``deterministic``: torch's deterministic-algorithms
    mode (for GPU runs; CPU runs are reproducible without it). ``enable_progress_bar``:
    Lightning's per-epoch bar.
    """

    max_epochs: int = 50
    patience: int = 5
    eval_every: int = 1
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 0.0
    metric: str = choice("recall", METRIC_NAMES)
    eval_k: int = 20
    eval_batch_size: int = 1024
    gradient_clip_val: float | None = None
    accelerator: str = choice("cpu", ACCELERATORS)
    devices: int | str | list[int] = 1
    num_nodes: int = 1
    strategy: str = "auto"
    deterministic: bool | None = None
    enable_progress_bar: bool = False

    def validate(self, path: str = "") -> None:
        p = f"{path}." if path else ""
        for key in ("max_epochs", "patience", "eval_every", "batch_size", "eval_k", "eval_batch_size", "num_nodes"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{p}{key}: must be >= 1, got {getattr(self, key)}")
        if self.lr < 0 or self.weight_decay < 0:
            raise ConfigError(f"{p}lr/weight_decay: must be >= 0, got {self.lr}/{self.weight_decay}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def check_partial(values: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Validate a partial ``train`` mapping (some keys of :class:`TrainConfig`); return it coerced."""
    full = from_dict(TrainConfig, dict(values), path)
    return {k: getattr(full, k) for k in values}


def resolve_train(*layers: Mapping[str, Any] | None, path: str = "train") -> TrainConfig:
    """:class:`TrainConfig` from partial mappings applied in order (later layers win)."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer or {})
    return from_dict(TrainConfig, merged, path)
