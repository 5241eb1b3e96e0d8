"""Lightning base for trained recommenders: one LightningModule behind the
:class:`~benchmark.recommender.Recommender` protocol, trained on the triples of
:mod:`baselines.triplets`.

A subclass implements three hooks:

- ``build(split, features)``: create its parameters (called at the start of ``fit``, after seeding);
- ``triplet_loss(users, pos, neg)``: the training loss of one batch of triples;
- ``score_users(users)``: raw scores ``[len(users), n_items]`` (no masking; the evaluator masks).

Its constructor takes only its own hyper-parameters plus ``seed`` and ``train`` (a
:class:`~benchmark.train_config.TrainConfig`, or a partial mapping applied over the class's
``train_defaults``). ``fit`` seeds everything, builds a :class:`pytorch_lightning.Trainer` from
the train config (CPU by default, reproducible run to run), trains, evaluates on ``split.valid``
every ``eval_every`` epochs through the shared evaluator, stops after ``patience`` evaluations
without improvement and restores the best state (kept in memory). ``split.test`` is never read.

Subclasses gather trained tensors by index with :func:`gather_rows`, never ``tensor[index]``:
the latter's CPU backward sums repeated rows in a thread-timing-dependent order, which made the
fusion models' results differ run to run.

Speed: a small model's optimiser step costs less than Lightning's per-step machinery, so one
Lightning step runs :data:`STEPS_PER_CALL` consecutive batches (manual optimisation: each batch
is still one ``zero_grad → backward → step``, the same steps as one batch per call), and Adam is
torch's fused kernel where the parameters allow it (profiled in ``benchmark.perf.vbpr``).

Several processes (``train.devices: N``, ``num_nodes``, a DDP ``strategy``): every rank draws
the same epoch of triples and trains on its slice of each batch, one batch per Lightning step
(DDP synchronises gradients once per forward); a model whose ``triplet_loss`` is a *sum* over
the batch (``loss_reduction = "sum"``) has it scaled by the number of ranks, so DDP's gradient
average is the single-process gradient, and multiplies its batch-independent terms (e.g.
VBPR's ``λ_e``) by ``self.shard_fraction``. With ``ddp_spawn``/``ddp_fork`` the selected state
comes back to the calling process through a temporary file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch

from baselines.triplets import TripletDataModule
from benchmark.features import ItemFeatures
from benchmark.recommender import ModelParams, Recommender, ValidationListener
from benchmark.split import Split
from benchmark.train_config import TrainConfig, resolve_train

log = logging.getLogger(__name__)

#: batches per Lightning training step in a single process (optimiser steps are unchanged)
STEPS_PER_CALL = 64


class _ValidationSelection(pl.Callback):
    """Evaluates on ``split.valid`` every ``every`` epochs, keeps the best state, stops early, and
    hands each check to ``listener`` (a search's pruner), which may raise to stop the fit."""

    def __init__(
        self,
        split: Split,
        train: TrainConfig,
        timer: _EpochTimer,
        exchange: Path | None = None,
        listener: ValidationListener | None = None,
    ) -> None:
        self.split, self.metric, self.k = split, train.metric, int(train.eval_k)
        self.timer, self.exchange, self.listener = timer, exchange, listener
        self.every, self.patience, self.eval_batch_size = train.eval_every, train.patience, train.eval_batch_size
        self.key = f"{self.metric}@{self.k}"
        self.best_value = -float("inf")
        self.best_epoch = -1
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_checks = 0
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, module: TrainableRecommender) -> None:
        epoch = trainer.current_epoch + 1
        if epoch % self.every and epoch != trainer.max_epochs:
            return
        value = module.validation_score(self.split, self.metric, self.k, self.eval_batch_size)
        module.log(f"valid/{self.key}", value, prog_bar=True)
        self.history.append({"epoch": epoch, self.key: value})
        log.info("epoch %d: valid %s = %.5f", epoch, self.key, value)
        if value > self.best_value:
            self.best_value, self.best_epoch, self.bad_checks = value, epoch, 0
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
        else:
            self.bad_checks += 1
            if self.bad_checks >= self.patience:
                log.info(
                    "early stop at epoch %d (best %s = %.5f at epoch %d)",
                    epoch,
                    self.key,
                    self.best_value,
                    self.best_epoch,
                )
                trainer.should_stop = True
        if self.listener is not None:
            self.listener(epoch, float(value))

    def on_train_end(self, trainer: pl.Trainer, module: TrainableRecommender) -> None:
        """Rank 0 of a DDP run leaves the outcome where the launching process finds it (with
        ``ddp_spawn``/``ddp_fork`` this callback ran in a child process)."""
        if self.exchange is not None and trainer.world_size > 1 and trainer.global_rank == 0:
            outcome = {
                "best_state": self.best_state,
                "best_value": self.best_value,
                "best_epoch": self.best_epoch,
                "history": self.history,
                "epoch_times": self.timer.times,
            }
            torch.save(outcome, self.exchange / "outcome.pt")

    def load_outcome(self) -> None:
        """The outcome rank 0 saved (when this process did not run the training itself)."""
        path = self.exchange / "outcome.pt" if self.exchange is not None else None
        if self.best_state is not None or path is None or not path.exists():
            return
        outcome = torch.load(path, weights_only=False)
        self.best_state, self.best_value, self.best_epoch = (
            outcome["best_state"],
            outcome["best_value"],
            outcome["best_epoch"],
        )
        self.history, self.timer.times = outcome["history"], outcome["epoch_times"]


class _EpochTimer(pl.Callback):
    """Wall time of each training epoch (validation excluded), for the perf script."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        # runs before _ValidationSelection (callbacks run in list order) so evaluation is not counted
        self.times.append(time.perf_counter() - self._start)


class TrainableRecommender(ModelParams, pl.LightningModule):
    """LightningModule base implementing ``fit(split, features) -> self`` and ``score(user_ids)``.

    ``seed`` seeds initialisation, negative sampling and Lightning; ``train`` says how to train
    and select (:class:`~benchmark.train_config.TrainConfig`): an instance is used as given (the
    runner resolves its layers, ``train_defaults`` included); a mapping or ``None`` is applied
    over ``train_defaults``. The effective config is ``self.train_config``. Subclasses pass their
    own hyper-parameters as keywords (recorded in ``self.params`` with ``seed``, for
    ``get_params``/``clone`` and the results' provenance).
    """

    #: this model's trainer defaults where they differ from TrainConfig's (e.g. Cornac's VBPR batch)
    train_defaults: ClassVar[dict[str, Any]] = {}
    #: "sum": ``triplet_loss`` sums over the batch rows (scaled by the number of DDP ranks, see the
    #: module doc); "mean": it averages them (DDP's gradient average needs no scaling)
    loss_reduction: ClassVar[str] = "mean"

    def __init__(self, *, seed: int = 0, train: TrainConfig | Mapping[str, Any] | None = None, **model_params: Any):
        super().__init__()
        self.train_config = train if isinstance(train, TrainConfig) else resolve_train(type(self).train_defaults, train)
        self.params: dict[str, Any] = dict(model_params, seed=seed)
        # not ``self.logger``: LightningModule owns that name (the trainer's logger)
        self._external_logger: Any = None
        self._validation_listener: ValidationListener | None = None
        self.n_users = 0
        self.n_items = 0
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.valid_history: list[dict[str, float]] = []
        self.epoch_times: list[float] = []
        self._cache: dict[str, torch.Tensor] = {}
        #: this rank's share of each batch (1 in a single process): the factor for loss terms that
        #: do not depend on the batch rows, so that the ranks together count them once
        self.shard_fraction = 1.0
        self._loss_scale = 1.0
        # several optimiser steps per Lightning step (see the module doc)
        self.automatic_optimization = False

    # ------------------------------------------------------------------ subclass hooks
    def build(self, split: Split, features: Mapping[str, ItemFeatures]) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def triplet_loss(
        self, users: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor
    ) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def score_users(self, users: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # ------------------------------------------------------------------ protocol
    def fit(self, split: Split, features: Mapping[str, ItemFeatures] | None = None) -> TrainableRecommender:
        """Train on ``split.train``, select the best epoch on ``split.valid``, restore it."""
        features = features or {}
        t = self.train_config
        self.check_features(features, split)
        pl.seed_everything(self.params["seed"], workers=True, verbose=False)
        self.n_users, self.n_items = split.n_users, split.n_items
        self.build(split, features)
        data = TripletDataModule(
            split, batch_size=t.batch_size, seed=self.params["seed"], steps_per_item=STEPS_PER_CALL
        )
        exchange = Path(tempfile.mkdtemp(prefix="trainable-fit-"))
        timer = _EpochTimer()
        selection = _ValidationSelection(split, t, timer, exchange, self._validation_listener)
        try:
            trainer = self.lightning_trainer([timer, selection])
            with warnings.catch_warnings():
                # our IterableDataset yields whole batches in one process; its __len__ is exact
                warnings.filterwarnings("ignore", message=".*IterableDataset.*has `__len__` defined")
                trainer.fit(self, datamodule=data)
            selection.load_outcome()
        finally:
            shutil.rmtree(exchange, ignore_errors=True)
        if selection.best_state is None:  # pragma: no cover - every run evaluates at its last epoch
            raise RuntimeError("training ended without a validation check")
        self.load_state_dict(selection.best_state)
        self.best_value, self.best_epoch = selection.best_value, selection.best_epoch
        self.valid_history = selection.history
        self.epoch_times = timer.times
        self._cache.clear()
        self.eval()
        log.info(
            "%s: best valid %s = %.5f at epoch %d", type(self).__name__, selection.key, self.best_value, self.best_epoch
        )
        return self

    def lightning_trainer(self, callbacks: list[pl.Callback]) -> pl.Trainer:
        """The Lightning trainer ``fit`` uses, from ``self.train_config`` and the runner's logger."""
        t = self.train_config
        # CPU runs are reproducible without torch's deterministic mode as long as trained tensors
        # are gathered with gather_rows (index_select/index_add_, deterministic on CPU) and not
        # with tensor[index] (racy parallel accumulation in backward); tests fit twice with
        # several threads and compare the states bit for bit. That mode costs ~4× per step (it
        # NaN-fills new memory), so it is opt-in (GPU runs).
        return pl.Trainer(
            accelerator=t.accelerator,
            devices=t.devices,
            num_nodes=t.num_nodes,
            strategy=t.strategy,
            max_epochs=t.max_epochs,
            deterministic=bool(t.deterministic),
            enable_progress_bar=t.enable_progress_bar,
            enable_checkpointing=False,
            enable_model_summary=False,
            logger=self._external_logger if self._external_logger is not None else False,
            callbacks=callbacks,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            log_every_n_steps=50,
        )

    def set_logger(self, logger: Any) -> None:
        """Send training curves (``train/loss``, ``valid/<metric>@k``) to a Lightning logger;
        the runner passes its W&B/CSV/TensorBoard logger here before ``fit``."""
        self._external_logger = logger

    def set_validation_listener(self, listener: ValidationListener | None) -> None:
        """Call ``listener(epoch, value)`` at every validation check of the next ``fit`` (a
        hyper-parameter search reports the curve to its pruner this way; it may raise to stop)."""
        self._validation_listener = listener

    @torch.no_grad()
    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        """Raw scores ``[len(user_ids), n_items]`` on the module's device (no masking)."""
        if self.n_items == 0:
            raise RuntimeError("call fit() before score()")
        was_training = self.training
        self.eval()
        try:
            return self.score_users(torch.as_tensor(user_ids, dtype=torch.long).to(self.device))
        finally:
            self.train(was_training)

    def validation_score(self, split: Split, metric: str = "recall", k: int = 20, batch_size: int = 1024) -> float:
        """Mean ``metric@k`` on ``split.valid`` through the shared evaluator."""
        from benchmark.evaluation import evaluate

        self._cache.clear()
        result = evaluate(self, split, part="valid", ks=(k,), metrics=(metric,), batch_size=batch_size, progress=False)
        return float(result.means()[f"{metric}@{k}"])

    def describe(self) -> dict[str, Any]:
        """Class, own parameters (+ seed), the effective train config and the validation selection
        outcome, for the results' provenance; ``state_sha256`` identifies the trained state."""
        return {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "params": dict(self.params),
            "train": self.train_config.to_dict(),
            "best_epoch": self.best_epoch,
            "best_valid": self.best_value,
            "valid_history": self.valid_history,
            "state_sha256": state_checksum(self),
        }

    # ------------------------------------------------------------------ Lightning hooks
    def on_fit_start(self) -> None:
        world = int(self.trainer.world_size)
        self.shard_fraction = 1.0 / world
        self._loss_scale = float(world) if self.loss_reduction == "sum" else 1.0

    def training_step(self, batch: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], batch_idx: int) -> None:
        """One optimiser step per batch of the list (see :data:`STEPS_PER_CALL`)."""
        opt = self.optimizers()
        clip = self.train_config.gradient_clip_val
        total: Any = 0.0
        rows = 0
        for users, pos, neg in batch:
            opt.zero_grad()
            loss = self.triplet_loss(users, pos, neg)
            self.manual_backward(loss * self._loss_scale if self._loss_scale != 1.0 else loss)
            if clip is not None:
                self.clip_gradients(opt, gradient_clip_val=clip, gradient_clip_algorithm="norm")
            opt.step()
            total = total + loss.detach() * len(users)
            rows += len(users)
        # the epoch mean weighs each logged value by its rows: the mean of the per-batch losses
        self.log("train/loss", total / max(rows, 1), on_step=False, on_epoch=True, batch_size=rows)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._cache.clear()  # parameters are about to change

    def configure_optimizers(self) -> torch.optim.Optimizer:
        t = self.train_config
        params = list(self.parameters())
        # the fused kernel is one pass per tensor instead of ~6 elementwise ops: the optimiser is
        # most of a small model's step on CPU
        fused = all(p.dtype == torch.float32 and p.device.type in ("cpu", "cuda") for p in params)
        return _Adam(params, lr=t.lr, weight_decay=t.weight_decay, fused=fused or None)

    def cached(self, key: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Item-side tensors reused across ``score`` calls while parameters do not change."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


class _Adam(torch.optim.Adam):
    """torch's Adam, with its per-step CUDA-graph-capture check made once for CPU parameters.

    ``Adam.step`` asks ``torch.accelerator.current_accelerator(check_available=True)`` on every
    step; on a machine without a GPU driver that tries to ``dlopen`` NVML each time (~1 ms, a
    fifth of a VBPR step; profiled). Graph capture never applies to CPU tensors, so the answer
    cannot change between steps there; on a GPU every step is checked as torch does.
    """

    _capture_checked = False

    def _accelerator_graph_capture_health_check(self) -> None:
        if self._capture_checked:
            return
        super()._accelerator_graph_capture_health_check()
        self._capture_checked = all(p.device.type == "cpu" for group in self.param_groups for p in group["params"])


def state_checksum(module: torch.nn.Module) -> str:
    """sha256 over a module's state (names, dtypes, shapes, bytes): two runs that claim to be the
    same can be compared bit for bit from their results, not only through metrics that a small
    numerical difference may leave unchanged."""
    digest = hashlib.sha256()
    for name, value in sorted(module.state_dict().items()):
        t = value.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return digest.hexdigest()


def gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table[index]`` along the first dimension, with a gradient that is identical run to run on CPU.

    Use it for every trained tensor gathered by an index that may repeat (users, items, fused item
    vectors). ``table[index]`` differentiates through ``index_put_(accumulate=True)``, which on CPU
    adds the gradient rows of repeated indices with parallel atomic float adds once the gradient
    has >= 32,768 elements and torch runs more than one thread: the order of those additions, and
    so the last bits of the gradient, change from run to run, and training amplifies them.
    ``index_select``'s backward is ``index_add_``, which adds the rows serially in index order
    (deterministic on CPU, and faster), so this needs no global deterministic-algorithms mode.
    """
    return table.index_select(0, index)


def xavier_uniform(rows: int, cols: int, generator: torch.Generator) -> torch.Tensor:
    """Glorot-uniform ``[rows, cols]`` (limit ``sqrt(6 / (rows + cols))``), as Cornac initialises VBPR."""
    limit = float(np.sqrt(6.0 / (rows + cols)))
    return (torch.rand(rows, cols, generator=generator) * 2.0 - 1.0) * limit


def grid_search(
    model: TrainableRecommender | Any,
    grid: Mapping[str, Sequence[Any]],
    split: Split,
    features: Mapping[str, ItemFeatures] | None = None,
    metric: str = "recall",
    k: int = 20,
) -> tuple[Recommender, pd.DataFrame]:
    """Fit ``model.clone(**combo)`` for every combination in ``grid``; select on validation only.

    A thin user of the runner's search (:func:`benchmark.search.study.run_search` with the grid
    sampler, in memory, no pruning), kept for scripts. ``model`` is an unfitted template (its
    parameters are the fixed ones); a grid key is a constructor parameter (``k``) or
    ``train.<key>`` for a trainer setting (``train.lr``). Returns the best fitted model and a table
    with one row per combination (its values and validation ``metric@k``), best first; ties keep
    the earlier trial.
    """
    from benchmark.search import SearchBudget, SearchConfig, Space
    from benchmark.search.study import Validation, run_search

    space = Space.parse({key: list(values) for key, values in grid.items()}, "grid")

    def make(assignment: Mapping[str, Any]) -> Any:
        own = {n: v for n, v in assignment.items() if not n.startswith("train.")}
        train = {n.removeprefix("train."): v for n, v in assignment.items() if n.startswith("train.")}
        return model.clone(**own, **({"train": train} if train else {}))

    target = Validation(split, features or {}, metric, k)
    policy = SearchConfig(sampler="grid", trials=None, metric=f"{metric}@{k}", pruning=False)
    outcome = run_search(make, space, target, policy, SearchBudget(), keep_best=True)
    done = outcome.trace[outcome.trace["state"] == "COMPLETE"]
    rows = [{**json.loads(p), f"valid_{target.key}": v} for p, v in zip(done["params"], done["value"])]
    table = pd.DataFrame(rows, columns=[*grid, f"valid_{target.key}"])
    table = table.sort_values(f"valid_{target.key}", ascending=False, kind="stable").reset_index(drop=True)
    return outcome.best_model, table
