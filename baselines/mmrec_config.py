"""MMRec's YAML configs read as data: a model's settings, its authors' grid as a search space.

A checkout's ``configs/overall.yaml`` holds the shared settings and ``configs/model/<NAME>.yaml``
a model's; a model file lists the grid it is tuned over in ``hyper_parameters`` (each named key
holds a list of values, e.g. FREEDOM's ``dropout: [0.8, 0.9]``). MMRec's ``quick_start`` runs
every combination and keeps the one with the best *test* score (MMRec issue #64); here the grid
is only read: :func:`search_space` returns it for a search that selects on validation, and one
run of a model takes, for each grid key, the value given in its config or else the grid's first
value (:func:`resolve_model_config`).

MMRec's trainer settings (``learning_rate``, ``epochs``, ``train_batch_size`` …) are not model
parameters here: they come from the model's ``train`` (:class:`benchmark.train_config.TrainConfig`),
see :data:`TRAIN_KEYS`; in a search space they appear as ``train.<key>``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from baselines.mmrec_compat import locate_mmrec, model_source
from benchmark.errors import ConfigError

log = logging.getLogger(__name__)

#: MMRec trainer setting -> the TrainConfig key that sets it instead
TRAIN_KEYS: dict[str, str] = {
    "learning_rate": "lr",
    "weight_decay": "weight_decay",
    "epochs": "max_epochs",
    "stopping_step": "patience",
    "train_batch_size": "batch_size",
    "eval_batch_size": "eval_batch_size",
    "eval_step": "eval_every",
    "valid_metric": "metric",
    "clip_grad_norm": "gradient_clip_val",
}
#: settings the adapter fixes (data layout, device, seed, MMRec's own evaluation and logging)
FIXED_KEYS: tuple[str, ...] = (
    "model",
    "dataset",
    "data_path",
    "inter_file_name",
    "USER_ID_FIELD",
    "ITEM_ID_FIELD",
    "TIME_FIELD",
    "inter_splitting_label",
    "vision_feature_file",
    "text_feature_file",
    "user_graph_dict_file",
    "use_gpu",
    "gpu_id",
    "device",
    "seed",
    "hyper_parameters",
    "metrics",
    "topk",
    "valid_metric_bigger",
    "checkpoint_dir",
    "save_recommended_topk",
    "recommend_topk",
    "end2end",
    "use_raw_features",
)

# YAML 1.1 reads "1e-05" (no dot) as a string; MMRec's configs are full of them.
_FLOAT = re.compile(r"^[-+]?(\d[\d_]*)?\.?\d*([eE][-+]?\d+)?$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$")


def _numbers(value: Any) -> Any:
    """Strings that spell a number become floats (recursively), as MMRec's own YAML loader reads them."""
    if isinstance(value, str) and value.strip() and _FLOAT.match(value.strip()) and any(c.isdigit() for c in value):
        try:
            return float(value.replace("_", ""))
        except ValueError:
            return value
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    return value


def read_yaml(path: Path) -> dict[str, Any]:
    """One MMRec YAML file as a dict (numbers as numbers; an empty file is ``{}``)."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return _numbers(data)


def model_yaml(src: Path, model: str) -> dict[str, Any]:
    """``configs/model/<model>.yaml`` (empty when the checkout has none for it)."""
    path = src / "configs" / "model" / f"{model}.yaml"
    return read_yaml(path) if path.is_file() else {}


def grid_keys(settings: Mapping[str, Any]) -> list[str]:
    """The keys a model's grid runs over (``hyper_parameters`` without ``seed``)."""
    return [k for k in settings.get("hyper_parameters") or [] if k != "seed"]


def search_space(model: str, src: str | Path | None = None) -> dict[str, list[Any]]:
    """The authors' grid for ``model``: ``{param: [values]}``, trainer keys as ``train.<key>``.

    E.g. FREEDOM: ``{"dropout": [0.8, 0.9], "reg_weight": [0.0, 1e-05, 0.0001, 0.001]}``;
    LATTICE: ``{"reg_weight": [...], "train.lr": [0.0001, 0.0005, 0.001, 0.005]}``. A key named in
    ``hyper_parameters`` with a single value gives a one-element list.
    """
    root = locate_mmrec(src)
    model_source(root, model)
    overall = read_yaml(root / "configs" / "overall.yaml")
    own = model_yaml(root, model)
    settings = {**overall, **own}
    space: dict[str, list[Any]] = {}
    for key in grid_keys(own):
        values = settings.get(key)
        values = list(values) if isinstance(values, list) else [values]
        space[f"train.{TRAIN_KEYS[key]}" if key in TRAIN_KEYS else key] = values
    return space


def entry_space(params: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The authors' grid in the runner's space format, for a model entry's ``params``
    (``model``, ``mmrec_src``): MMRec settings as ``config.<key>`` (a path into the adapter's
    ``config`` parameter), trainer keys as ``train.<key>``. This is the adapter's shipped
    ``search_space`` (:mod:`benchmark.runner.search`); its selection reads validation only.
    """
    model = params.get("model")
    if not model:
        raise ConfigError("model: MMRec's model class name is required to read its grid")
    grid = search_space(str(model), params.get("mmrec_src"))
    return {key if key.startswith("train.") else f"config.{key}": values for key, values in grid.items()}


def config_keys_read(src: Path, model: str) -> set[str]:
    """Every ``config['key']`` the model's file reads (keys it reads but no YAML sets are ``None``)."""
    text = model_source(src, model).read_text(encoding="utf-8", errors="replace")
    return set(re.findall(r"config\[\s*['\"]([A-Za-z_][\w.]*)['\"]\s*\]", text))


def resolve_model_config(src: Path, model: str, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """MMRec's settings for one run of ``model``: overall ← model YAML ← ``overrides``, grids resolved.

    A grid key takes its value from ``overrides`` or else the grid's first value. ``overrides``
    may set any key the YAMLs define or the model's file reads; data-layout keys are fixed by the
    adapter and trainer keys belong to ``train`` (both refused, naming what to use instead).
    """
    overall = read_yaml(src / "configs" / "overall.yaml")
    own = model_yaml(src, model)
    settings = {**overall, **own}
    overrides = _numbers(dict(overrides or {}))
    allowed = (set(settings) | config_keys_read(src, model)) - set(FIXED_KEYS) - set(TRAIN_KEYS)
    for key in overrides:
        if key in TRAIN_KEYS:
            raise ConfigError(f"config.{key}: a trainer setting; set it as train.{TRAIN_KEYS[key]}")
        if key in FIXED_KEYS:
            raise ConfigError(f"config.{key}: fixed by the adapter (data layout, device, seed, evaluation)")
        if key not in allowed:
            raise ConfigError(f"config.{key}: not a setting of MMRec's {model}; allowed: {', '.join(sorted(allowed))}")
    for key in grid_keys(own):
        if key in TRAIN_KEYS:
            continue  # the trainer's value comes from `train`
        value = settings.get(key)
        settings[key] = value[0] if isinstance(value, list) and value else value
    settings.update(overrides)
    settings["hyper_parameters"] = []
    return settings


def trainer_settings_ignored(own: Mapping[str, Any], train: Mapping[str, Any]) -> list[str]:
    """Trainer keys the model's own YAML sets to a value the effective ``train`` does not use (for a warning)."""
    notes = []
    for key, train_key in TRAIN_KEYS.items():
        if key not in own or key in grid_keys(own) or train_key not in train:
            continue
        value = own[key]
        if not isinstance(value, list) and value != train[train_key] and key != "stopping_step":
            notes.append(f"{key}={value!r} (train.{train_key}={train[train_key]!r} is used)")
    return notes
