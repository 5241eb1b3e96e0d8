"""Experiment configuration: YAML validated into dataclasses.

Sections: ``dataset`` (where the split comes from), ``features`` (named item features and the
producer that makes each), ``models`` (display name → registered model + params), ``evaluation``,
``statistics``, ``logging``. Unknown keys, wrong types, unknown model/producer names and
references to undefined features are errors naming the key and the allowed values.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from benchmark.configuration import ConfigError, apply_overrides, from_dict, load_yaml, to_dict

PROTOCOLS = ("paper", "mmrec", "loo", "global-time", "official")
SOURCES = ("demo", "files", "prepared", "align-macridvae", "mmrec", "official-2023")
METRIC_NAMES = ("recall", "ndcg", "hitrate", "precision", "mrr", "map")


@dataclass
class DatasetConfig:
    """Where the split comes from.

    ``source``: ``demo`` (the built-in generated catalogue), ``files`` (raw release files →
    filter → split with ``protocol``), ``prepared`` (a split directory written by
    ``vlm4rec-bench data prepare``), ``align-macridvae`` / ``mmrec`` (import a folder with its own
    split and features), ``official-2023`` (the 2023 release's benchmark CSVs).
    """

    name: str = "demo"
    source: Literal["demo", "files", "prepared", "align-macridvae", "mmrec", "official-2023"] = "demo"
    release: Literal["2014", "2018", "2023"] | None = None
    reviews: str | None = None
    meta: str | None = None
    path: str | None = None
    category: str | None = None
    variant: str | None = None
    kcore: int = 5
    user_kcore: int | None = None
    item_kcore: int | None = None
    dedupe: Literal["earliest", "latest", "all"] = "earliest"
    image_only: bool = False
    protocol: Literal["paper", "mmrec", "loo", "global-time", "official"] = "mmrec"
    split_seed: int = 0
    protocol_params: dict[str, Any] = field(default_factory=dict)
    demo: dict[str, Any] = field(default_factory=dict)
    strict: bool = False

    def validate(self, path: str) -> None:
        p = f"{path}." if path else ""
        if self.source == "files":
            for key in ("release", "reviews"):
                if getattr(self, key) is None:
                    raise ConfigError(f"{p}{key}: required when source is 'files'")
        if self.source in ("prepared", "align-macridvae", "mmrec", "official-2023") and not self.path:
            raise ConfigError(f"{p}path: required when source is {self.source!r}")
        if self.source == "official-2023" and not self.category:
            raise ConfigError(f"{p}category: required when source is 'official-2023'")


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
    here); deterministic ones run once.
    """

    name: str
    model: str
    params: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] | None = None
    note: str = ""
    paper_name: str | None = None
    """The method's label in the paper's published table (for ``vlm4rec-bench claims``)."""


@dataclass
class EvaluationConfig:
    ks: list[int] = field(default_factory=lambda: [5, 10, 20])
    metrics: list[str] = field(default_factory=lambda: ["recall", "ndcg", "hitrate"])
    batch_size: int = 1024
    device: str = "cpu"
    subsets: bool = True
    users_with_feature: str | None = None
    """Evaluate only users whose train and evaluated part both hold an item that has this
    feature (the paper's protocol: users with LLaVA-captioned items). Default: all users."""

    def validate(self, path: str) -> None:
        p = f"{path}." if path else ""
        for i, m in enumerate(self.metrics):
            if m not in METRIC_NAMES:
                raise ConfigError(f"{p}metrics[{i}]: {m!r} is not a metric; allowed values: {', '.join(METRIC_NAMES)}")
        for i, k in enumerate(self.ks):
            if k < 1:
                raise ConfigError(f"{p}ks[{i}]: K must be >= 1, got {k}")
        if not self.ks:
            raise ConfigError(f"{p}ks: give at least one K")


@dataclass
class StatisticsConfig:
    baseline: str | None = None
    test: Literal["t", "wilcoxon", "randomization", "bootstrap"] = "t"
    correction: Literal["holm", "bonferroni", "bh", "none"] = "holm"
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
    logger: Literal["none", "csv", "tensorboard", "wandb"] = "wandb"
    project: str = "vlm4rec-bench"
    entity: str | None = None


@dataclass
class ExperimentConfig:
    experiment: str
    dataset: DatasetConfig
    models: list[ModelConfig]
    features: list[FeatureConfig] = field(default_factory=list)
    description: str = ""
    seeds: list[int] = field(default_factory=lambda: [0])
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    statistics: StatisticsConfig = field(default_factory=StatisticsConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    results_dir: str = "results"
    cache_dir: str = "datasets"
    published: str | None = None

    def validate(self, path: str) -> None:
        if not self.models:
            raise ConfigError("models: list at least one model")
        if not self.seeds:
            raise ConfigError("seeds: give at least one seed")
        _unique([m.name for m in self.models], "models", "name")
        _unique([f.name for f in self.features], "features", "name")
        from benchmark.producers import available_producers
        from benchmark.registry import available_models, get_model_factory

        producers = available_producers()
        for i, f in enumerate(self.features):
            if f.producer not in producers:
                raise ConfigError(
                    f"features[{i}].producer: unknown feature producer {f.producer!r}; allowed values: {', '.join(producers) or 'none'}"
                )
        models = available_models()
        feature_names = {f.name for f in self.features}
        for i, m in enumerate(self.models):
            if m.model not in models:
                raise ConfigError(f"models[{i}].model: unknown model {m.model!r}; allowed values: {', '.join(models)}")
            sig = inspect.signature(get_model_factory(m.model))
            accepted = [p for p in sig.parameters if p != "self"]
            if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
                for k in m.params:
                    if k == "seed":
                        raise ConfigError(f"models[{i}].params.seed: seeds come from `seeds`, not from params")
                    if k not in accepted:
                        raise ConfigError(
                            f"models[{i}].params.{k}: unknown parameter of model {m.model!r}; allowed: {', '.join(a for a in accepted if a != 'seed')}"
                        )
            for key in ("feature", "features", "text_feature", "image_feature"):
                val = m.params.get(key)
                if isinstance(val, str):
                    for part in val.split("+"):
                        if part not in feature_names:
                            raise ConfigError(
                                f"models[{i}].params.{key}: feature {part!r} is not defined in `features`; defined: {', '.join(sorted(feature_names)) or 'none'}"
                            )
        uwf = self.evaluation.users_with_feature
        if uwf is not None and uwf not in feature_names:
            raise ConfigError(
                f"evaluation.users_with_feature: feature {uwf!r} is not defined in `features`; "
                f"defined: {', '.join(sorted(feature_names)) or 'none'}"
            )
        names = [m.name for m in self.models]
        if self.statistics.baseline is not None and self.statistics.baseline not in names:
            raise ConfigError(
                f"statistics.baseline: {self.statistics.baseline!r} is not a model name; allowed values: {', '.join(names)}"
            )

    @property
    def baseline(self) -> str:
        return self.statistics.baseline or self.models[0].name


def _unique(values: list[str], section: str, key: str) -> None:
    seen: set[str] = set()
    for i, v in enumerate(values):
        if v in seen:
            raise ConfigError(f"{section}[{i}].{key}: {v!r} is used twice; names must be unique")
        seen.add(v)


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


def config_to_dict(cfg: ExperimentConfig) -> dict[str, Any]:
    return to_dict(cfg)
