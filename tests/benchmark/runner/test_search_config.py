"""Search and health sections of a config: keys resolved against each model, errors that name the
key and what is allowed, and a shipped search space for every registered model."""

from __future__ import annotations

import pytest

from benchmark.configuration import ConfigError, from_dict
from benchmark.health import REFERENCE_MODELS
from benchmark.registry import MODELS
from benchmark.runner.config import ExperimentConfig
from benchmark.runner.search import apply_assignment, entry_space, shipped_space
from benchmark.search import SearchConfig


def config(models: list[dict], search: dict | None = None, **extra) -> dict:
    cfg = {
        "experiment": "t",
        "dataset": {"source": "demo"},
        "features": [
            {"name": "img", "producer": "pixels"},
            {"name": "txt", "producer": "pixels"},
        ],
        "models": models,
        **extra,
    }
    if search is not None:
        cfg["search"] = search
    return cfg


def check(cfg: dict) -> ExperimentConfig:
    return from_dict(ExperimentConfig, cfg)


def test_policy_defaults_and_entry_overrides():
    cfg = check(config([{"name": "B", "model": "bpr", "search_budget": {"trials": 40}}], {}))
    assert cfg.search == SearchConfig() and cfg.search.trials == 20 and cfg.search.sampler == "tpe"
    assert cfg.search.budget_for(cfg.models[0].search_budget).trials == 40
    assert check(config([{"name": "B", "model": "bpr"}])).search is None  # no section: nothing is tuned


@pytest.mark.parametrize(
    ("models", "search", "message"),
    [
        (
            [{"name": "B", "model": "bpr", "search": {"k": [8]}}],
            None,
            r"models\[0\]\.search: the experiment has no `search` section",
        ),
        (
            [{"name": "B", "model": "bpr", "search_budget": {"trials": 3}}],
            None,
            r"models\[0\]\.search_budget: the experiment has no",
        ),
        (
            [{"name": "B", "model": "bpr", "search": {"factors": [8]}}],
            {},
            r"models\[0\]\.search\.factors: not a parameter of model 'bpr'; allowed: k, lambda_w, lambda_b, item_bias, train.<key>",
        ),
        (
            [{"name": "B", "model": "bpr", "search": {"train.lrate": [0.1]}}],
            {},
            r"models\[0\]\.search\.train\.lrate: unknown trainer key 'lrate'; allowed: .*lr",
        ),
        (
            [{"name": "B", "model": "bpr", "search": {"seed": [1, 2]}}],
            {},
            r"models\[0\]\.search\.seed: seeds come from `seeds`",
        ),
        (
            [{"name": "K", "model": "itemknn", "params": {"feature": "img"}, "search": {"lr": [0.1]}}],
            {},
            r"models\[0\]\.search\.lr: not a parameter of model 'itemknn'; allowed: feature, neighbours, chunk_size$",
        ),
        (
            [{"name": "K", "model": "itemknn", "params": {"feature": "img"}, "search": {"train.lr": [0.1]}}],
            {},
            r"takes no trainer settings",
        ),
        (
            [{"name": "B", "model": "bpr", "search": {"train.patience": [0, 3]}}],
            {},
            r"models\[0\]\.search\.train\.patience: must be >= 1",
        ),
        (
            [{"name": "B", "model": "bpr", "search": {"lr": {"loguniform": [1e-4, 1e-1]}}}],
            {"sampler": "grid"},
            r"models\[0\]\.search: sampler grid needs a list of values for every key; continuous: train.lr",
        ),
        (
            [
                {
                    "name": "V",
                    "model": "vision-only",
                    "params": {"feature": "img"},
                    "search": {"feature": ["img", "nope"]},
                }
            ],
            {},
            r"models\[0\]\.search\.feature: feature 'nope' is not defined",
        ),
        (
            [{"name": "B", "model": "bpr", "search": "all"}],
            {},
            r"models\[0\]\.search: 'all' is not allowed; give a space mapping or one of shipped, none",
        ),
        (
            [{"name": "B", "model": "bpr"}],
            {"sampler": "bayes"},
            r"search\.sampler: 'bayes' is not allowed; allowed values: grid, random, tpe",
        ),
        ([{"name": "B", "model": "bpr"}], {"metric": "auc@10"}, r"search\.metric: 'auc@10' is not metric@K"),
        ([{"name": "B", "model": "bpr"}], {"trials": None}, r"search\.trials/timeout_s: give a budget"),
        ([{"name": "B", "model": "bpr"}], {"trials": 0}, r"search\.trials: must be >= 1"),
    ],
)
def test_mistakes_name_the_key(models, search, message):
    with pytest.raises(ConfigError, match=message):
        check(config(models, search))


def test_health_section_is_checked():
    with pytest.raises(ConfigError, match=r"health\.coverage_floor: a share of items in \[0, 1\]"):
        check(config([{"name": "B", "model": "bpr"}], health={"coverage_floor": 90}))
    with pytest.raises(ConfigError, match=r"health\.metric: 'recall@50' is not evaluated; allowed: recall@5"):
        check(config([{"name": "B", "model": "bpr"}], health={"metric": "recall@50"}))


def test_bare_trainer_keys_and_nested_keys_resolve():
    cfg = check(
        config(
            [
                {"name": "B", "model": "bpr", "search": {"lr": [0.01, 0.1], "k": [8, 16]}},
                {"name": "R", "model": "recbole-lightgcn", "search": {"config_overrides.n_layers": [1, 2]}},
            ],
            {},
        )
    )
    space = entry_space(cfg.models[0], cfg.search, "m")
    assert space is not None and space.keys == ["train.lr", "k"]
    tuned = apply_assignment(cfg.models[1], {"config_overrides.n_layers": 2, "train.lr": 0.01})
    assert tuned.params == {"config_overrides": {"n_layers": 2}} and tuned.train == {"lr": 0.01}
    assert cfg.models[1].params == {}  # the entry itself is not changed


def test_which_entries_are_searched():
    models = [
        {"name": "B", "model": "bpr"},
        {"name": "Pop", "model": "popularity"},
        {"name": "Off", "model": "bpr", "search": "none"},
        {"name": "Mine", "model": "bpr", "search": {"k": [8]}},
    ]
    shipped = check(config(models, {}))
    spaces = {m.name: entry_space(m, shipped.search, "m") for m in shipped.models}
    assert spaces["B"].keys == list(shipped_space("bpr", {})) and spaces["Pop"] is None
    assert spaces["Off"] is None and spaces["Mine"].keys == ["k"]
    listed = check(config(models, {"spaces": "listed"}))
    assert [m.name for m in listed.models if entry_space(m, listed.search, "m")] == ["Mine"]


def params_for(name: str, mmrec_src: str = "") -> dict:
    """Params that make a registered model's feature names valid in :func:`config`."""
    taken = MODELS.parameters(name)
    params: dict = {"mmrec_src": mmrec_src} if name.startswith("mmrec") else {}
    for key in ("feature", "text_feature", "image_feature"):
        if key in taken:
            params[key] = "img" if key != "text_feature" else "txt"
    if name == "recbole":
        params["model"] = "BPR"
    if name == "mmrec":
        params["model"] = "FREEDOM"
    return params


def test_every_registered_model_ships_a_valid_space(mmrec_src):
    """Every model except the reference baselines ships a space that resolves and whose values the
    model accepts; RecBole's include its learning rate, batch size and patience; MMRec's are the
    authors' grids (a model whose YAML lists no grid has nothing to search)."""
    from baselines.mmrec_adapter import MMREC_MODELS
    from baselines.mmrec_config import search_space as mmrec_grid

    shipped = [n for n in MODELS.names() if MODELS.get(n).__module__.split(".")[0] in ("baselines", "vlm4rec")]
    assert {"bpr", "vbpr", "itemknn", "vlm4rec", "recbole-bpr", "attention-fusion", "mmrec-freedom"} <= set(shipped)
    for name in shipped:  # the models this repository ships (other tests register their own)
        entry = {"name": name, "model": name, "params": params_for(name, str(mmrec_src))}
        cfg = check(config([entry], {}))
        space = entry_space(cfg.models[0], cfg.search, f"{name}.search")
        if name in REFERENCE_MODELS:
            assert space is None, name
            continue
        if name.startswith("mmrec"):
            model = {m.lower(): m for m in MMREC_MODELS}.get(name.removeprefix("mmrec-"), "FREEDOM")
            grid = {k if k.startswith("train.") else f"config.{k}" for k in mmrec_grid(model, mmrec_src)}
            assert set(space.keys if space else []) == grid, name
            continue
        assert space is not None and len(space.combinations()) > 1, name
        if name.startswith("recbole"):
            assert {"train.lr", "train.batch_size", "train.patience"} <= set(space.keys), name
    profile = entry_space(
        check(config([{"name": "V", "model": "vlm4rec", "params": {"feature": "img"}}], {})).models[0],
        SearchConfig(),
        "v",
    )
    assert profile is not None and {c["aggregation"] for c in profile.combinations()} == {
        "mean",
        "last_n",
        "exp_recency",
    }
