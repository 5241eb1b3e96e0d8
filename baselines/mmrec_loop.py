"""The pieces of MMRec's trainer the adapter keeps, and the best-epoch state it restores.

MMRec's ``common/trainer.py`` builds the optimizer named by ``learner`` with ``learning_rate`` and
``weight_decay``, multiplies the learning rate by ``base ** (epoch / step)`` after every epoch
(``learning_rate_scheduler: [base, step]``; LATTICE, MGCN and SMORE use ``[0.96, 50]``), and
per batch sums a tuple of losses and clips gradients when ``clip_grad_norm`` is set. The same
steps run here (:func:`build_optimizer`, :func:`train_epoch`); its evaluation (of the test part
too, every epoch) does not.

:class:`BestState` keeps what ``full_sort_predict`` reads at the best validation epoch: the
parameters and buffers, and the plain tensor attributes that training replaced (LATTICE's learned
item graph, FREEDOM's pruned adjacency, …), which a ``state_dict`` does not hold.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from benchmark.errors import ConfigError

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
}


def build_optimizer(
    model: torch.nn.Module, config: Any
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """MMRec's optimizer (``learner``) and learning-rate schedule for ``model``."""
    learner = str(config["learner"] or "adam").lower()
    if learner not in OPTIMIZERS:
        raise ConfigError(f"config.learner: {learner!r} is not one of MMRec's; allowed: {', '.join(OPTIMIZERS)}")
    optimizer = OPTIMIZERS[learner](model.parameters(), lr=config["learning_rate"], weight_decay=config["weight_decay"])
    base, step = config["learning_rate_scheduler"] or [1.0, 50]
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda epoch: base ** (epoch / step))


def train_epoch(
    model: Any, loader: Any, optimizer: torch.optim.Optimizer, clip: dict[str, Any] | None, progress: str | None = None
) -> float:
    """One pass over MMRec's loader: ``calculate_loss`` per batch; the summed loss, NaN as soon as one is."""
    model.pre_epoch_processing()
    model.train()
    total = 0.0
    batches = loader
    if progress:
        from tqdm.auto import tqdm

        batches = tqdm(loader, total=len(loader), leave=False, desc=progress)
    for interaction in batches:
        optimizer.zero_grad()
        losses = model.calculate_loss(interaction)
        loss = sum(losses) if isinstance(losses, tuple) else losses
        if torch.isnan(loss).any():
            return float("nan")  # MMRec's trainer stops training here too
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), **clip)
        optimizer.step()
        total += float(loss.detach())
    model.post_epoch_processing()
    return total


class BestState:
    """The model's state at its best validation value so far (first best kept on ties)."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.constant = self._tensor_attrs(model)  # graphs built once, never replaced: not copied
        self.value: float | None = None
        self.epoch: int | None = None
        self._state: dict[str, Any] | None = None

    def offer(self, value: float, epoch: int, model: torch.nn.Module) -> bool:
        """Keep ``model``'s state if ``value`` beats the best so far; whether it did."""
        if self.value is not None and value <= self.value:
            return False
        self.value, self.epoch, self._state = value, epoch, self._snapshot(model)
        return True

    def restore(self, model: torch.nn.Module) -> None:
        if self._state is None:
            raise RuntimeError("no state was kept")
        model.load_state_dict(self._state["state"])
        modules = dict(model.named_modules())
        for (path, name), value in self._state["attrs"].items():
            setattr(modules[path], name, value)

    @staticmethod
    def _tensor_attrs(model: torch.nn.Module) -> dict[tuple[str, str], int]:
        return {
            (path, name): id(value)
            for path, module in model.named_modules()
            for name, value in vars(module).items()
            if isinstance(value, torch.Tensor)
        }

    def _snapshot(self, model: torch.nn.Module) -> dict[str, Any]:
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        attrs: dict[tuple[str, str], Any] = {}
        for path, module in model.named_modules():
            for name, value in vars(module).items():
                if isinstance(value, torch.Tensor) and self.constant.get((path, name)) != id(value):
                    attrs[(path, name)] = value.detach().clone()
                elif isinstance(value, bool | int | float) and not name.startswith("_") and name != "training":
                    attrs[(path, name)] = value  # flags such as LATTICE's build_item_graph
        return {"state": state, "attrs": attrs}
