"""MMRec's models are searchable: their authors' grids (MMRec's model YAMLs) are the adapter's shipped
search spaces, and a search over one selects on validation with the validation curve reported."""

from __future__ import annotations

import json

import pytest

from benchmark.configuration import from_dict
from benchmark.demo.synthetic import make_synthetic
from benchmark.registry import create_model
from benchmark.runner.config import ModelConfig
from benchmark.runner.search import apply_assignment, entry_space, shipped_space
from benchmark.search import SearchConfig, Space
from benchmark.search.study import Validation, run_search

FAST = {"max_epochs": 2, "patience": 2, "batch_size": 256, "eval_batch_size": 256}


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


def test_shipped_space_is_the_authors_grid_in_the_runner_format(mmrec_src):
    src = {"mmrec_src": str(mmrec_src)}
    freedom = shipped_space("mmrec-freedom", src)
    assert freedom == {"config.dropout": [0.8, 0.9], "config.reg_weight": [0.0, 1e-5, 1e-4, 1e-3]}
    assert shipped_space("mmrec", {**src, "model": "FREEDOM"}) == freedom  # the generic name, model given
    lattice = shipped_space("mmrec-lattice", src)
    assert lattice["train.lr"] == [0.0001, 0.0005, 0.001, 0.005]  # MMRec's learning_rate is the trainer's
    mc = from_dict(ModelConfig, {"name": "F", "model": "mmrec-freedom", "params": src})
    space = entry_space(mc, SearchConfig(), "models[0].search")
    assert space is not None and len(space.combinations()) == 8
    chosen = apply_assignment(mc, {"config.dropout": 0.9, "train.lr": 0.01})
    assert chosen.params["config"] == {"dropout": 0.9} and chosen.train["lr"] == 0.01


def test_a_search_over_freedoms_grid_selects_on_validation_with_its_curve(mmrec_src):
    split, feats = make_synthetic(160, 90, 16, text_dim=12, seed=3)
    feats = {"image": feats["clip_image"], "text": feats["text"]}
    params = {"image_feature": "image", "text_feature": "text", "mmrec_src": str(mmrec_src)}
    mc = from_dict(ModelConfig, {"name": "F", "model": "mmrec-freedom", "params": params, "train": FAST})
    # the authors' dropout grid (two settings), reg_weight left at its default to keep the test short
    space = Space.parse({"config.dropout": shipped_space("mmrec-freedom", params)["config.dropout"]}, "s")

    def make(assignment):
        m = apply_assignment(mc, assignment)
        return create_model(m.model, **m.params, train=m.train)

    policy = SearchConfig(sampler="grid", trials=2, pruning=False)
    out = run_search(make, space, Validation(split, feats, "recall", 20), policy, keep_best=True)
    trace = out.trace
    assert list(trace["state"]) == ["COMPLETE", "COMPLETE"]
    assert (trace["n_checks"] == 2).all()  # the adapter reported both epochs' validation checks
    curves = [json.loads(c) for c in trace["curve"]]
    assert all([e for e, _ in c] == [1, 2] for c in curves)
    assert out.best_value == max(trace["value"])  # chosen on validation
    best = out.best_model.describe()
    assert best["best_valid"] == pytest.approx(out.best_value)
    assert best["mmrec"]["settings"]["dropout"] == out.best_params["config.dropout"]  # the choice reached MMRec
