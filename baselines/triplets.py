"""(user, positive, negative) training triples for the trained recommenders.

Negatives are drawn uniformly from the items a user has *not* interacted with in train, by
vectorised rejection sampling (whole epoch at once), afresh every epoch, from a seeded
``torch.Generator`` so two runs with one seed see the same triples — and so do the ranks of a
DDP run, each keeping its slice of every batch.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, IterableDataset

from benchmark.split import Split

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


Triple = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class _EpochTriples(IterableDataset):
    """Yields lists of ``steps`` consecutive batches ``(users, pos, neg)``; every pass (= epoch)
    reshuffles and resamples.

    Several batches per item let the trainer run that many optimiser steps per Lightning step
    (its per-step machinery costs more than a small model's step). With ``world > 1`` (DDP) every
    rank draws the same epoch (same generator) and keeps its ``rank``-th slice of each batch, so
    the ranks together see exactly the single-process batches.
    """

    def __init__(
        self,
        users: torch.Tensor,
        items: torch.Tensor,
        sampler: NegativeSampler,
        batch_size: int,
        shuffle: bool,
        steps: int = 1,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.users, self.items, self.sampler = users, items, sampler
        self.batch_size, self.shuffle = int(batch_size), shuffle
        self.steps, self.rank, self.world = int(steps), int(rank), int(world)

    def n_batches(self) -> int:
        return (len(self.users) + self.batch_size - 1) // self.batch_size

    def __len__(self) -> int:
        return (self.n_batches() + self.steps - 1) // self.steps

    def __iter__(self) -> Iterator[list[Triple]]:
        n = len(self.users)
        order = torch.randperm(n, generator=self.sampler.generator) if self.shuffle else torch.arange(n)
        users, items = self.users[order], self.items[order]
        neg = self.sampler.sample(users)
        chunk: list[Triple] = []
        for start in range(0, n, self.batch_size):
            stop = min(n, start + self.batch_size)
            if self.world > 1:  # this rank's share of the batch (contiguous, sizes differ by at most one)
                bounds = torch.linspace(start, stop, self.world + 1).round().long().tolist()
                start, stop = bounds[self.rank], bounds[self.rank + 1]
            chunk.append((users[start:stop], items[start:stop], neg[start:stop]))
            if len(chunk) == self.steps:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


class TripletDataModule(pl.LightningDataModule):
    """(user, positive, negative) triples from ``split.train``, one negative per train pair.

    Duplicate (user, item) rows in train are collapsed, so each observed pair is one positive
    per epoch. Batches are built by tensor slicing (no per-sample Python), which keeps the
    per-step overhead close to a hand-written loop.
    """

    def __init__(
        self, split: Split, batch_size: int = 1024, seed: int = 0, shuffle: bool = True, steps_per_item: int = 1
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.split = split
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.steps_per_item = int(steps_per_item)
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
        """Lists of ``steps_per_item`` batches; under DDP each rank's slice of every batch (one
        batch per item: DDP synchronises gradients once per forward)."""
        trainer = getattr(self, "trainer", None)
        world = int(trainer.world_size) if trainer is not None else 1
        rank = int(trainer.global_rank) if trainer is not None else 0
        steps = self.steps_per_item if world == 1 else 1
        data = _EpochTriples(self.users, self.items, self.sampler, self.batch_size, self.shuffle, steps, rank, world)
        return DataLoader(data, batch_size=None, num_workers=0)
