"""Training triples: uniform negatives outside each user's train items, a seeded DataModule."""

from __future__ import annotations

import pytest
import torch

from baselines.triplets import NegativeSampler, TripletDataModule, _EpochTriples
from benchmark.demo.synthetic import make_synthetic


@pytest.fixture(scope="module")
def data():
    return make_synthetic(500, 250, 16, seed=3)


def test_negative_sampler_excludes_train_items_and_is_uniform():
    # user 0 owns items 0..7 of 10; user 1 owns item 9
    users = torch.tensor([0] * 8 + [1])
    items = torch.tensor(list(range(8)) + [9])
    s = NegativeSampler(users, items, 10, torch.Generator().manual_seed(0))
    neg0 = s.sample(torch.zeros(20000, dtype=torch.long))
    assert set(neg0.tolist()) == {8, 9}
    share = (neg0 == 8).float().mean().item()
    assert 0.47 < share < 0.53  # uniform over the two allowed items
    neg1 = s.sample(torch.ones(9000, dtype=torch.long))
    assert 9 not in set(neg1.tolist()) and set(neg1.tolist()) == set(range(9))


def test_negative_sampler_rejects_user_with_every_item():
    with pytest.raises(ValueError, match="every item"):
        NegativeSampler(torch.tensor([0, 0, 0]), torch.tensor([0, 1, 2]), 3, torch.Generator())


def test_datamodule_triples_resampled_each_epoch_and_seeded(data):
    split, _ = data
    train = set(zip(split.train.user_id, split.train.item_id))

    def epochs(seed, n=2):
        dm = TripletDataModule(split, batch_size=128, seed=seed)
        out = []
        for _ in range(n):
            batches = [b for chunk in dm.train_dataloader() for b in chunk]
            u, i, j = (torch.cat(t) for t in zip(*batches))
            out.append((u, i, j))
        return dm, out

    dm, (e1, e2) = epochs(7)
    assert len(list(dm.train_dataloader())) == (dm.n_pairs + 127) // 128
    u, i, j = e1
    assert len(u) == dm.n_pairs == len(train)
    assert set(zip(u.tolist(), i.tolist())) == train  # each train pair exactly once per epoch
    assert not any((a, b) in train for a, b in zip(u.tolist(), j.tolist()))  # negatives are unseen
    assert not torch.equal(e1[2], e2[2])  # resampled every epoch
    _, (f1, f2) = epochs(7)
    assert all(torch.equal(a, b) for a, b in zip(e1 + e2, f1 + f2))  # seeded


def test_several_batches_per_item_and_ddp_slices_cover_the_single_process_batches(data):
    split, _ = data

    def batches(steps=1, rank=0, world=1):
        dm = TripletDataModule(split, batch_size=100, seed=5, steps_per_item=steps)
        ds = _EpochTriples(dm.users, dm.items, dm.sampler, 100, True, steps, rank, world)
        return list(ds)

    single = batches()
    chunked = batches(steps=4)
    assert [len(c) for c in chunked[:-1]] == [4] * (len(chunked) - 1) and len(chunked) == (len(single) + 3) // 4
    flat = [b for c in chunked for b in c]
    assert len(flat) == len(single)
    assert all(torch.equal(x, y) for a, b in zip(single, flat) for x, y in zip(a[0], b))
    ranks = [batches(rank=r, world=3) for r in range(3)]
    for k, whole in enumerate(single):
        parts = [ranks[r][k][0] for r in range(3)]
        assert max(len(p[0]) for p in parts) - min(len(p[0]) for p in parts) <= 1
        for col in range(3):  # users, positives, negatives: the ranks' slices, in order, are the batch
            assert torch.equal(torch.cat([p[col] for p in parts]), whole[0][col])
