"""One model's Optuna search: budgets, exhaustive small spaces, tie-breaking, pruning on the
reported curve, duplicates, failures, and resuming an interrupted study to the same choice.

The models here are scripted (their validation curve and value are functions of the assignment),
so these tests check the search's own logic in milliseconds; tests/benchmark/search/test_real_models.py
runs real trained models."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pytest

from benchmark.errors import ConfigError
from benchmark.search import SearchBudget, SearchConfig, Space
from benchmark.search.study import TRACE_COLUMNS, SearchError, Validation, run_search


class Scripted:
    """Reports ``curve(assignment)`` to its listener, epoch by epoch; its validation value is the
    curve's maximum (what a model restoring its best epoch scores)."""

    fits: list[dict[str, Any]] = []

    def __init__(self, assignment: Mapping[str, Any], curve, interrupt_at: tuple[int, int] | None = None) -> None:
        self.assignment = dict(assignment)
        self.curve = curve(self.assignment)
        self.listener = None
        self.interrupt_at = interrupt_at
        self.best_epoch: int | None = None

    def set_validation_listener(self, listener) -> None:
        self.listener = listener

    def fit(self, split, features) -> Scripted:
        Scripted.fits.append(self.assignment)
        for epoch, value in enumerate(self.curve, start=1):
            if self.listener is not None:
                self.listener(epoch, value)
            if self.interrupt_at and len(Scripted.fits) == self.interrupt_at[0] and epoch == self.interrupt_at[1]:
                raise KeyboardInterrupt  # like a kill: not caught by the search, leaves the trial RUNNING
        self.best_epoch = 1 + max(range(len(self.curve)), key=lambda i: self.curve[i])
        return self


class ScriptedValidation(Validation):
    def score(self, model: Any) -> float:
        return float(max(model.curve))


def target() -> ScriptedValidation:
    return ScriptedValidation(split=None, features={})  # type: ignore[arg-type]


def rising(assignment):
    """Curve rising to a level set by the assignment (lr near 0.01 and large k are best)."""
    lr, k = assignment.get("lr", 0.01), assignment.get("k", 16)
    level = 0.5 - abs(math.log10(lr) + 2) * 0.1 + k / 1000
    return [level * (1 - 0.5**e) for e in range(1, 7)]


@pytest.fixture(autouse=True)
def _reset():
    Scripted.fits = []


def search(space, policy, budget=None, curve=rising, **kw):
    return run_search(lambda a: Scripted(a, curve), Space.parse(space), target(), policy, budget, **kw)


def test_budget_trace_schema_and_best():
    space = {"lr": {"loguniform": [1e-4, 1e-1]}, "k": [16, 32, 64]}
    out = search(space, SearchConfig(sampler="tpe", trials=7, pruning=False, seed=3))
    assert list(out.trace.columns) == list(TRACE_COLUMNS)
    assert out.trace["trial"].tolist() == list(range(7)) and (out.trace["state"] == "COMPLETE").all()
    assert len(Scripted.fits) == 7
    best = out.trace.loc[out.trace["value"].idxmax()]
    assert out.best_trial == best["trial"] and out.best_params == json.loads(best["params"])
    assert out.best_value == pytest.approx(max(rising(out.best_params)))
    assert out.summary["trials"] == 7 and out.summary["sampler"] == "tpe" and not out.summary["exhaustive"]
    curve = json.loads(out.trace.loc[0, "curve"])
    assert [e for e, _ in curve] == list(range(1, 7)) and out.trace.loc[0, "best_epoch"] == 6
    # the same seed draws the same trials
    again = search(space, SearchConfig(sampler="tpe", trials=7, pruning=False, seed=3))
    assert again.trace.drop(columns="seconds").equals(out.trace.drop(columns="seconds"))


def test_a_space_no_larger_than_the_budget_is_searched_exhaustively():
    space = {"lr": [0.001, 0.01, 0.1], "k": [16, 64]}
    out = search(space, SearchConfig(sampler="random", trials=20, pruning=False))
    assert out.summary["sampler"] == "grid" and out.summary["exhaustive"] and out.summary["trials"] == 6
    assert sorted(map(json.dumps, Scripted.fits)) == sorted(map(json.dumps, Space.parse(space).combinations()))
    assert out.best_params == {"lr": 0.01, "k": 64}
    # a larger space than the budget is sampled, not enumerated
    out = search(space, SearchConfig(sampler="random", trials=4, pruning=False))
    assert out.summary["sampler"] == "random" and out.summary["trials"] == 4


def test_grid_needs_value_lists_and_a_budget_is_needed_for_infinite_spaces():
    with pytest.raises(ConfigError, match="sampler grid needs a list of values for every key; continuous: lr"):
        search({"lr": {"loguniform": [1e-4, 1e-1]}}, SearchConfig(sampler="grid", trials=3))
    with pytest.raises(ConfigError, match="needs a budget"):
        search({"lr": {"loguniform": [1e-4, 1e-1]}}, SearchConfig(sampler="tpe"), SearchBudget())


def test_ties_keep_the_earlier_trial():
    out = search({"k": [16, 32, 64]}, SearchConfig(sampler="grid", pruning=False), curve=lambda a: [0.3])
    assert out.trace["value"].nunique() == 1
    assert out.best_trial == 0 and out.best_params == json.loads(out.trace.loc[0, "params"])


def test_median_pruner_stops_hopeless_trials_on_the_reported_curve():
    def curve(a):  # the bad settings are hopeless from the first epoch on
        return [0.05] * 6 if a["lr"] < 0.001 else [0.2, 0.3, 0.4, 0.45, 0.5, 0.5]

    space = {"lr": [0.01, 0.02, 0.03, 0.0001, 0.0002, 0.00005]}
    policy = SearchConfig(sampler="grid", pruning=True, prune_startup_trials=2, seed=0)
    out = search(space, policy)
    pruned = out.trace[out.trace["state"] == "PRUNED"]
    bad = out.trace["params"].map(lambda p: json.loads(p)["lr"] < 0.001)
    # every bad setting that ran after two good trials finished is pruned at its first epoch
    good_done = (~bad & (out.trace["state"] == "COMPLETE")).cumsum().shift(fill_value=0)
    expect = set(out.trace["trial"][bad & (good_done >= 2)])
    assert set(pruned["trial"]) == expect and expect
    assert (pruned["last_epoch"] == 1).all() and pruned["value"].isna().all()
    assert out.summary["pruned"] == len(expect)
    # without pruning, nothing is pruned
    assert (search(space, SearchConfig(sampler="grid", pruning=False)).trace["state"] == "COMPLETE").all()


def test_random_over_a_finite_space_draws_without_replacement():
    out = search({"k": [1, 2, 3, 4, 5]}, SearchConfig(sampler="random", trials=4, pruning=False, seed=1))
    assert out.summary["sampler"] == "random" and out.trace["params"].nunique() == 4 == len(Scripted.fits)


def test_repeated_proposals_reuse_the_finished_trial():
    space = {"k": [1, 2, 3, 4, 5]}
    out = search(space, SearchConfig(sampler="tpe", trials=4, pruning=False, seed=1))
    dups = out.trace["duplicate_of"].notna()
    assert dups.sum() >= 1  # TPE proposes its best value again
    assert len(Scripted.fits) == 4 - int(dups.sum())
    for _, row in out.trace[dups].iterrows():
        first = out.trace.loc[out.trace["trial"] == row["duplicate_of"]].iloc[0]
        assert row["params"] == first["params"] and row["value"] == first["value"]


def test_failed_trials_are_recorded_and_a_search_without_any_success_is_an_error():
    def make(a):
        if a["k"] == 32:
            raise ValueError("k=32 is not allowed here")
        return Scripted(a, rising)

    out = run_search(make, Space.parse({"k": [16, 32, 64]}), target(), SearchConfig(sampler="grid", pruning=False))
    failed = out.trace[out.trace["state"] == "FAIL"]
    assert len(failed) == 1 and "k=32 is not allowed" in failed["error"].iloc[0] and out.summary["failed"] == 1

    def broken(a):
        raise RuntimeError("always")

    with pytest.raises(SearchError, match="no trial of 'search' completed .*first error: RuntimeError: always"):
        run_search(broken, Space.parse({"k": [16, 32]}), target(), SearchConfig(sampler="grid", pruning=False))


def test_an_interrupted_study_resumes_to_the_same_choice_without_repeating_finished_trials(tmp_path):
    space = {"lr": {"loguniform": [1e-4, 1e-1]}, "k": [16, 32, 64, 128]}
    policy = SearchConfig(sampler="tpe", trials=9, pruning=True, prune_startup_trials=2, seed=7)
    whole = search(space, policy, storage=f"sqlite:///{tmp_path / 'whole.db'}")
    assert Scripted.fits and len(Scripted.fits) == 9 - int(whole.trace["duplicate_of"].notna().sum())

    Scripted.fits = []
    url = f"sqlite:///{tmp_path / 'killed.db'}"
    # interrupted during the 7th fit (trial 6, which completes in the whole search), after 3 epochs
    with pytest.raises(KeyboardInterrupt):
        run_search(
            lambda a: Scripted(a, rising, interrupt_at=(7, 3)), Space.parse(space), target(), policy, storage=url
        )
    before = list(Scripted.fits)
    assert len(before) == 7 and whole.trace.loc[6, "state"] == "COMPLETE"
    Scripted.fits = []
    resumed = search(space, policy, storage=url)
    # the interrupted trial runs again with the parameters it had drawn, then the rest; the six
    # finished before the interruption are not repeated
    assert Scripted.fits[0] == before[-1]
    assert len(Scripted.fits) == 9 - 6 - int(resumed.trace["duplicate_of"].iloc[6:].notna().sum())
    cols = ["trial", "state", "value", "params", "best_epoch", "curve", "duplicate_of"]
    assert resumed.trace[cols].equals(whole.trace[cols])
    assert resumed.best_params == whole.best_params and resumed.best_trial == whole.best_trial


def test_a_stored_study_with_another_space_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    search({"k": [16, 32]}, SearchConfig(sampler="grid", pruning=False), storage=url)
    with pytest.raises(SearchError, match="another space, sampler, seed or metric"):
        search({"k": [16, 64]}, SearchConfig(sampler="grid", pruning=False), storage=url)
    # the same settings resume (nothing left to do: no new fit)
    Scripted.fits = []
    search({"k": [16, 32]}, SearchConfig(sampler="grid", pruning=False), storage=url)
    assert Scripted.fits == []


def test_a_wall_clock_budget_stops_starting_trials():
    space = {"lr": {"loguniform": [1e-4, 1e-1]}}
    out = search(space, SearchConfig(sampler="random", trials=None, timeout_s=1e-9, pruning=False))
    assert out.summary["trials"] == 1 and out.summary["budget"] == {"trials": None, "timeout_s": 1e-9}
    # trials and seconds together: whichever runs out first
    out = search(space, SearchConfig(sampler="random", trials=3, timeout_s=3600, pruning=False))
    assert out.summary["trials"] == 3
