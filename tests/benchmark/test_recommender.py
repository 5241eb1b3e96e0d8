"""The recommender contract, through the shared model tester (tests/fixtures/model_tester.py).

The tester is run on the README's plug-in example and the simple registered baselines, and each
of its checks is shown to fail on a model that breaks that rule.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import torch
from fixtures.model_tester import check_recommender
from fixtures.ranking import make_split
from plugin_example.my_plugin import MyRecommender

from benchmark.features import ItemFeatures
from benchmark.recommender import BaseRecommender
from benchmark.registry import create_model
from benchmark.split import Split


@pytest.mark.parametrize("normalize", [True, False])
def test_plugin_example_meets_the_contract(normalize: bool) -> None:
    model = check_recommender(lambda: MyRecommender(normalize=normalize))
    assert model.describe()["params"] == {"normalize": normalize}


@pytest.mark.parametrize("name", ["popularity", "itemknn", "random"])
def test_simple_baselines_meet_the_contract(name: str) -> None:
    split = make_split()
    image = torch.randn(split.n_items, 8, generator=torch.Generator().manual_seed(0))
    check_recommender(lambda: create_model(name), split, {"clip_image": ItemFeatures("clip_image", image)})


class _Broken(BaseRecommender):
    """Item popularity with one rule broken on purpose (``flaw``)."""

    def __init__(self, flaw: str = "") -> None:
        super().__init__(flaw=flaw)

    def fit(self, split: Split, features: Mapping[str, ItemFeatures]) -> _Broken:
        super().fit(split, features)
        part = split.test if self.params["flaw"] == "reads-test" else split.train
        self.pop = torch.bincount(torch.tensor(part["item_id"].to_numpy()), minlength=split.n_items).float()
        if self.params["flaw"] == "unseeded":
            self.pop = self.pop + torch.rand(split.n_items)
        return self

    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        flaw = self.params["flaw"]
        out = self.pop.expand(len(user_ids), -1).clone()
        if flaw == "batch-dependent":
            out = out + len(user_ids)
        elif flaw == "nan":
            out[0, 0] = float("nan")
        elif flaw == "shape":
            out = out[:, :-1]
        elif flaw == "int":
            out = out.long()
        return out


def test_the_reference_model_passes() -> None:
    check_recommender(lambda: _Broken())


@pytest.mark.parametrize(
    ("flaw", "message"),
    [
        ("reads-test", "depend on split.test"),
        ("unseeded", "same seed, different scores"),
        ("batch-dependent", "depend on the batch"),
        ("nan", "NaN"),
        ("shape", "expected"),
        ("int", "floating point"),
    ],
)
def test_each_broken_rule_is_caught(flaw: str, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_recommender(lambda: _Broken(flaw), make_split(seed=1))
