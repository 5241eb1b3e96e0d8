"""The search-space format: parsing with errors that name the key, conditions, enumeration, draws."""

from __future__ import annotations

import math

import optuna
import pytest

from benchmark.errors import ConfigError
from benchmark.profiles import PROFILE_SEARCH_SPACE
from benchmark.search import Space


def test_every_kind_parses_and_describes_back():
    raw = {
        "k": [16, 32],
        "lambda_w": {"categorical": [0.001, 0.01]},
        "train.lr": {"loguniform": [1e-4, 1e-1]},
        "train.weight_decay": {"uniform": [0.0, 0.001]},
        "neighbours": {"int": [5, 200], "log": True},
    }
    space = Space.parse(raw)
    assert space.keys == list(raw)
    assert [d.kind for d in space] == ["categorical", "categorical", "loguniform", "uniform", "int"]
    assert Space.parse(space.describe()) == space
    assert not space.finite and math.isinf(space.size())


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"k": []}, r"search\.k: give a non-empty list"),
        ({"k": [1, 1]}, r"search\.k: values repeat"),
        ({"lr": {"loguniform": [0.0, 1.0]}}, r"search\.lr\.loguniform: bounds must be > 0"),
        ({"lr": {"uniform": [1.0, 0.5]}}, r"low must be below high"),
        ({"lr": {"uniform": [0.1]}}, r"give \[low, high\]"),
        ({"n": {"int": [1.5, 4]}}, r"bounds must be integers"),
        ({"lr": {"normal": [0, 1]}}, r"give exactly one of categorical, loguniform, uniform, int"),
        ({"lr": 0.1}, r"give a list of values or one of"),
        ({"lr": {"uniform": [0, 1], "log": True}}, r"only for int"),
        (
            {"n": {"categorical": [1, 2], "when": {"agg": "x"}}},
            r"search\.n\.when\.agg: a condition names an earlier key",
        ),
        ({"agg": ["a", "b"], "n": {"categorical": [1], "when": {"agg": "c"}}}, r"'c'\] is not among agg's values"),
    ],
)
def test_bad_spaces_name_the_key(raw, message):
    with pytest.raises(ConfigError, match=message):
        Space.parse(raw)


def test_conditions_enumerate_only_distinct_settings():
    space = Space.parse(PROFILE_SEARCH_SPACE)
    combos = space.combinations()
    # mean once, last_n with each N, exp_recency with each half-life: 1 + 6 + 6
    assert len(combos) == 13 == space.size()
    assert combos[0] == {"aggregation": "mean"}
    assert {"aggregation": "last_n", "last_n": 5} in combos
    assert all(("decay" in c) == (c["aggregation"] == "exp_recency") for c in combos)
    assert all(("last_n" in c) == (c["aggregation"] == "last_n") for c in combos)
    # decays are the half-lives 1, 2, …, 32 items: 2^(-1/h)
    decays = sorted(c["decay"] for c in combos if "decay" in c)
    assert decays[0] == 0.5 and decays[-1] == pytest.approx(2 ** (-1 / 32), abs=1e-4)


def test_suggest_draws_only_active_keys_and_decodes_non_primitive_values():
    space = Space.parse(
        {
            "weights": [[0.5, 0.5], [0.25, 0.75]],
            "aggregation": ["mean", "last_n"],
            "last_n": {"categorical": [1, 5], "when": {"aggregation": "last_n"}},
            "neighbours": [None, 10],
        }
    )
    fixed = optuna.trial.FixedTrial(
        {"weights": "json:[0.25, 0.75]", "aggregation": "mean", "last_n": 5, "neighbours": None}
    )
    assert space.suggest(fixed) == {"weights": [0.25, 0.75], "aggregation": "mean", "neighbours": None}
    fixed = optuna.trial.FixedTrial(
        {"weights": "json:[0.5, 0.5]", "aggregation": "last_n", "last_n": 5, "neighbours": 10}
    )
    assert space.suggest(fixed) == {"weights": [0.5, 0.5], "aggregation": "last_n", "last_n": 5, "neighbours": 10}


def test_only_value_lists_enumerate():
    with pytest.raises(ConfigError, match="only a space of value lists"):
        Space.parse({"lr": {"loguniform": [1e-4, 1e-1]}}).combinations()
