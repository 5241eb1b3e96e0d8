"""One model's hyper-parameter search with Optuna: selection on validation only, resumable.

:func:`run_search` fits ``make(assignment)`` for each trial's assignment of a :class:`Space`,
scores the fitted model on ``split.valid`` with the shared evaluator (``split.test`` is never
read), and keeps every trial in an Optuna study. The policy's sampler is Optuna's
``GridSampler`` (over the space's distinct assignments, in a seeded order), ``RandomSampler`` or
``TPESampler``; a finite space no larger than the trial budget is searched exhaustively (the grid)
whatever the sampler, since nothing can beat trying every point, and ``random`` over a larger finite
space draws without replacement (the grid sampler's seeded random order). Trained models report their
validation curve through ``set_validation_listener`` (a Lightning callback, or RecBole's epoch
callback) and Optuna's ``MedianPruner`` stops hopeless trials.

**Resumable, and the same choice after a resume.** With ``storage`` (an SQLite URL under the run
directory) every trial is committed as it runs. The loop uses Optuna's ask-and-tell interface and
builds a fresh sampler for each trial, seeded from ``(seed, trial number)``; so what trial *n*
draws depends only on the seed and the finished trials before it, not on a sampler's random state
living in one process. A run killed mid-trial leaves that trial ``RUNNING``; the next run
re-evaluates it under the same trial number with the parameters it had drawn (the fit is
deterministic), then continues. Finished trials are never repeated, and the final choice equals
that of an uninterrupted search with the same seed (a test kills one with SIGKILL).

**Trace** (:data:`TRACE_COLUMNS`, saved by the runner as ``search/<model>.parquet``): one row per
trial — number, state, validation value, parameters, best epoch, the validation curve and time.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from benchmark.errors import BenchError, ConfigError
from benchmark.features import ItemFeatures
from benchmark.search.config import SearchBudget, SearchConfig
from benchmark.search.space import Space, canonical_json
from benchmark.split import Split

if TYPE_CHECKING:
    import optuna

log = logging.getLogger(__name__)

#: columns of a search trace, one row per trial (``search/<model>.parquet``)
TRACE_COLUMNS: dict[str, str] = {
    "trial": "int64: Optuna's trial number (0, 1, …), the order trials were started",
    "state": "str: COMPLETE, PRUNED (stopped by the median pruner) or FAIL (raised; see error)",
    "value": "float64: validation metric of the fitted model (its selected epoch); NaN unless COMPLETE",
    "params": "str: the trial's assignment as JSON, space keys sorted (train.<key> for trainer settings)",
    "best_epoch": "Int64: the epoch the model selected on validation (trained models; else null)",
    "n_checks": "int64: validation checks reported (points of the curve)",
    "last_epoch": "Int64: the last epoch reported (where it stopped or was pruned)",
    "curve": "str: JSON [[epoch, value], …] of the validation curve the model reported",
    "seconds": "float64: wall time of the trial in the process that finished it",
    "duplicate_of": "Int64: an earlier COMPLETE trial with the same parameters, whose value was reused",
    "error": "str: the exception of a FAIL trial (empty otherwise)",
}

#: a trial's assignment → a new, unfitted model
ModelMaker = Callable[[Mapping[str, Any]], Any]


class SearchError(BenchError, RuntimeError):
    """A search that cannot give a choice (every trial failed, or a study made with other settings)."""


@dataclass
class Validation:
    """What a trial is scored on: ``metric@k`` over ``split.valid`` (optionally only ``users``)."""

    split: Split
    features: Mapping[str, ItemFeatures]
    metric: str = "recall"
    k: int = 20
    users: np.ndarray | None = None
    batch_size: int = 1024
    device: str = "cpu"

    @property
    def key(self) -> str:
        return f"{self.metric}@{self.k}"

    def score(self, model: Any) -> float:
        from benchmark.evaluation import evaluate

        res = evaluate(
            model,
            self.split,
            part="valid",
            ks=(self.k,),
            metrics=(self.metric,),
            users=self.users,
            batch_size=self.batch_size,
            device=self.device,
            progress=False,
        )
        return float(res.means()[self.key])


@dataclass
class SearchOutcome:
    """A finished search: the chosen assignment, its validation value, the trace and a summary."""

    best_params: dict[str, Any]
    best_value: float
    best_trial: int
    trace: pd.DataFrame
    summary: dict[str, Any]
    best_model: Any = None


class _Reporter:
    """The validation listener given to a trained model: reports each check to the trial and
    stops the fit (``optuna.TrialPruned``) when the pruner says so."""

    def __init__(self, trial: optuna.Trial, prune: bool) -> None:
        self.trial, self.prune = trial, prune

    def __call__(self, epoch: int, value: float) -> None:
        import optuna

        with warnings.catch_warnings():  # a resumed trial re-reports the epochs it had reported
            warnings.filterwarnings("ignore", message=".*is already reported.*")
            self.trial.report(float(value), int(epoch))
        if self.prune and self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {epoch} (validation {value:.5f})")


class _Plan:
    """The effective sampler and trial cap of one search (module docstring)."""

    def __init__(self, space: Space, policy: SearchConfig, budget: SearchBudget) -> None:
        if not space:
            raise ConfigError("an empty search space has nothing to search")
        self.space, self.policy = space, policy
        self.combos = space.combinations() if space.finite else None
        size = len(self.combos) if self.combos is not None else None
        if policy.sampler == "grid":
            space.require_finite()
        self.exhaustive = size is not None and (
            policy.sampler == "grid" or (budget.trials is not None and size <= budget.trials)
        )
        self.sampler_name = "grid" if self.exhaustive else policy.sampler
        # random over a finite space draws without replacement: the grid in its seeded random order
        self.walks_grid = self.combos is not None and (self.exhaustive or policy.sampler == "random")
        if budget.trials is None and budget.timeout_s is None and not self.exhaustive:
            raise ConfigError("a search over an infinite or sampled space needs a budget (trials or timeout_s)")
        caps = [c for c in (budget.trials, size if self.exhaustive else None) if c is not None]
        self.max_trials = min(caps) if caps else None
        self.timeout_s = budget.timeout_s

    def sampler(self, number: int) -> optuna.samplers.BaseSampler:
        """A fresh sampler for trial ``number``, seeded from (policy seed, number)."""
        import optuna

        if self.walks_grid:
            assert self.combos is not None
            grid: optuna.samplers.BaseSampler = _grid_sampler_class()(
                {"grid_point": list(range(len(self.combos)))}, seed=self.policy.seed
            )
            return grid
        seed = int(np.random.SeedSequence([self.policy.seed, number]).generate_state(1)[0])
        if self.sampler_name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        startup = min(10, max(1, self.max_trials // 2)) if self.max_trials else 10
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)

    def assignment(self, trial: optuna.Trial) -> dict[str, Any]:
        if self.combos is not None and self.walks_grid:
            return dict(self.combos[int(trial.suggest_categorical("grid_point", list(range(len(self.combos)))))])
        return self.space.suggest(trial)

    def signature(self) -> str:
        """What must match for a stored study to be resumed (the budget may grow)."""
        p = self.policy
        return canonical_json(
            {"space": self.space.describe(), "sampler": self.sampler_name, "seed": p.seed, "metric": p.metric}
        )


@functools.cache
def _grid_sampler_class() -> type:
    import optuna

    class AskTellGrid(optuna.samplers.GridSampler):
        """Optuna's grid sampler; the budget loop, not ``study.stop()``, ends the search (``stop``
        only works inside ``study.optimize``, and the loop here is ask-and-tell)."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return AskTellGrid


def run_search(
    make: ModelMaker,
    space: Space,
    target: Validation,
    policy: SearchConfig,
    budget: SearchBudget | None = None,
    *,
    storage: str | None = None,
    study_name: str = "search",
    keep_best: bool = False,
) -> SearchOutcome:
    """Search ``space`` for the assignment whose fitted model scores best on validation.

    Args:
        make: assignment → a new, unfitted model (the caller applies the keys to its params).
        target: the split, features and ``metric@k`` on ``split.valid`` to select on.
        policy: sampler, pruning and seed (its budget unless ``budget`` is given).
        budget: trials and/or seconds; ``SearchBudget()`` with a finite space: every assignment.
        storage: an Optuna storage URL (``sqlite:///…``) to resume from; ``None``: in memory.
        keep_best: return the best trial's fitted model too (refitted if it ran in another process).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan = _Plan(space, policy, policy.budget if budget is None else budget)
    pruner: optuna.pruners.BasePruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=policy.prune_startup_trials, n_warmup_steps=policy.prune_warmup_epochs
        )
        if policy.pruning
        else optuna.pruners.NopPruner()
    )
    study = optuna.create_study(
        storage=open_storage(storage), study_name=study_name, direction="maximize", pruner=pruner, load_if_exists=True
    )
    _check_signature(study, plan, study_name)
    keeper = _BestKeeper(keep_best)
    for frozen in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        log.info("%s: resuming trial %d (interrupted)", study_name, frozen.number)
        study.sampler = plan.sampler(frozen.number)
        _evaluate(study, optuna.trial.Trial(study, frozen._trial_id), plan, make, target, keeper)
    while not _spent(trials := study.get_trials(deepcopy=False), plan):
        study.sampler = plan.sampler(len(trials))
        _evaluate(study, study.ask(), plan, make, target, keeper)
    return _outcome(study, plan, target, make, keeper)


def open_storage(url: str | None) -> Any:
    """Optuna's RDB storage for ``url``; an SQLite file is opened in WAL mode with
    ``synchronous=NORMAL``: every commit survives the process being killed (only an OS crash
    could lose the last ones), at a fifth of the time per trial of SQLite's default fsync."""
    import sqlite3

    import optuna

    if url is None or not url.startswith("sqlite:///"):
        return url
    path = url.removeprefix("sqlite:///")

    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    return optuna.storages.RDBStorage(url, engine_kwargs={"creator": connect})


def _check_signature(study: optuna.Study, plan: _Plan, name: str) -> None:
    sig = plan.signature()
    stored = study.user_attrs.get("signature")
    if stored is None:
        study.set_user_attr("signature", sig)
    elif stored != sig:
        raise SearchError(
            f"the stored study {name!r} was made with another space, sampler, seed or metric; "
            "start a new run directory (run --force) instead of resuming this one"
        )


def _spent(trials: list[optuna.trial.FrozenTrial], plan: _Plan) -> bool:
    """Whether the budget is used up by the study's ``trials``: trial count, wall-clock seconds
    (over every process)."""
    if plan.max_trials is not None and len(trials) >= plan.max_trials:
        return True
    if plan.timeout_s is not None:
        return sum(float(t.user_attrs.get("seconds", 0.0)) for t in trials) >= plan.timeout_s
    return False


class _BestKeeper:
    """Holds the best fitted model seen in this process (for ``keep_best``)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.value = -math.inf
        self.trial = -1
        self.model: Any = None

    def offer(self, trial: int, value: float, model: Any) -> None:
        if self.enabled and (value > self.value or (value == self.value and trial < self.trial)):
            self.value, self.trial, self.model = value, trial, model


def _evaluate(
    study: optuna.Study, trial: optuna.Trial, plan: _Plan, make: ModelMaker, target: Validation, keeper: _BestKeeper
) -> None:
    """Run one trial and tell the study how it ended (COMPLETE, PRUNED or FAIL)."""
    import optuna

    t0 = time.perf_counter()
    state, value = optuna.trial.TrialState.COMPLETE, None
    try:
        assignment = plan.assignment(trial)
        sig = canonical_json(assignment)
        trial.set_user_attr("params", sig)
        dup = _duplicate_of(study, trial.number, sig)
        if dup is not None:
            trial.set_user_attr("duplicate_of", dup.number)
            if "best_epoch" in dup.user_attrs:
                trial.set_user_attr("best_epoch", dup.user_attrs["best_epoch"])
            value = dup.value
        else:
            model = make(assignment)
            if hasattr(model, "set_validation_listener"):
                model.set_validation_listener(_Reporter(trial, plan.policy.pruning))
            model.fit(target.split, target.features)
            if hasattr(model, "set_validation_listener"):
                model.set_validation_listener(None)
            best_epoch = getattr(model, "best_epoch", None)
            if best_epoch is not None:
                trial.set_user_attr("best_epoch", int(best_epoch))
            value = target.score(model)
            keeper.offer(trial.number, value, model)
    except optuna.TrialPruned:
        state = optuna.trial.TrialState.PRUNED
    except Exception as exc:  # a trial's failure is recorded, the search goes on
        log.warning("trial %d failed: %s: %s", trial.number, type(exc).__name__, exc)
        trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
        state = optuna.trial.TrialState.FAIL
    trial.set_user_attr("seconds", time.perf_counter() - t0)
    if state == optuna.trial.TrialState.COMPLETE:
        study.tell(trial, value)
        log.info("trial %d: valid %s = %.5f %s", trial.number, target.key, value, trial.user_attrs.get("params", ""))
    else:
        study.tell(trial, state=state)
        log.info("trial %d: %s", trial.number, state.name)


def _duplicate_of(study: optuna.Study, number: int, params: str) -> optuna.trial.FrozenTrial | None:
    """An earlier COMPLETE trial with the same assignment (samplers may propose one again)."""
    import optuna

    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        if t.number < number and t.user_attrs.get("params") == params:
            return t
    return None


def trace_frame(trials: list[optuna.trial.FrozenTrial]) -> pd.DataFrame:
    """The trace (:data:`TRACE_COLUMNS`) of a study's trials, in trial order."""
    rows = []
    for t in sorted(trials, key=lambda t: t.number):
        curve = sorted(t.intermediate_values.items())
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "value": float(t.value) if t.state.name == "COMPLETE" and t.value is not None else math.nan,
                "params": str(t.user_attrs.get("params", "")),
                "best_epoch": t.user_attrs.get("best_epoch"),
                "n_checks": len(curve),
                "last_epoch": curve[-1][0] if curve else None,
                "curve": json.dumps([[int(e), float(v)] for e, v in curve]),
                "seconds": float(t.user_attrs.get("seconds", math.nan)),
                "duplicate_of": t.user_attrs.get("duplicate_of"),
                "error": str(t.user_attrs.get("error", "")),
            }
        )
    df = pd.DataFrame(rows, columns=list(TRACE_COLUMNS))
    for col in ("best_epoch", "last_epoch", "duplicate_of"):
        df[col] = df[col].astype("Int64")
    for col in ("trial", "n_checks"):
        df[col] = df[col].astype("int64")
    for col in ("value", "seconds"):
        df[col] = df[col].astype("float64")
    return df


def _outcome(
    study: optuna.Study, plan: _Plan, target: Validation, make: ModelMaker, keeper: _BestKeeper
) -> SearchOutcome:
    trials = study.get_trials(deepcopy=False)
    trace = trace_frame(trials)
    done = trace[trace["state"] == "COMPLETE"]
    if done.empty:
        errors = [e for e in trace["error"] if e]
        raise SearchError(
            f"no trial of {study.study_name!r} completed ({len(trace)} run)"
            + (f"; first error: {errors[0]}" if errors else "")
        )
    best_row = done.sort_values(["value", "trial"], ascending=[False, True], kind="stable").iloc[0]
    best = json.loads(best_row["params"])
    counts = trace["state"].value_counts()
    summary = {
        "sampler": plan.sampler_name,
        "requested_sampler": plan.policy.sampler,
        "exhaustive": plan.exhaustive,
        "space": plan.space.describe(),
        "space_size": len(plan.combos) if plan.combos is not None else None,
        "budget": {"trials": plan.max_trials, "timeout_s": plan.timeout_s},
        "metric": target.key,
        "pruning": plan.policy.pruning,
        "seed": plan.policy.seed,
        "trials": int(len(trace)),
        "complete": int(counts.get("COMPLETE", 0)),
        "pruned": int(counts.get("PRUNED", 0)),
        "failed": int(counts.get("FAIL", 0)),
        "duplicates": int(trace["duplicate_of"].notna().sum()),
        "seconds": round(float(trace["seconds"].fillna(0).sum()), 3),
        "best_trial": int(best_row["trial"]),
        "best_value": float(best_row["value"]),
        "best_params": best,
    }
    model = None
    if keeper.enabled:
        model = keeper.model if keeper.trial == summary["best_trial"] else make(best).fit(target.split, target.features)
    return SearchOutcome(best, float(best_row["value"]), int(best_row["trial"]), trace, summary, model)
