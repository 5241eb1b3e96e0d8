"""Lightning base for trained recommenders: one DataModule of (user, positive, negative) triples,
one LightningModule behind the :class:`~benchmark.recommender.Recommender` protocol.

A subclass implements three hooks:

- ``build(split, features)``: create its parameters (called at the start of ``fit``, after seeding);
- ``triplet_loss(users, pos, neg)``: the training loss of one batch of triples;
- ``score_users(users)``: raw scores ``[len(users), n_items]`` (no masking; the evaluator masks).

``fit`` seeds everything, builds a :class:`pytorch_lightning.Trainer` (CPU by default, reproducible
run to run; accelerator, progress bar and logger configurable), trains, evaluates on ``split.valid``
every ``eval_every`` epochs through the shared evaluator, stops after ``patience`` evaluations
without improvement and restores the best state (kept in memory). ``split.test`` is never read.

Negatives are drawn uniformly from the items a user has *not* interacted with in train, by
vectorised rejection sampling (whole epoch at once), afresh every epoch, from a seeded
``torch.Generator`` so two runs with one seed see the same triples.

Subclasses gather trained tensors by index with :func:`gather_rows`, never ``tensor[index]``:
the latter's CPU backward sums repeated rows in a thread-timing-dependent order, which made the
fusion models' results differ run to run.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from benchmark.features import ItemFeatures
from benchmark.recommender import Recommender
from benchmark.split import Split

log = logging.getLogger(__name__)

#: how many rejection rounds before giving up (each round redraws only the rejected draws)
_MAX_REJECTION_ROUNDS = 1000


class NegativeSampler:
    """Uniform negatives outside each user's train items, by vectorised rejection sampling.

    Train pairs are encoded as ``user * n_items + item`` in a sorted tensor, so membership of a
    whole batch of candidate pairs is one ``searchsorted``.
    """

    def __init__(self, users: torch.Tensor, items: torch.Tensor, n_items: int, generator: torch.Generator) -> None:
        self.n_items = int(n_items)
        self.generator = generator
        self.keys = torch.unique(users * self.n_items + items)  # sorted, unique
        counts = torch.bincount(users, minlength=int(users.max()) + 1 if len(users) else 0)
        full = torch.nonzero(counts >= self.n_items).flatten()
        if len(full):
            raise ValueError(
                f"{len(full)} user(s) (e.g. user_id {int(full[0])}) interacted with every item in train; "
                "no negative can be sampled for them"
            )

    def contains(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Whether each (user, item) pair is a train interaction."""
        q = users * self.n_items + items
        pos = torch.searchsorted(self.keys, q).clamp_max(max(len(self.keys) - 1, 0))
        return self.keys[pos] == q if len(self.keys) else torch.zeros_like(q, dtype=torch.bool)

    def sample(self, users: torch.Tensor) -> torch.Tensor:
        """One negative item per entry of ``users``."""
        neg = torch.randint(self.n_items, (len(users),), generator=self.generator)
        bad = self.contains(users, neg)
        for _ in range(_MAX_REJECTION_ROUNDS):
            if not bad.any():
                return neg
            idx = torch.nonzero(bad).flatten()
            neg[idx] = torch.randint(self.n_items, (len(idx),), generator=self.generator)
            bad[idx] = self.contains(users[idx], neg[idx])
        raise RuntimeError("negative sampling did not converge (users with almost every item in train?)")


class _EpochTriples(IterableDataset):
    """Yields whole batches ``(users, pos, neg)``; every pass (= epoch) reshuffles and resamples."""

    def __init__(
        self, users: torch.Tensor, items: torch.Tensor, sampler: NegativeSampler, batch_size: int, shuffle: bool
    ) -> None:
        self.users, self.items, self.sampler = users, items, sampler
        self.batch_size, self.shuffle = int(batch_size), shuffle

    def __len__(self) -> int:
        return (len(self.users) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        n = len(self.users)
        order = torch.randperm(n, generator=self.sampler.generator) if self.shuffle else torch.arange(n)
        users, items = self.users[order], self.items[order]
        neg = self.sampler.sample(users)
        for start in range(0, n, self.batch_size):
            stop = start + self.batch_size
            yield users[start:stop], items[start:stop], neg[start:stop]


class TripletDataModule(pl.LightningDataModule):
    """(user, positive, negative) triples from ``split.train``, one negative per train pair.

    Duplicate (user, item) rows in train are collapsed, so each observed pair is one positive
    per epoch. Batches are built by tensor slicing (no per-sample Python), which keeps the
    per-step overhead close to a hand-written loop.
    """

    def __init__(self, split: Split, batch_size: int = 1024, seed: int = 0, shuffle: bool = True) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.split = split
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.generator = torch.Generator().manual_seed(self.seed)
        pairs = np.unique(split.train[["user_id", "item_id"]].to_numpy(dtype=np.int64), axis=0)
        if not len(pairs):
            raise ValueError("split.train is empty: nothing to train on")
        self.users = torch.from_numpy(np.ascontiguousarray(pairs[:, 0]))
        self.items = torch.from_numpy(np.ascontiguousarray(pairs[:, 1]))
        self.sampler = NegativeSampler(self.users, self.items, split.n_items, self.generator)

    @property
    def n_pairs(self) -> int:
        return len(self.users)

    def train_dataloader(self) -> DataLoader:
        data = _EpochTriples(self.users, self.items, self.sampler, self.batch_size, self.shuffle)
        return DataLoader(data, batch_size=None, num_workers=0)


class _ValidationSelection(pl.Callback):
    """Evaluates on ``split.valid`` every ``every`` epochs, keeps the best state, stops early."""

    def __init__(self, split: Split, metric: str, k: int, every: int, patience: int, eval_batch_size: int) -> None:
        self.split, self.metric, self.k = split, metric, int(k)
        self.every, self.patience, self.eval_batch_size = int(every), int(patience), int(eval_batch_size)
        self.key = f"{metric}@{self.k}"
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


class TrainableRecommender(pl.LightningModule):
    """LightningModule base implementing ``fit(split, features) -> self`` and ``score(user_ids)``.

    Common parameters (every subclass passes them through):
    ``lr``, ``weight_decay`` (Adam's, on top of a model's own L2 terms), ``batch_size``,
    ``max_epochs``, ``eval_every`` (epochs between validation checks), ``patience`` (checks
    without improvement before stopping), ``metric``/``eval_k`` (selection metric, default recall@20),
    ``seed``, ``accelerator``/``devices`` (Lightning's), ``deterministic`` (torch's deterministic-algorithms
    mode, for GPU runs; CPU runs are reproducible without it),
    ``enable_progress_bar``, ``logger`` (a Lightning logger given by the runner; default none),
    ``gradient_clip_val``, ``eval_batch_size`` (users per ``score`` call during validation).
    """

    #: feature names this model reads (set per instance by subclasses)
    required_features: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        batch_size: int = 1024,
        max_epochs: int = 50,
        eval_every: int = 1,
        patience: int = 5,
        metric: str = "recall",
        eval_k: int = 20,
        seed: int = 0,
        accelerator: str = "cpu",
        devices: int | str | Sequence[int] = 1,
        deterministic: bool | None = None,
        enable_progress_bar: bool = False,
        logger: Any = None,
        gradient_clip_val: float | None = None,
        eval_batch_size: int = 1024,
        **model_params: Any,
    ) -> None:
        super().__init__()
        if max_epochs < 1 or eval_every < 1 or patience < 1:
            raise ValueError("max_epochs, eval_every and patience must all be >= 1")
        self.params: dict[str, Any] = dict(
            model_params,
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            max_epochs=max_epochs,
            eval_every=eval_every,
            patience=patience,
            metric=metric,
            eval_k=eval_k,
            seed=seed,
            accelerator=accelerator,
            devices=devices,
            deterministic=deterministic,
            enable_progress_bar=enable_progress_bar,
            gradient_clip_val=gradient_clip_val,
            eval_batch_size=eval_batch_size,
        )
        # not ``self.logger``: LightningModule owns that name (the trainer's logger)
        self._external_logger = logger
        self.n_users = 0
        self.n_items = 0
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.valid_history: list[dict[str, float]] = []
        self.epoch_times: list[float] = []
        self._cache: dict[str, torch.Tensor] = {}

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
    def check_features(self, features: Mapping[str, ItemFeatures], split: Split) -> None:
        for name in self.required_features:
            if name not in features:
                raise KeyError(
                    f"{type(self).__name__} needs item features {name!r}; available: {sorted(features) or 'none'}"
                )
            features[name].check_aligned(split.n_items)

    def fit(self, split: Split, features: Mapping[str, ItemFeatures] | None = None) -> TrainableRecommender:
        """Train on ``split.train``, select the best epoch on ``split.valid``, restore it."""
        features = features or {}
        p = self.params
        self.check_features(features, split)
        pl.seed_everything(p["seed"], workers=True, verbose=False)
        self.n_users, self.n_items = split.n_users, split.n_items
        self.build(split, features)
        data = TripletDataModule(split, batch_size=p["batch_size"], seed=p["seed"])
        selection = _ValidationSelection(
            split, p["metric"], p["eval_k"], p["eval_every"], p["patience"], p["eval_batch_size"]
        )
        timer = _EpochTimer()
        # CPU runs are reproducible without torch's deterministic mode as long as trained tensors
        # are gathered with gather_rows (index_select/index_add_, deterministic on CPU) and not
        # with tensor[index] (racy parallel accumulation in backward); tests fit twice with
        # several threads and compare the states bit for bit. That mode costs ~4× per step (it
        # NaN-fills new memory), so it is opt-in (GPU runs).
        deterministic = bool(p["deterministic"])
        trainer = pl.Trainer(
            accelerator=p["accelerator"],
            devices=p["devices"],
            max_epochs=p["max_epochs"],
            deterministic=deterministic,
            enable_progress_bar=p["enable_progress_bar"],
            enable_checkpointing=False,
            enable_model_summary=False,
            logger=self._external_logger if self._external_logger is not None else False,
            callbacks=[timer, selection],
            num_sanity_val_steps=0,
            limit_val_batches=0,
            gradient_clip_val=p["gradient_clip_val"],
            log_every_n_steps=50,
        )
        with warnings.catch_warnings():
            # our IterableDataset yields whole batches in one process; its __len__ is exact
            warnings.filterwarnings("ignore", message=".*IterableDataset.*has `__len__` defined")
            trainer.fit(self, datamodule=data)
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

    def set_logger(self, logger: Any) -> None:
        """Send training curves (``train/loss``, ``valid/<metric>@k``) to a Lightning logger;
        the runner passes its W&B/CSV/TensorBoard logger here before ``fit``."""
        self._external_logger = logger

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
        """Class, parameters and the validation selection outcome, for the results' provenance."""
        return {
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "params": {k: v for k, v in self.params.items()},
            "best_epoch": self.best_epoch,
            "best_valid": self.best_value,
            "valid_history": self.valid_history,
            "state_sha256": state_checksum(self),
        }

    # ------------------------------------------------------------------ Lightning hooks
    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        users, pos, neg = batch
        loss = self.triplet_loss(users, pos, neg)
        self.log("train/loss", loss.detach(), on_step=False, on_epoch=True, batch_size=len(users))
        return loss

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._cache.clear()  # parameters are about to change

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.params["lr"], weight_decay=self.params["weight_decay"])

    def cached(self, key: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Item-side tensors reused across ``score`` calls while parameters do not change."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]


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
    factory: Callable[..., Recommender],
    grid: Mapping[str, Sequence[Any]],
    split: Split,
    features: Mapping[str, ItemFeatures] | None = None,
    metric: str = "recall",
    k: int = 20,
    fixed: Mapping[str, Any] | None = None,
) -> tuple[Recommender, pd.DataFrame]:
    """Fit ``factory(**fixed, **combo)`` for every combination in ``grid``; select on validation only.

    Returns the best fitted model and a table with one row per combination (its parameters and
    validation ``metric@k``), best first. Ties keep the earlier combination in grid order.
    """
    from benchmark.evaluation import evaluate

    features = features or {}
    names = list(grid)
    rows: list[dict[str, Any]] = []
    best: tuple[float, Recommender] | None = None
    key = f"{metric}@{k}"
    for values in itertools.product(*(grid[n] for n in names)):
        combo = dict(zip(names, values))
        model = factory(**dict(fixed or {}), **combo)
        model.fit(split, features)
        value = float(evaluate(model, split, part="valid", ks=(k,), metrics=(metric,), progress=False).means()[key])
        rows.append({**combo, f"valid_{key}": value})
        log.info("grid %s: valid %s = %.5f", combo, key, value)
        if best is None or value > best[0]:
            best = (value, model)
    if best is None:
        raise ValueError("grid is empty")
    table = pd.DataFrame(rows).sort_values(f"valid_{key}", ascending=False, kind="stable").reset_index(drop=True)
    return best[1], table
