"""Experiment configuration: YAML validated into dataclasses.

Sections: ``dataset`` (where the split comes from: :class:`benchmark.prepare.DatasetConfig`, the
same dataclass ``data prepare`` and ``data import`` use), ``features`` (named item features and
the producer that makes each), ``models`` (display name → registered model + params, and its own
``train`` settings), ``train`` (trainer settings for every model that takes them),
``evaluation``, ``statistics``, ``logging``, ``search`` (the hyper-parameter search policy,
:class:`benchmark.search.SearchConfig`; a model entry's ``search`` space and ``search_budget``) and
``health`` (:class:`benchmark.health.HealthConfig`). Unknown keys, wrong types, unknown model/producer
names, parameters a model or producer does not take and references to undefined features are
errors naming the key and the allowed values.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from benchmark.configuration import ConfigError, apply_overrides, choice, from_dict, load_yaml, to_dict
from benchmark.evaluation.captioned import EVALUATION_MODES, CaptionedSettings
from benchmark.evaluation.metrics import EVALUATION_METRIC_NAMES, RUN_METRICS
from benchmark.health import HealthConfig
from benchmark.prepare.config import DatasetConfig
from benchmark.runner.tracking import LOGGERS
from benchmark.search import SearchBudget, SearchConfig
from benchmark.stats import COMPARISONS, CORRECTIONS, TESTS
from benchmark.train_config import check_partial

#: model params that name item features (``a+b`` names several)
FEATURE_PARAMS: tuple[str, ...] = ("feature", "features", "text_feature", "image_feature")


def param_features(params: Mapping[str, Any]) -> list[str]:
    """The feature names model params refer to, in :data:`FEATURE_PARAMS` order (``a+b``: both;
    a name given twice is listed twice)."""
    return [p for k in FEATURE_PARAMS if isinstance(params.get(k), str) for p in params[k].split("+")]


__all__ = [
    "DatasetConfig",
    "EvaluationConfig",
    "ExperimentConfig",
    "FeatureConfig",
    "LoggingConfig",
    "ModelConfig",
    "StatisticsConfig",
    "load_config",
    "saved_config",
    "shipped_configs",
]


@dataclass
class FeatureConfig:
    """One named item-feature set and the registered producer that makes it."""

    name: str
    producer: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class ModelConfig:
    """One row of the leaderboard: a registered model with its parameters.

    Models whose constructor takes ``seed`` run once per experiment seed (or per ``seeds``
    here); deterministic ones run once. ``train``: trainer settings for this model only (keys
    of :class:`benchmark.train_config.TrainConfig`), over the experiment's ``train``; only for
    models whose constructor takes ``train``.
    """

    name: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] | None = None
    note: str = ""
    paper_name: str | None = None
    """The method's label in the paper's published table (for ``vlm4rec-bench claims``)."""
    search: dict[str, Any] | str | None = None
    """With an experiment ``search`` policy: this entry's space (:mod:`benchmark.search.space`),
    ``shipped`` (the model's own) or ``none``; unset: as the policy's ``spaces`` says."""
    search_budget: SearchBudget | None = None
    """This entry's budget where it differs from the policy's (stated in the leaderboard)."""


@dataclass
class EvaluationConfig:
    """How units are evaluated.

    ``modes``: the evaluation modes, each unit is evaluated in all of them
    (:data:`benchmark.evaluation.captioned.EVALUATION_MODES`). The first, ``full-catalogue``
    (the default and the leaderboard's): every item ranked for every user, seen items masked,
    every test item relevant. ``captioned-only``: the VLM4Rec paper's protocol
    (:mod:`benchmark.evaluation.captioned`), set by ``captioned``; reported beside the first in
    ``metrics.json``, ``modes.md`` and the claims report.
    """

    ks: list[int] = field(default_factory=lambda: [5, 10, 20])
    metrics: list[str] = choice(["recall", "ndcg", "hitrate"], EVALUATION_METRIC_NAMES)
    """Accuracy and beyond-accuracy names (``aplt``, ``novelty``, ``ild`` per user; ``gini``,
    ``tail_coverage`` per run, in each unit record's ``run_metrics``); the extra modes compute
    the accuracy ones only."""
    diversity_feature: str | None = None
    """The item feature ``ild`` (intra-list diversity) measures cosine distances on."""
    batch_size: int = 1024
    device: str = "cpu"
    subsets: bool = True
    users_with_feature: str | None = None
    """Evaluate only users whose train and evaluated part both hold an item that has this
    feature (the paper's protocol: users with LLaVA-captioned items). Default: all users."""
    modes: list[str] = choice(["full-catalogue"], EVALUATION_MODES)
    captioned: CaptionedSettings = field(default_factory=CaptionedSettings)
    min_feature_coverage: float = 0.0
    """Share of catalogue items each feature a model reads must cover; a feature no item has
    is always refused (the run stops naming the feature, the model and the coverage)."""

    def validate(self, path: str) -> None:
        p = f"{path}." if path else ""
        for i, k in enumerate(self.ks):
            if k < 1:
                raise ConfigError(f"{p}ks[{i}]: K must be >= 1, got {k}")
        if not self.ks:
            raise ConfigError(f"{p}ks: give at least one K")
        if not self.modes or self.modes[0] != EVALUATION_MODES[0]:
            raise ConfigError(
                f"{p}modes: the first mode is the leaderboard's and must be {EVALUATION_MODES[0]!r} "
                f"(others are reported beside it); got {self.modes}"
            )
        if len(set(self.modes)) != len(self.modes):
            raise ConfigError(f"{p}modes: a mode is listed twice: {self.modes}")
        if not 0 <= self.min_feature_coverage <= 1:
            raise ConfigError(f"{p}min_feature_coverage: a share in [0, 1]; got {self.min_feature_coverage}")
        if "ild" in self.metrics and self.diversity_feature is None:
            raise ConfigError(
                f"{p}diversity_feature: metric 'ild' needs the item feature its distances are measured on"
            )


@dataclass
class StatisticsConfig:
    """How results are compared. ``test``: ``auto`` (the default) is the mixed model over users
    and seeds for every comparison involving a multi-seed model and the paired t-test otherwise;
    the classic tests (``t``, ``wilcoxon``, ``randomization``, ``bootstrap``) hold the trained
    models fixed and are labelled so (:mod:`benchmark.stats.compare`). ``comparisons``: the
    family — ``baseline`` (every model against the baseline) or ``all-pairs`` (every model
    against every other), corrected together by ``correction``."""

    baseline: str | None = None
    test: str = choice("auto", TESTS)
    comparisons: str = choice("baseline", COMPARISONS)
    correction: str = choice("holm", CORRECTIONS)
    alpha: float = 0.05
    n_resamples: int = 10000
    plot_metric: str | None = None

    def validate(self, path: str) -> None:
        p = f"{path}." if path else ""
        if self.test in ("randomization", "bootstrap") and self.n_resamples < 10000:
            raise ConfigError(
                f"{p}n_resamples: the {self.test} test needs at least 10000 resamples, got {self.n_resamples}"
            )
        if not 0 < self.alpha < 1:
            raise ConfigError(f"{p}alpha: must be between 0 and 1, got {self.alpha}")


@dataclass
class LoggingConfig:
    logger: str = choice("wandb", LOGGERS)
    project: str = "vlm4rec-bench"
    entity: str | None = None
    tags: list[str] = field(default_factory=list)
    energy: bool = True
    mlflow_uri: str | None = None


@dataclass
class ExperimentConfig:
    """One experiment: a dataset, its item features, the models (rows of the leaderboard), how
    they are evaluated and compared, and where results go.

    ``train``: trainer settings (keys of :class:`benchmark.train_config.TrainConfig`) for every
    model whose constructor takes ``train``; a model entry's own ``train`` overrides them.
    """

    experiment: str
    dataset: DatasetConfig
    models: list[ModelConfig]
    features: list[FeatureConfig] = field(default_factory=list)
    description: str = ""
    seeds: list[int] = field(default_factory=lambda: [0])
    train: dict[str, Any] = field(default_factory=dict)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    statistics: StatisticsConfig = field(default_factory=StatisticsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    results_dir: str = "results"
    cache_dir: str = "datasets"
    published: str | None = None
    search: SearchConfig | None = None
    health: HealthConfig = field(default_factory=HealthConfig)

    def validate(self, path: str) -> None:
        if not self.models:
            raise ConfigError("models: list at least one model")
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed")
        _unique([m.name for m in self.models], "models", "name")
        _unique_unit_keys([m.name for m in self.models])
        _unique([f.name for f in self.features], "features", "name")
        check_partial(self.train, "train")
        if self.published:
            from benchmark.runner.claims import load_published  # here: claims reads results, which reads configs

            load_published(self.published)
        self._check_registered()
        self._check_feature_references()
        self._check_search()
        names = [m.name for m in self.models]
        if self.statistics.baseline is not None and self.statistics.baseline not in names:
            raise ConfigError(
                f"statistics.baseline: {self.statistics.baseline!r} is not a model name; allowed values: {', '.join(names)}"
            )

    def _check_registered(self) -> None:
        """Producers and models exist and take the params given (the registries' own check)."""
        from benchmark.producers import PRODUCERS
        from benchmark.registry import MODELS

        for i, f in enumerate(self.features):
            _check_name(PRODUCERS.names(), f.producer, f"features[{i}].producer", "feature producer")
            PRODUCERS.check_params(f.producer, f.params, f"features[{i}].params")
        for i, m in enumerate(self.models):
            _check_name(MODELS.names(), m.model, f"models[{i}].model", "model")
            MODELS.check_params(m.model, m.params, f"models[{i}].params")
            if m.train:
                if not MODELS.accepts(m.model, "train"):
                    raise ConfigError(f"models[{i}].train: model {m.model!r} takes no trainer settings")
                check_partial(m.train, f"models[{i}].train")

    def _check_feature_references(self) -> None:
        """Params and the evaluation naming a feature name one defined under ``features``."""
        feature_names = {f.name for f in self.features}
        defined = ", ".join(sorted(feature_names)) or "none"
        for i, m in enumerate(self.models):
            for key in FEATURE_PARAMS:
                val = m.params.get(key)
                if isinstance(val, str):
                    for part in val.split("+"):
                        if part not in feature_names:
                            raise ConfigError(
                                f"models[{i}].params.{key}: feature {part!r} is not defined in `features`; defined: {defined}"
                            )
        for key, name in (
            ("users_with_feature", self.evaluation.users_with_feature),
            ("diversity_feature", self.evaluation.diversity_feature),
            ("captioned.feature", self.evaluation.captioned.feature),
        ):
            if name is not None and name not in feature_names:
                raise ConfigError(
                    f"evaluation.{key}: feature {name!r} is not defined in `features`; defined: {defined}"
                )

    def _check_search(self) -> None:
        """Spaces resolve against their models (keys and values); entries may only set ``search``
        or ``search_budget`` under a policy; a searched feature name is a defined feature."""
        from benchmark.runner.search import entry_space

        feature_names = {f.name for f in self.features}
        for i, m in enumerate(self.models):
            if self.search is None:
                for key in ("search", "search_budget"):
                    if getattr(m, key) is not None:
                        raise ConfigError(
                            f"models[{i}].{key}: the experiment has no `search` section (sampler, budget, metric)"
                        )
                continue
            space = entry_space(m, self.search, f"models[{i}].search")
            if space is not None and self.search.sampler == "grid":
                space.require_finite(f"models[{i}].search")
            for dim in space or ():
                if dim.key in FEATURE_PARAMS:
                    for value in dim.values:
                        for part in str(value).split("+"):
                            if part not in feature_names:
                                raise ConfigError(
                                    f"models[{i}].search.{dim.key}: feature {part!r} is not defined in `features`"
                                )
        if self.health.metric is not None and self.health.metric not in self.metric_columns:
            raise ConfigError(
                f"health.metric: {self.health.metric!r} is not evaluated; allowed: {', '.join(self.metric_columns)}"
            )

    @property
    def baseline(self) -> str:
        return self.statistics.baseline or self.models[0].name

    @property
    def metric_columns(self) -> list[str]:
        """``metric@k`` in the order of the leaderboard's columns (per-user metrics only)."""
        return [f"{m}@{k}" for m in self.evaluation.metrics if m not in RUN_METRICS for k in self.evaluation.ks]


def _check_name(registered: list[str], name: str, where: str, kind: str) -> None:
    if name not in registered:
        raise ConfigError(f"{where}: unknown {kind} {name!r}; allowed values: {', '.join(registered) or 'none'}")


def _unique(values: list[str], section: str, key: str) -> None:
    seen: set[str] = set()
    for i, v in enumerate(values):
        if v in seen:
            raise ConfigError(f"{section}[{i}].{key}: {v!r} is used twice; names must be unique")
        seen.add(v)


def _unique_unit_keys(names: list[str]) -> None:
    """Each model's results go to ``units/<file-safe name>[__seed<k>].*``: two names that become
    the same file name (``"BPR 1"``/``"BPR_1"``; ``"bpr"``/``"BPR"`` on a case-insensitive disk)
    would overwrite each other's units, so they are refused, naming both."""
    from benchmark.runner.rundir import SEED_SUFFIX, unit_stem

    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        stem = unit_stem(name)
        if not stem.strip("._") or stem.startswith("."):
            raise ConfigError(f"models[{i}].name: {name!r} makes no usable file name; use letters or digits")
        tail = stem.rsplit(SEED_SUFFIX, 1)
        if len(tail) == 2 and tail[1].lstrip("-").isdigit():
            raise ConfigError(
                f"models[{i}].name: {name!r} ends like a seed suffix ({SEED_SUFFIX}<k>), which unit files use; rename it"
            )
        j = seen.setdefault(stem.lower(), i)
        if j != i:
            raise ConfigError(
                f"models[{i}].name: {name!r} and models[{j}].name {names[j]!r} both become the unit file name "
                f"{stem!r} (characters other than letters, digits, -_. become _, case is ignored); rename one"
            )


# ------------------------------------------------------------------------------- shipped configs
def shipped_configs() -> dict[str, Path]:
    """Configs that ship inside the package (``vlm4rec-bench configs`` lists them)."""
    root = resources.files("benchmark") / "configs"
    return {Path(str(p)).stem: Path(str(p)) for p in root.iterdir() if str(p).endswith(".yaml")}


def load_config(source: str | Path | None = None, overrides: list[str] | None = None) -> ExperimentConfig:
    """A config from a path, or by name from the shipped ones (default: ``demo``)."""
    shipped = shipped_configs()
    if source is None:
        source = "demo"
    path = Path(source)
    if not path.exists():
        if str(source) in shipped:
            path = shipped[str(source)]
        else:
            raise ConfigError(f"no config file {source!r}; shipped configs: {', '.join(sorted(shipped))}")
    data = load_yaml(path)
    if overrides:
        data = apply_overrides(data, overrides)
    return from_dict(ExperimentConfig, data)


def select_entries(
    cfg: ExperimentConfig,
    *,
    models: list[str] | None = None,
    skip_models: list[str] = (),  # type: ignore[assignment]
    features: list[str] | None = None,
    skip_features: list[str] = (),  # type: ignore[assignment]
) -> ExperimentConfig:
    """``cfg`` with only some of its models and feature sets (``run --models/--skip-models/
    --features/--skip-features``), validated again.

    Names are the config's ``name`` values; an unknown one is an error listing the allowed ones.
    A model that uses a feature set left out is left out too (logged), so ``--skip-features
    clip_image`` runs a shipped config without images; a baseline left out falls back to the
    first model kept (logged).
    """
    model_names = [m.name for m in cfg.models]
    feature_names = [f.name for f in cfg.features]
    for given, allowed, flag in (
        (models or [], model_names, "--models"),
        (list(skip_models), model_names, "--skip-models"),
        (features or [], feature_names, "--features"),
        (list(skip_features), feature_names, "--skip-features"),
    ):
        unknown = [n for n in given if n not in allowed]
        if unknown:
            raise ConfigError(
                f"{flag}: {', '.join(map(repr, unknown))} not in the config; allowed: {', '.join(allowed)}"
            )
    kept_features = [
        f for f in cfg.features if (features is None or f.name in features) and f.name not in skip_features
    ]
    left_out = {f.name for f in cfg.features} - {f.name for f in kept_features}
    kept_models = []
    for m in cfg.models:
        if (models is not None and m.name not in models) or m.name in skip_models:
            continue
        uses = sorted(set(param_features(m.params)) & left_out)
        if uses:
            logging.getLogger(__name__).warning(
                "model %s left out: it uses feature set(s) left out (%s)", m.name, ", ".join(uses)
            )
            continue
        kept_models.append(m)
    if not kept_models:
        raise ConfigError("no model left to run after --models/--skip-models/--features/--skip-features")
    uwf = cfg.evaluation.users_with_feature
    if uwf is not None and uwf in left_out:
        raise ConfigError(f"--skip-features: evaluation.users_with_feature uses {uwf!r}; it cannot be left out")
    data = to_dict(cfg)
    data["models"] = [to_dict(m) for m in kept_models]
    data["features"] = [to_dict(f) for f in kept_features]
    baseline = cfg.statistics.baseline
    if baseline is not None and baseline not in {m.name for m in kept_models}:
        logging.getLogger(__name__).warning("baseline %s left out; comparing against %s", baseline, kept_models[0].name)
        data["statistics"]["baseline"] = None
    return from_dict(ExperimentConfig, data)


def saved_config(data: dict[str, Any]) -> ExperimentConfig:
    """The config a results directory recorded (``config.resolved.yaml``), read back.

    Keys and types are checked, but not the models and producers against the registries (nor
    the other cross-field checks): the config was validated when it ran, and a plug-in model
    of that run need not be installed where its results are read.
    """
    return from_dict(ExperimentConfig, data, validate=False)


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    return to_dict(cfg)
