"""RecBole's general recommenders trained on *our* persisted split and scored by *our* evaluator.

``fit`` writes the split as RecBole atomic files (``{name}.train.inter``, ``.valid.inter``,
``.test.inter``, original ids as tokens) with :func:`benchmark.data.interop.export_recbole` in a
temporary directory, configures RecBole with ``benchmark_filename`` so its
parts are exactly ours, and trains through RecBole's core API (``recbole.trainer``; never
``recbole.quick_start``) with RecBole's own validation-based early stopping on the valid file.
The best epoch's weights are kept in memory (RecBole's checkpoint files need
``torch.load(weights_only=False)`` on torch >= 2.6, see :mod:`baselines.recbole_compat`).

``score`` calls the model's ``full_sort_predict`` and maps RecBole's internal item ids back to
our dense item ids through the original-id tokens (``field2token_id``), so column ``j`` is our
item ``j``; items RecBole never saw score ``-inf``
and users it never saw get a row of zeros. Masking and metrics are the harness's, never
RecBole's. RecBole reads the test file only to number ids (all three files share one id
space); its test loader is never evaluated.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from baselines.recbole_compat import contained, import_recbole, in_memory_best
from benchmark.data.interop import export_recbole
from benchmark.features import ItemFeatures
from benchmark.recommender import BaseRecommender
from benchmark.registry import register_model
from benchmark.split import PARTS, Split
from benchmark.train_config import TrainConfig, resolve_train

log = logging.getLogger(__name__)

# What the adapter fixes regardless of overrides: the data layout and where files go.
_FIXED_KEYS = ("data_path", "dataset", "benchmark_filename", "checkpoint_dir", "load_col")

#: RecBole's config key for each TrainConfig setting (``metric``/``eval_k`` make ``valid_metric``;
#: ``accelerator``/``devices`` make ``use_gpu``/``gpu_id``), so a config sets each in one place
TRAIN_TO_RECBOLE = {
    "max_epochs": "epochs",
    "patience": "stopping_step",
    "eval_every": "eval_step",
    "lr": "learning_rate",
    "weight_decay": "weight_decay",
    "batch_size": "train_batch_size",
    "eval_batch_size": "eval_batch_size",
    "gradient_clip_val": "clip_grad_norm",
    "metric": "valid_metric",
    "accelerator": "use_gpu",
    "devices": "gpu_id",
    "deterministic": "reproducibility",
    "enable_progress_bar": "show_progress",
}

#: our metric names → RecBole's
RECBOLE_METRICS = {
    "recall": "Recall",
    "ndcg": "NDCG",
    "hitrate": "Hit",
    "precision": "Precision",
    "mrr": "MRR",
    "map": "MAP",
}


def token_to_internal(field2token_id: Mapping[str, int], tokens: Sequence[str]) -> np.ndarray:
    """RecBole internal id of each of our tokens (``-1`` where RecBole has no such token)."""
    return np.array([field2token_id.get(str(t), -1) for t in tokens], dtype=np.int64)


def recbole_device(train: TrainConfig) -> tuple[bool, str]:
    """``(use_gpu, gpu_id)`` for RecBole from Lightning-style ``accelerator``/``devices``.

    The adapter trains in one process on one device; RecBole sets ``CUDA_VISIBLE_DEVICES`` to
    ``gpu_id``.
    """
    if train.num_nodes != 1 or train.strategy != "auto":
        raise ValueError("the RecBole adapter trains on one device: num_nodes must be 1 and strategy 'auto'")
    if train.accelerator == "mps":
        raise ValueError("RecBole cannot train on 'mps'; use accelerator 'cpu' or 'gpu'")
    if train.accelerator == "cpu" or (train.accelerator == "auto" and not torch.cuda.is_available()):
        return False, "0"
    if not torch.cuda.is_available():
        raise ValueError(f"accelerator {train.accelerator!r}: no CUDA device is available")
    devices = train.devices
    if isinstance(devices, list):
        if len(devices) != 1:
            raise ValueError(f"the RecBole adapter trains on one device, got devices={devices}")
        return True, str(devices[0])
    if isinstance(devices, int) or devices == "auto":
        if devices not in (1, "auto"):
            raise ValueError(f"the RecBole adapter trains on one device, got devices={devices}")
        return True, "0"
    return True, str(devices)  # a device index given as a string, e.g. "1"


class RecBoleRecommender(BaseRecommender):
    """Any RecBole general recommender behind the harness's ``fit``/``score`` protocol.

    ``train`` (:class:`~benchmark.train_config.TrainConfig`) sets RecBole's trainer keys
    (``TRAIN_TO_RECBOLE``: max_epochs → ``epochs``, patience → ``stopping_step``, lr →
    ``learning_rate``, batch_size → ``train_batch_size``, metric/eval_k → ``valid_metric``,
    accelerator/devices → ``use_gpu``/``gpu_id``, …); its defaults are RecBole's own
    (``train_defaults``). RecBole's early stopping runs on *our* validation part.
    ``config_overrides`` are passed to RecBole's ``Config`` for RecBole's model-specific keys
    (e.g. ``{"embedding_size": 32}``); the data layout and the trainer keys are not overridable
    there. ``seed`` defaults to RecBole's 2020.
    """

    #: RecBole 1.2.1's own defaults (overall.yaml): epochs 300, stopping_step 10, learning_rate
    #: 1e-3, train_batch_size 2048, eval_batch_size 4096 (interactions per batch, as RecBole counts)
    train_defaults: ClassVar[dict[str, Any]] = {
        "max_epochs": 300,
        "patience": 10,
        "lr": 1e-3,
        "batch_size": 2048,
        "eval_batch_size": 4096,
    }

    def __init__(
        self,
        model: str = "BPR",
        config_overrides: Mapping[str, Any] | None = None,
        workdir: str | None = None,
        *,
        seed: int = 2020,
        train: TrainConfig | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(model=model, config_overrides=dict(config_overrides or {}), workdir=workdir, seed=seed)
        self.train_config = train if isinstance(train, TrainConfig) else resolve_train(type(self).train_defaults, train)
        fixed = [k for k in self.params["config_overrides"] if k in _FIXED_KEYS]
        if fixed:
            raise ValueError(f"config_overrides may not set {fixed}: the adapter fixes the data layout")
        trainer_keys = {v: f"train.{k}" for k, v in TRAIN_TO_RECBOLE.items()} | {
            "valid_metric": "train.metric and train.eval_k",
            "seed": "the seed argument (the experiment's seeds)",
        }
        clash = [k for k in self.params["config_overrides"] if k in trainer_keys]
        if clash:
            where = "; ".join(f"{k}: {trainer_keys[k]}" for k in clash)
            raise ValueError(f"config_overrides may not set trainer keys, they come from the train config ({where})")
        recbole_device(self.train_config)  # refuse an impossible device now, not after loading data
        self.model: torch.nn.Module | None = None
        self.best_valid_score: float | None = None
        self.best_valid_result: dict[str, float] | None = None
        self._user_internal: np.ndarray | None = None
        self._item_internal: np.ndarray | None = None
        self._recbole_n_items = 0
        self._uid_field = "user_id"
        #: RecBole's token of each internal id (index 0 is its padding token), kept for inspection
        self.recbole_item_tokens: list[str] = []
        self.recbole_user_tokens: list[str] = []

    # ------------------------------------------------------------------------------ config
    def recbole_train(self) -> dict[str, Any]:
        """RecBole's trainer keys from ``self.train_config`` (see ``TRAIN_TO_RECBOLE``)."""
        t = self.train_config
        metric, k = RECBOLE_METRICS[t.metric], int(t.eval_k)
        if k > self.n_items - 1:  # RecBole's top-k over its items fails when k exceeds them
            log.warning(
                "train.eval_k %d: only %d items, selecting on %s@%d instead", k, self.n_items, metric, self.n_items - 1
            )
            k = self.n_items - 1
        use_gpu, gpu_id = recbole_device(t)
        return {
            "epochs": t.max_epochs,
            "stopping_step": t.patience,
            "eval_step": t.eval_every,
            "learning_rate": t.lr,
            "weight_decay": t.weight_decay,
            "train_batch_size": t.batch_size,
            "eval_batch_size": t.eval_batch_size,
            "clip_grad_norm": None if t.gradient_clip_val is None else {"max_norm": t.gradient_clip_val},
            "metrics": list(dict.fromkeys(["Recall", "NDCG", metric])),
            "topk": [k],
            "valid_metric": f"{metric}@{k}",
            "valid_metric_bigger": True,
            "use_gpu": use_gpu,
            "gpu_id": gpu_id,
            "reproducibility": t.deterministic is not False,
            "show_progress": t.enable_progress_bar,
        }

    def recbole_config(self, data_path: Path, name: str, workdir: Path) -> dict[str, Any]:
        """The full ``config_dict`` handed to RecBole (overrides, then the fixed keys, applied last)."""
        cfg: dict[str, Any] = {
            "seed": int(self.params["seed"]),
            "log_wandb": False,
            "save_dataset": False,
            "save_dataloaders": False,
            "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
            **self.recbole_train(),
        }
        cfg.update(self.params["config_overrides"])
        cfg.update(
            {
                "data_path": str(data_path),
                "dataset": name,
                "benchmark_filename": list(PARTS),
                "checkpoint_dir": str(workdir / "checkpoints"),
                "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
            }
        )
        return cfg

    # ------------------------------------------------------------------------------ fit
    def fit(self, split: Split, features: Mapping[str, ItemFeatures]) -> RecBoleRecommender:
        super().fit(split, features)
        config_mod = import_recbole("recbole.config")
        data_mod = import_recbole("recbole.data")
        utils_mod = import_recbole("recbole.utils")
        name = "vlm4rec"
        own_tmp = self.params["workdir"] is None
        workdir = Path(tempfile.mkdtemp(prefix="recbole-")) if own_tmp else Path(self.params["workdir"])
        try:
            if any(split.part(p)[["rating", "timestamp"]].isna().any().any() for p in PARTS):
                raise ValueError("the split has missing ratings/timestamps; RecBole would silently fill them")
            export_recbole(split, workdir, name)
            with contained(workdir):
                config = config_mod.Config(
                    model=self.params["model"], dataset=name, config_dict=self.recbole_config(workdir, name, workdir)
                )
                utils_mod.init_seed(config["seed"], config["reproducibility"])
                dataset = data_mod.create_dataset(config)
                train_data, valid_data, _test_data = data_mod.data_preparation(config, dataset)
                utils_mod.init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
                model_cls = utils_mod.get_model(config["model"])
                model = model_cls(config, train_data._dataset).to(config["device"])
                trainer_cls = in_memory_best(utils_mod.get_trainer(config["MODEL_TYPE"], config["model"]))
                trainer = trainer_cls(config, model)
            log.info(
                "training RecBole %s on %d users × %d items (≤ %d epochs)",
                self.params["model"],
                split.n_users,
                split.n_items,
                self.train_config.max_epochs,
            )
            self.best_valid_score, self.best_valid_result = trainer.fit(
                train_data, valid_data, saved=True, verbose=False
            )
            trainer.restore_best()
            trainer.tensorboard.close()
            model.eval()
            self.model = model
            self._uid_field = dataset.uid_field
            self._recbole_n_items = int(dataset.item_num)
            self.recbole_item_tokens = list(dataset.field2id_token[dataset.iid_field])
            self.recbole_user_tokens = list(dataset.field2id_token[dataset.uid_field])
            tokens_u = split.users["orig_user_id"].astype(str).tolist()
            tokens_i = split.items["orig_item_id"].astype(str).tolist()
            self._user_internal = token_to_internal(dataset.field2token_id[dataset.uid_field], tokens_u)
            self._item_internal = token_to_internal(dataset.field2token_id[dataset.iid_field], tokens_i)
            unseen = int((self._item_internal < 0).sum())
            if unseen:
                log.warning("%d of %d items never appear in RecBole's data; they score -inf", unseen, split.n_items)
        finally:
            if own_tmp:
                shutil.rmtree(workdir, ignore_errors=True)
        return self

    # ------------------------------------------------------------------------------ score
    @torch.no_grad()
    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        """``[len(user_ids), n_items]`` scores in our item order via ``full_sort_predict``."""
        if self.model is None or self._user_internal is None or self._item_internal is None:
            raise RuntimeError("call fit() before score()")
        interaction_mod = import_recbole("recbole.data.interaction")
        uids = user_ids.detach().cpu().numpy().astype(np.int64)
        internal_u = self._user_internal[uids]
        known = internal_u > 0
        out = torch.zeros(len(uids), self.n_items, dtype=torch.float32)
        if known.any():
            device = next(self.model.parameters()).device
            inter = interaction_mod.Interaction({self._uid_field: torch.from_numpy(internal_u[known])}).to(device)
            flat = self.model.full_sort_predict(inter)
            recbole_scores = flat.view(int(known.sum()), self._recbole_n_items).float().cpu()
            cols = torch.from_numpy(np.clip(self._item_internal, 0, None))
            out[torch.from_numpy(known)] = recbole_scores[:, cols]
        out[:, torch.from_numpy(self._item_internal < 0)] = float("-inf")
        if torch.isnan(out).any():
            raise FloatingPointError(f"RecBole {self.params['model']} produced NaN scores")
        return out.to(user_ids.device)


def _named(model: str) -> Any:
    def factory(**params: Any) -> RecBoleRecommender:
        return RecBoleRecommender(model=model, **params)

    factory.__signature__ = _signature_without_model()  # type: ignore[attr-defined]
    factory.__name__ = f"recbole_{model.lower()}"
    factory.train_defaults = RecBoleRecommender.train_defaults  # type: ignore[attr-defined]
    return factory


def _signature_without_model() -> Any:
    import inspect

    sig = inspect.signature(RecBoleRecommender.__init__)
    return sig.replace(parameters=[p for n, p in sig.parameters.items() if n not in ("self", "model")])


register_model("recbole")(RecBoleRecommender)
for _model in ("BPR", "LightGCN", "NGCF", "MultiVAE"):
    register_model(f"recbole-{_model.lower()}")(_named(_model))
