"""Issue 10's check on real data: on the Gift_Cards 2018 5-core split (protocol mmrec, seed 0),
with one stated budget for every tuned model, tuned BPR-MF reaches a validation-tuned Cornac BPR's
test Recall@20 within noise, and RecBole's BPR through the adapter is no longer below random.

Cornac's BPR (an independent implementation, Cython SGD) runs through the same runner, the same
search policy and the same budget, over its learning rate, iterations and factors; every model is
selected on validation only and scored by the harness's evaluator."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import torch

from benchmark.configuration import from_dict
from benchmark.features import ItemFeatures
from benchmark.recommender import BaseRecommender
from benchmark.registry import register_model
from benchmark.runner.config import ExperimentConfig
from benchmark.runner.pipeline import run_experiment
from benchmark.runner.results import RunResults
from benchmark.split import Split

pytestmark = [pytest.mark.slow, pytest.mark.realdata]

BUDGET = 16  # trials per tuned model, the same for all three


@register_model("test-cornac-bpr")
class CornacBPR(BaseRecommender):
    """Cornac's BPR trained on ``split.train``; items Cornac never saw score ``-inf``."""

    search_space: ClassVar[dict[str, Any]] = {
        "k": [10, 20, 50, 100],
        "max_iter": [50, 100, 200, 500],
        "learning_rate": [0.001, 0.005, 0.01, 0.05],
    }

    def __init__(
        self, k: int = 10, max_iter: int = 100, learning_rate: float = 0.001, lambda_reg: float = 0.01, seed: int = 0
    ):
        super().__init__(k=k, max_iter=max_iter, learning_rate=learning_rate, lambda_reg=lambda_reg, seed=seed)

    def fit(self, split: Split, features: Mapping[str, ItemFeatures]) -> CornacBPR:
        import cornac
        from cornac.data import Dataset

        super().fit(split, features)
        tr = split.train
        data = Dataset.from_uir(
            list(zip(tr["user_id"].astype(str), tr["item_id"].astype(str), np.ones(len(tr)))), seed=self.params["seed"]
        )
        self.model = cornac.models.BPR(verbose=False, **self.params).fit(data)
        self.users = data.uid_map
        self.cols = np.array([data.iid_map.get(str(i), -1) for i in range(split.n_items)])
        return self

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        known = torch.from_numpy(self.cols >= 0)
        out = torch.full((len(user_ids), self.n_items), float("-inf"))
        for row, u in enumerate(user_ids.tolist()):
            s = self.model.score(self.users[str(u)])
            out[row, known] = torch.from_numpy(np.asarray(s)[self.cols[self.cols >= 0]]).float()
        return out


def test_tuned_bpr_matches_tuned_cornac_and_recbole_beats_random(shared_data: Path, tmp_path: Path, one_torch_thread):
    logging.getLogger("benchmark").setLevel(logging.WARNING)
    d = shared_data / "2018-Gift_Cards"
    cfg = from_dict(
        ExperimentConfig,
        {
            "experiment": "gift-cards-tuned",
            "seeds": [0],
            "dataset": {
                "name": "gift-cards",
                "source": "files",
                "release": "2018",
                "reviews": str(d / "Gift_Cards_5.json.gz"),
                "meta": str(d / "meta_Gift_Cards.json.gz"),
                "protocol": "mmrec",
            },
            "models": [
                {"name": "BPR-MF", "model": "bpr"},
                {"name": "Cornac BPR", "model": "test-cornac-bpr"},
                {"name": "RecBole BPR", "model": "recbole-bpr"},
                # the same models untuned (their defaults), for the record: not asserted on
                {"name": "BPR-MF defaults", "model": "bpr", "search": "none"},
                {"name": "RecBole BPR defaults", "model": "recbole-bpr", "search": "none"},
                {"name": "Random", "model": "random"},
                {"name": "Popularity", "model": "popularity"},
            ],
            "search": {"sampler": "tpe", "trials": BUDGET, "metric": "recall@20", "seed": 0},
            "evaluation": {"ks": [20], "metrics": ["recall", "ndcg"], "subsets": False},
            "statistics": {"baseline": "Cornac BPR"},
            "logging": {"logger": "none"},
            "results_dir": str(tmp_path / "results"),
            "cache_dir": str(tmp_path / "cache"),
        },
    )
    result = run_experiment(cfg)
    res = RunResults.load(result.run_dir)
    test = {m: res.per_user(m).set_index("user_id")["recall@20"] for m in res.models}
    summaries = {m: res.units[m][0].record["search"] for m in ("BPR-MF", "Cornac BPR", "RecBole BPR")}
    assert all(s["trials"] == BUDGET for s in summaries.values())  # the same stated budget
    diff = (test["BPR-MF"] - test["Cornac BPR"]).dropna()
    se = float(diff.std(ddof=1) / np.sqrt(len(diff)))
    numbers = {m: round(float(v.mean()), 4) for m, v in test.items()}
    print(f"\ntest recall@20 with {BUDGET} trials each: {numbers}; BPR-MF - Cornac = {diff.mean():+.4f} (SE {se:.4f})")
    print({m: s["best_params"] for m, s in summaries.items()})
    # within noise: not worse than Cornac by more than two standard errors of the paired difference
    assert diff.mean() > -2 * se, numbers
    # RecBole's BPR, tuned, is no longer below random (it was 0.141 vs 0.150 with RecBole's defaults)
    assert numbers["RecBole BPR"] > numbers["Random"] + 0.1, numbers
    below_random = [
        w
        for w in _health(result.run_dir)
        if w["check"] == "not_above_reference" and "random" in w["details"]["references"]
    ]
    print([f"{w['model']}: {w['message']}" for w in _health(result.run_dir)])
    assert not [w for w in below_random if w["model"] in summaries], below_random
    # untuned, RecBole's BPR is below random on validation as the issue found, and the leaderboard says so
    assert [w["model"] for w in below_random] == ["RecBole BPR defaults"], below_random
    assert "| RecBole BPR defaults ⚠ |" in (result.run_dir / "leaderboard.md").read_text(encoding="utf-8")


def _health(run_dir: Path) -> list[dict]:
    import json

    return json.loads((run_dir / "health.json").read_text())["warnings"]
