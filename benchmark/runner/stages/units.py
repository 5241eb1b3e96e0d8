"""Units stage: every (model, seed) unit fitted, evaluated on valid then (once) on test, and
written atomically; a unit whose files exist is skipped, so a killed run resumes. A unit is
claimed with a lock while it runs (:func:`benchmark.io.file_lock`), so a second process working
on the same run directory skips it and computes the others, then waits for it. A unit record lists
the feature sets its model used (checksum, and whether they were final); one made with a
provisional feature set (e.g. descriptions that failed during an outage) is computed again by
the next run, with the features that run has. Every unit record carries the code that wrote it
(commit, dirty state, package versions); a resume that would mix code versions is refused,
naming the units, unless ``allow_mixed`` (:func:`~benchmark.runner.provenance.check_resume`).

Models whose constructor takes ``seed`` run once per seed (the model entry's ``seeds`` or the
experiment's); others once. Models whose constructor takes ``train`` get one
:class:`~benchmark.train_config.TrainConfig`: the class's ``train_defaults`` ← the experiment's
``train`` ← the model entry's ``train``.

With a search policy, a tuned entry's search (:mod:`benchmark.runner.search`) runs before its
first unit, on validation only; every seed's unit then re-trains the chosen assignment and records
the search summary. Each record also carries ``features_used`` (each feature the model reads and
the share of items it covers), for the health checks.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.evaluation.evaluator import EvalResult
from benchmark.features import ItemFeatures
from benchmark.io import file_lock, lock_path, write_json, write_parquet
from benchmark.registry import MODELS, create_model
from benchmark.runner.config import EvaluationConfig, ModelConfig, param_features
from benchmark.runner.costs import measure
from benchmark.runner.modes import evaluate_modes
from benchmark.runner.provenance import check_resume
from benchmark.runner.rundir import Unit
from benchmark.runner.tracking import Tracker
from benchmark.search import SearchConfig
from benchmark.split import Split
from benchmark.train_config import TrainConfig, resolve_train

log = logging.getLogger(__name__)

#: (unit name, config to record) → a tracker for that unit
TrackerFactory = Callable[[str, Mapping[str, Any]], Tracker]


def units_for(models: list[ModelConfig], seeds: list[int]) -> list[Unit]:
    """Stochastic models (constructor takes ``seed``) run once per seed; others once."""
    out: list[Unit] = []
    for m in models:
        if MODELS.accepts(m.model, "seed"):
            out.extend(Unit(m.name, s) for s in (m.seeds or seeds))
        else:
            out.append(Unit(m.name, None))
    return out


@dataclass
class UnitInputs:
    """What every unit of a run shares: the split, the features, how to evaluate, where to write,
    ``written_by`` (version, git commit and dirty state, package versions) copied into every unit
    record, and whether a resume may mix units of different code versions (``allow_mixed``)."""

    split: Split
    feats: Mapping[str, ItemFeatures]
    evaluation: EvaluationConfig
    run_dir: Path
    written_by: Mapping[str, Any] = field(default_factory=dict)
    allow_mixed: bool = False
    energy: bool = True  # measure each stage's kWh with CodeCarbon (benchmark.runner.costs)


def run_units(
    models: list[ModelConfig],
    seeds: list[int],
    train: Mapping[str, Any],
    inputs: UnitInputs,
    tracker_factory: TrackerFactory,
    search: SearchConfig | None = None,
) -> tuple[list[str], list[str]]:
    """Run every unit not yet done in ``inputs.run_dir``; returns (keys run, keys skipped as done).

    ``train`` is the experiment's trainer layer (model entries' own ``train`` go over it);
    ``search``: the experiment's search policy (tuned entries are searched before their units).
    """
    from tqdm.auto import tqdm

    from benchmark.runner.search import tune_entry

    by_name = {m.name: m for m in models}
    index = {m.name: i for i, m in enumerate(models)}
    tuned: dict[str, tuple[ModelConfig, dict[str, Any] | None]] = {}
    done: list[str] = []
    ran: list[str] = []
    busy: list[Unit] = []
    units = units_for(models, seeds)
    finished = [u for u in units if u.is_done(inputs.run_dir)]
    current = {u.key for u in finished if is_current(u, inputs.run_dir)}
    if inputs.written_by:
        records = [(u.key, json.loads(u.record_path(inputs.run_dir).read_text(encoding="utf-8"))) for u in finished]
        check_resume(records, inputs.written_by, len(current) < len(units), inputs.allow_mixed)

    def tune(name: str) -> tuple[ModelConfig, dict[str, Any] | None]:
        """The entry with its searched choice (searched once, before its first unit runs)."""
        if name not in tuned:
            first_seed = next((u.seed for u in units if u.model == name and u.seed is not None), 0)
            where = f"models[{index[name]}].search"
            tuned[name] = tune_entry(by_name[name], first_seed, search, train, inputs, where)
        return tuned[name]

    for unit in tqdm(units, desc="models", unit="run"):
        if unit.key in current:
            done.append(unit.key)
            continue
        with file_lock(lock_path(unit.record_path(inputs.run_dir)), blocking=False) as mine:
            if not mine:  # another process is computing it
                busy.append(unit)
                continue
            _claimed(unit, tune, train, inputs, tracker_factory, ran, done)
    for unit in busy:  # wait for the other process; compute the unit here if it stopped without it
        log.info("%s: computed by another process; waiting for it", unit.key)
        with file_lock(lock_path(unit.record_path(inputs.run_dir))):
            _claimed(unit, tune, train, inputs, tracker_factory, ran, done)
    return ran, done


def _claimed(
    unit: Unit,
    tune: Callable[[str], tuple[ModelConfig, dict[str, Any] | None]],
    train: Mapping[str, Any],
    inputs: UnitInputs,
    tracker_factory: TrackerFactory,
    ran: list[str],
    done: list[str],
) -> None:
    """Run a unit whose lock this process holds, unless it was finished meanwhile; ``tune`` gives
    its entry with the search's choice applied (and the search summary, ``None`` if not searched)."""
    if is_current(unit, inputs.run_dir):
        done.append(unit.key)
        return
    mc, search_summary = tune(unit.model)
    train_cfg = unit_train(mc, train)
    config: dict[str, Any] = {
        "model_name": unit.model,
        "model": mc.model,
        "params": mc.params,
        "seed": unit.seed,
        "split_fingerprint": inputs.split.fingerprint,
    }
    if train_cfg is not None:
        config["train"] = train_cfg.to_dict()
    if search_summary is not None:
        config["search"] = {"best_params": search_summary["best_params"], "trials": search_summary["trials"]}
    tracker = tracker_factory(unit.key, config)
    try:
        rec = run_unit(unit, mc, train_cfg, inputs, tracker, {"search": search_summary})
    finally:
        tracker.finish()
    ran.append(unit.key)
    log.info("%s: %s", unit.key, ", ".join(f"{k}={v:.4f}" for k, v in rec["test"].items()))


def is_current(unit: Unit, run_dir: Path) -> bool:
    """Done, and not made with a provisional feature set (those units are computed again)."""
    if not unit.is_done(run_dir):
        return False
    try:
        used = json.loads(unit.record_path(run_dir).read_text(encoding="utf-8")).get("features") or {}
    except (OSError, ValueError):
        return False  # a record that cannot be read is not a finished unit
    stale = sorted(n for n, f in used.items() if not f.get("final", True))
    if stale:
        log.info("%s: made with provisional features (%s); computing it again", unit.key, ", ".join(stale))
    return not stale


def features_used(model: Any, params: Mapping[str, Any], feats: Mapping[str, ItemFeatures]) -> dict[str, Any]:
    """The feature sets a model read (named in its params or required by its class): checksum and
    whether the producer called them final."""
    names = set(param_features(params))
    names |= set(getattr(model, "required_features", ()) or ())
    return {
        n: {"checksum": feats[n].checksum(), "final": bool(feats[n].provenance.get("final", True))}
        for n in sorted(names)
        if n in feats
    }


def unit_train(mc: ModelConfig, train_layer: Mapping[str, Any]) -> TrainConfig | None:
    """Trainer settings for a model that takes ``train``: class defaults ← experiment ← model entry."""
    if not MODELS.accepts(mc.model, "train"):
        return None
    return resolve_train(MODELS.attribute(mc.model, "train_defaults", {}), train_layer, mc.train)


def new_model(mc: ModelConfig, seed: int, train: TrainConfig | None, *, pass_seed: bool) -> tuple[Any, dict[str, Any]]:
    """``mc``'s model, unfitted, and the params it was created with. torch and NumPy are seeded
    with ``seed`` first (for models drawing from the global generators); ``pass_seed`` also passes
    it as the model's own ``seed`` param. A unit and a search trial are created alike by this."""
    params = dict(mc.params)
    if pass_seed:
        params["seed"] = seed
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    return create_model(mc.model, **params, **({"train": train} if train is not None else {})), params


def run_unit(
    unit: Unit,
    mc: ModelConfig,
    train: TrainConfig | None,
    inputs: UnitInputs,
    tracker: Tracker,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Fit one model with one seed, evaluate on valid then (once) on test, write atomically;
    ``extra`` keys go into the record as given (e.g. ``search``)."""
    seed = unit.seed if unit.seed is not None else 0
    model, params = new_model(mc, seed, train, pass_seed=unit.seed is not None)
    if hasattr(model, "set_logger"):
        model.set_logger(tracker.lightning_logger())
    with measure(fit_device(train, inputs.evaluation.device), inputs.energy) as fit_cost:
        model.fit(inputs.split, inputs.feats)
    with measure(inputs.evaluation.device, inputs.energy) as eval_cost:
        valid, test = evaluate_unit(model, inputs.split, inputs.feats, inputs.evaluation)
        # after the full-catalogue evaluation: a mode may rebuild the model's profiles (captioned-only)
        modes = evaluate_modes(model, inputs.split, inputs.feats, inputs.evaluation)
    fit_s, eval_s = fit_cost.record["wall_seconds"], eval_cost.record["wall_seconds"]
    describe = model.describe() if hasattr(model, "describe") else {"class": type(model).__name__, "params": params}
    record = {
        "model": unit.model,
        "registered_model": mc.model,
        "seed": unit.seed,
        "params": params,
        "train": train.to_dict() if train is not None else None,
        "model_info": describe,
        "valid": {k: float(v) for k, v in valid.means().items()},
        "test": {k: float(v) for k, v in test.means().items()},
        "n_users_test": int(test.n_users),
        "n_excluded_test": int(test.n_excluded),
        "n_users_valid": int(valid.n_users),
        **({"run_metrics": {"valid": valid.run_metrics, "test": test.run_metrics}} if test.run_metrics else {}),
        "subsets": subsets_of(unit, test, inputs) if inputs.evaluation.subsets else {},
        "timing": {"fit_seconds": round(fit_s, 3), "eval_seconds": round(eval_s, 3)},
        "cost": {"fit": fit_cost.record, "evaluate": eval_cost.record},
        "split_fingerprint": inputs.split.fingerprint,
        "features": features_used(model, params, inputs.feats),
        "features_used": feature_coverage(model, mc, inputs.feats),
        **dict(extra or {}),
        **({"modes": {name: r.record for name, r in modes.items()}} if modes else {}),
        **inputs.written_by,
    }
    write_parquet(unit.per_user_path(inputs.run_dir, "valid"), valid.per_user)
    write_parquet(unit.per_user_path(inputs.run_dir), test.per_user.copy())
    for name, r in modes.items():
        write_parquet(unit.per_user_path(inputs.run_dir, f"test.{name}"), r.per_user)
    write_json(unit.record_path(inputs.run_dir), record)  # written last: its presence marks the unit done
    tracker.log_metrics(
        {f"valid/{k}": v for k, v in record["valid"].items()} | {f"test/{k}": v for k, v in record["test"].items()}
    )
    return record


def feature_coverage(model: Any, mc: ModelConfig, feats: Mapping[str, ItemFeatures]) -> dict[str, float]:
    """Each item feature the model reads (its ``required_features``, else the feature names in
    its params) → the share of catalogue items that have it."""
    names = list(getattr(model, "required_features", ()) or ())
    if not names:
        names = param_features(mc.params)
    return {n: feats[n].coverage for n in dict.fromkeys(names) if n in feats}


def fit_device(train: TrainConfig | None, default: str) -> str:
    """Where a model trains, for its cost record: its trainer's accelerator (``gpu``/``cuda``, or
    ``auto`` with a GPU present) as ``cuda``, else the evaluation device."""
    if train is None:
        return default
    if train.accelerator in ("gpu", "cuda") or (train.accelerator == "auto" and torch.cuda.is_available()):
        return "cuda"
    return train.accelerator if train.accelerator != "auto" else default


def evaluate_unit(
    model: Any, split: Split, feats: Mapping[str, ItemFeatures], ev: EvaluationConfig
) -> tuple[EvalResult, EvalResult]:
    """Per-user metrics on valid, then on test (keeping the top-K lists when subsets are on)."""
    from benchmark.evaluation import evaluate

    users = {
        p: users_with_feature(split, feats[ev.users_with_feature], p) if ev.users_with_feature else None
        for p in ("valid", "test")
    }
    common: dict[str, Any] = {
        "ks": tuple(ev.ks),
        "metrics": tuple(ev.metrics),
        "batch_size": ev.batch_size,
        "device": ev.device,
        "diversity_feature": feats[ev.diversity_feature] if ev.diversity_feature else None,
    }
    valid = evaluate(model, split, part="valid", users=users["valid"], progress=False, **common)
    # the cold-start subset re-scores the kept top-K lists
    test = evaluate(model, split, part="test", users=users["test"], progress=False, keep_topk=ev.subsets, **common)
    return valid, test


def subsets_of(unit: Unit, test: EvalResult, inputs: UnitInputs) -> list[dict[str, Any]] | dict[str, Any]:
    """Cold-start and user-activity rows of a unit's test evaluation (empty if they fail)."""
    try:
        from benchmark.evaluation.subsets import subset_metrics

        return json.loads(subset_metrics(test, inputs.split).to_json(orient="records"))
    except Exception as exc:  # subsets are a report extra; never lose the unit for them
        log.warning("subset metrics failed for %s: %s", unit.key, exc)
        return {}


def users_with_feature(split: Split, feature: ItemFeatures, part: str) -> np.ndarray:
    """Users whose train part and ``part`` each contain at least one item that has ``feature``."""
    has = feature.mask.numpy()
    ok = None
    for p in ("train", part):
        df = split.part(p)
        u = np.unique(df["user_id"].to_numpy()[has[df["item_id"].to_numpy()]])
        ok = u if ok is None else np.intersect1d(ok, u)
    return ok  # type: ignore[return-value]
