"""A trained model under Lightning DDP, 2 CPU processes (gloo): the ranks split every batch and
DDP averages their gradients, so training follows the single-process run — the same steps on the
same triples, only the order of float additions differs. Tolerance: parameters within 1e-4
(relative to their scale) after 3 epochs, validation/test Recall@20 equal to 1e-3."""

from __future__ import annotations

import pytest
import torch

from benchmark.demo.synthetic import make_synthetic
from benchmark.evaluation import evaluate
from benchmark.registry import create_model

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch without distributed")


def test_vbpr_on_two_processes_matches_one(one_torch_thread):
    split, feats = make_synthetic(300, 120, 16, seed=4)
    # weight decay makes the step depend on the gradient's scale (Adam alone would not notice a wrong loss scale)
    base = {
        "max_epochs": 3,
        "eval_every": 3,
        "patience": 1,
        "batch_size": 64,
        "accelerator": "cpu",
        "weight_decay": 0.05,
    }
    one = create_model("vbpr", feature="clip_image", lambda_e=0.01, seed=1, train=base).fit(split, feats)
    two = create_model(
        "vbpr", feature="clip_image", lambda_e=0.01, seed=1, train={**base, "devices": 2, "strategy": "ddp_fork"}
    ).fit(split, feats)
    assert two.best_epoch == one.best_epoch == 3 and len(two.epoch_times) == 3
    for (name, a), (_, b) in zip(one.state_dict().items(), two.state_dict().items()):
        scale = max(1.0, float(a.abs().max()))
        assert torch.allclose(a, b, atol=1e-4 * scale, rtol=0), name
        assert not torch.equal(a, torch.zeros_like(a)) or name == "item_features"
    for part in ("valid", "test"):
        r1 = evaluate(one, split, part=part, ks=(20,), metrics=("recall",), progress=False).means()["recall@20"]
        r2 = evaluate(two, split, part=part, ks=(20,), metrics=("recall",), progress=False).means()["recall@20"]
        assert abs(r1 - r2) <= 1e-3, (part, r1, r2)
    assert abs(two.best_value - one.best_value) <= 1e-3
