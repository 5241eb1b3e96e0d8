"""The runner's hyper-parameter search: which model entries are tuned, over which space, and where
their studies live.

With an experiment ``search`` policy (:class:`benchmark.search.SearchConfig`), a model entry is
tuned over its own ``search`` space, or — ``spaces: shipped``, the default — the space its model
ships (the factory's ``search_space``: a mapping, or a function of the entry's params, e.g.
RecBole's per model); ``search: none`` opts an entry out, and a model with nothing to tune
(popularity, random) is never searched. Every tuned model gets the policy's budget unless its
entry sets ``search_budget``.

Keys of a space (:mod:`benchmark.search.space`) are resolved against the registry here: a
constructor parameter (``k``; a dotted path into a mapping parameter such as
``config_overrides.embedding_size``), ``train.<key>`` for a trainer setting, or a bare trainer key
(``lr`` → ``train.lr``) where the model has no parameter of that name.

Files, under the run directory::

    search/optuna.db       Optuna's RDB storage (SQLite): one study per model entry, so a killed
                           search resumes trial by trial (:mod:`benchmark.search.study`)
    search/<model>.parquet the trace, one row per trial (schema: ``benchmark.search.study.TRACE_COLUMNS``)
    search/<model>.json    the summary (sampler, budget, trials used, pruned, best params and value);
                           written last, so its presence means the search is done

The chosen assignment then applies to every seed's unit of that entry (each re-trained), and the
summary goes into each unit record (``search``) and ``provenance.json``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.errors import ConfigError
from benchmark.io import read_json, write_json, write_parquet
from benchmark.registry import MODELS
from benchmark.search import SearchConfig, Space
from benchmark.train_config import TrainConfig, check_partial

if TYPE_CHECKING:
    from benchmark.runner.config import ModelConfig
    from benchmark.runner.stages.units import UnitInputs

SEARCH_DIR = "search"
STORAGE = "optuna.db"
#: ``models[i].search`` values that are not a space: the shipped one, or none
SPACE_WORDS: tuple[str, ...] = ("shipped", "none")
_TRAIN_KEYS = frozenset(f.name for f in dataclasses.fields(TrainConfig))


def shipped_space(model: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The space ``model`` ships (empty when it has none): its factory's ``search_space``."""
    raw = MODELS.attribute(model, "search_space", None)
    if raw is None:
        return {}
    return dict(raw(dict(params)) if callable(raw) else raw)


def entry_space(mc: ModelConfig, policy: SearchConfig | None, where: str) -> Space | None:
    """The space ``mc`` is searched over under ``policy``, keys resolved and values checked;
    ``None`` when it is not searched."""
    if policy is None:
        return None
    raw: Any = mc.search
    if raw is None:
        raw = "shipped" if policy.spaces == "shipped" else "none"
    if isinstance(raw, str):
        if raw not in SPACE_WORDS:
            raise ConfigError(
                f"{where}: {raw!r} is not allowed; give a space mapping or one of {', '.join(SPACE_WORDS)}"
            )
        if raw == "none":
            return None
        raw = shipped_space(mc.model, mc.params)
    space = Space.parse({resolve_key(mc.model, str(k), f"{where}.{k}"): v for k, v in raw.items()}, where)
    for dim in space:
        for value in dim.values:
            check_value(mc.model, dim.key, value, f"{where}.{dim.key}")
    return space or None


def resolve_key(model: str, key: str, where: str) -> str:
    """A space key in its canonical form (``train.<key>`` for trainer settings), or a ConfigError."""
    params = MODELS.parameters(model)
    takes_train = "train" in params
    head, _, rest = key.partition(".")
    own = [p for p in params if p not in MODELS.reserved]
    if head == "train":
        if not takes_train:
            raise ConfigError(f"{where}: model {model!r} takes no trainer settings")
        if rest not in _TRAIN_KEYS:
            raise ConfigError(f"{where}: unknown trainer key {rest!r}; allowed: {', '.join(sorted(_TRAIN_KEYS))}")
        return key
    if head in MODELS.reserved:
        raise ConfigError(f"{where}: {MODELS.reserved[head]}")
    if head in own:
        return key
    if not rest and takes_train and head in _TRAIN_KEYS:
        return f"train.{head}"
    allowed = own + (["train.<key>"] if takes_train else [])
    raise ConfigError(f"{where}: not a parameter of model {model!r}; allowed: {', '.join(allowed) or 'none'}")


def check_value(model: str, key: str, value: Any, where: str) -> None:
    """A value the model's parameter or the trainer setting accepts (types and allowed values)."""
    head, _, rest = key.partition(".")
    if head == "train":
        check_partial({rest: value}, where.rsplit(".", 1)[0])
    elif not rest:
        MODELS.check_params(model, {head: value}, where.rsplit(".", 1)[0])


def apply_assignment(mc: ModelConfig, assignment: Mapping[str, Any]) -> ModelConfig:
    """``mc`` with a search's assignment applied: own keys into ``params`` (dotted keys into the
    nested mapping), ``train.<key>`` into the entry's ``train``."""
    params = copy.deepcopy(mc.params)
    train = dict(mc.train)
    for key, value in assignment.items():
        head, _, rest = key.partition(".")
        if head == "train":
            train[rest] = value
            continue
        node = params
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return dataclasses.replace(mc, params=params, train=train)


def search_paths(run_dir: Path, key: str) -> tuple[Path, Path, str]:
    """(trace, summary, storage URL) of a model entry whose file-safe name is ``key``."""
    d = Path(run_dir) / SEARCH_DIR
    return d / f"{key}.parquet", d / f"{key}.json", f"sqlite:///{(d / STORAGE).resolve()}"


def tune_entry(
    mc: ModelConfig,
    seed: int,
    policy: SearchConfig | None,
    train_layer: Mapping[str, Any],
    inputs: UnitInputs,
    where: str,
) -> tuple[ModelConfig, dict[str, Any] | None]:
    """``mc`` with its chosen assignment, and the search summary (``None`` if not searched).

    A finished search (its summary file exists) is read back, not re-run; an unfinished one
    resumes from its study. Trials train with ``seed`` and are scored on validation only.
    """
    from benchmark.runner.rundir import Unit
    from benchmark.search.study import Validation, run_search

    space = entry_space(mc, policy, where)
    if space is None or policy is None:
        return mc, None
    trace_path, summary_path, storage = search_paths(inputs.run_dir, Unit(mc.name, None).key)
    if summary_path.is_file():
        summary = read_json(summary_path)
    else:
        summary_path.parent.mkdir(parents=True, exist_ok=True)
        name, k = policy.metric_key
        ev = inputs.evaluation
        target = Validation(inputs.split, inputs.feats, name, k, valid_users(inputs), ev.batch_size, ev.device)
        budget = policy.budget_for(mc.search_budget)
        outcome = run_search(
            lambda a: _make_trial_model(apply_assignment(mc, a), seed, train_layer),
            space,
            target,
            policy,
            budget,
            storage=storage,
            study_name=mc.name,
        )
        summary = {"model": mc.name, "budget_policy": budget.describe(), **outcome.summary}
        write_parquet(trace_path, outcome.trace)
        write_json(summary_path, summary)  # last: its presence marks the search done
    return apply_assignment(mc, summary["best_params"]), summary


def _make_trial_model(mc: ModelConfig, seed: int, train_layer: Mapping[str, Any]) -> Any:
    """A trial's model, created exactly as a unit's (same seeding, same trainer layers)."""
    from benchmark.runner.stages.units import new_model, unit_train

    model, _ = new_model(mc, seed, unit_train(mc, train_layer), pass_seed=MODELS.accepts(mc.model, "seed"))
    return model


def valid_users(inputs: UnitInputs) -> Any:
    """The validation users the run evaluates (``evaluation.users_with_feature``), or ``None``: all."""
    from benchmark.runner.stages.units import users_with_feature

    ev = inputs.evaluation
    return (
        users_with_feature(inputs.split, inputs.feats[ev.users_with_feature], "valid")
        if ev.users_with_feature
        else None
    )


def search_summaries(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Every finished search of a run directory, by model entry name."""
    d = Path(run_dir) / SEARCH_DIR
    out: dict[str, dict[str, Any]] = {}
    for p in sorted(d.glob("*.json")) if d.is_dir() else []:
        rec = read_json(p)
        out[str(rec.get("model", p.stem))] = rec
    return out


def search_provenance(cfg: Any, run_dir: Path) -> dict[str, Any]:
    """``provenance.json``'s ``search``: the policy and each tuned entry's summary (``None``: no search)."""
    if cfg.search is None:
        return {"policy": None, "models": {}}
    from benchmark.configuration import to_dict

    return {"policy": to_dict(cfg.search), "models": search_summaries(run_dir)}
