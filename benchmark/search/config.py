"""The search policy of an experiment (its ``search:`` section) and a model entry's budget override.

.. code-block:: yaml

    search:
      sampler: tpe          # grid | random | tpe (Optuna's samplers)
      trials: 20            # the budget of every tuned model, in trials …
      timeout_s: null       # … and/or wall-clock seconds (stop starting trials after this)
      metric: recall@20     # selected on validation only
      pruning: true         # Optuna's median pruner on the validation curve
      spaces: shipped       # models without their own `search` use their shipped space
    models:
      - {name: BPR-MF, model: bpr}                                   # shipped space, 20 trials
      - {name: VBPR, model: vbpr, search_budget: {trials: 40}}       # an override, stated in the caption
      - {name: Pop, model: popularity}                               # nothing to tune
      - {name: Mine, model: bpr, search: {train.lr: {loguniform: [1.0e-4, 0.1]}, k: [32, 64]}}

An experiment without a ``search`` section tunes nothing (every model runs with its params).
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.configuration import choice
from benchmark.errors import ConfigError
from benchmark.evaluation.metrics import METRIC_NAMES

#: Optuna samplers a policy may name
SAMPLERS: tuple[str, ...] = ("grid", "random", "tpe")
#: what a model entry without its own ``search`` gets: its shipped space, or no search
SPACE_DEFAULTS: tuple[str, ...] = ("shipped", "listed")


def parse_metric(text: str, where: str) -> tuple[str, int]:
    """``"recall@20"`` → ``("recall", 20)``; errors name the metrics allowed."""
    name, _, k = text.partition("@")
    if name not in METRIC_NAMES or not k.isdigit() or int(k) < 1:
        raise ConfigError(f"{where}: {text!r} is not metric@K; metrics: {', '.join(METRIC_NAMES)}")
    return name, int(k)


@dataclass
class SearchBudget:
    """Trials and/or wall-clock seconds for one model's search (``None``: no limit of that kind).

    A trial budget gives the same search on every machine; a wall-clock budget does not (a
    faster machine runs more trials), so prefer trials for comparisons meant to be repeated.
    """

    trials: int | None = None
    timeout_s: float | None = None

    def validate(self, path: str = "") -> None:
        p = f"{path}." if path else ""
        if self.trials is not None and self.trials < 1:
            raise ConfigError(f"{p}trials: must be >= 1, got {self.trials}")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ConfigError(f"{p}timeout_s: must be > 0, got {self.timeout_s}")

    def describe(self) -> str:
        parts = [f"{self.trials} trials"] if self.trials is not None else []
        if self.timeout_s is not None:
            parts.append(f"{self.timeout_s:g} s")
        return " / ".join(parts) or "unbounded"


@dataclass
class SearchConfig:
    """An experiment's search policy (module docstring). ``seed`` seeds the sampler; the trials
    train with the model's first seed. ``prune_startup_trials``: trials that finish before the
    pruner may stop one; ``prune_warmup_epochs``: epochs never pruned."""

    sampler: str = choice("tpe", SAMPLERS)
    trials: int | None = 20
    timeout_s: float | None = None
    metric: str = "recall@20"
    pruning: bool = True
    prune_startup_trials: int = 5
    prune_warmup_epochs: int = 0
    spaces: str = choice("shipped", SPACE_DEFAULTS)
    seed: int = 0

    def validate(self, path: str = "search") -> None:
        p = f"{path}." if path else ""
        self.budget.validate(path)
        if self.trials is None and self.timeout_s is None:
            raise ConfigError(f"{p}trials/timeout_s: give a budget (trials, seconds or both)")
        parse_metric(self.metric, f"{p}metric")
        if self.prune_startup_trials < 0 or self.prune_warmup_epochs < 0:
            raise ConfigError(f"{p}prune_startup_trials/prune_warmup_epochs: must be >= 0")

    @property
    def budget(self) -> SearchBudget:
        return SearchBudget(self.trials, self.timeout_s)

    def budget_for(self, override: SearchBudget | None) -> SearchBudget:
        """A model entry's ``search_budget`` replaces the policy's budget where it sets a value."""
        if override is None:
            return self.budget
        return SearchBudget(
            override.trials if override.trials is not None else self.trials,
            override.timeout_s if override.timeout_s is not None else self.timeout_s,
        )

    @property
    def metric_key(self) -> tuple[str, int]:
        return parse_metric(self.metric, "search.metric")
