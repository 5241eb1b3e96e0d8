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
from typing import Any

import numpy as np
import torch

from baselines.recbole_compat import contained, import_recbole, in_memory_best
from benchmark.data.interop import export_recbole
from benchmark.features import ItemFeatures
from benchmark.recommender import BaseRecommender
from benchmark.registry import register_model
from benchmark.split import PARTS, Split

log = logging.getLogger(__name__)

# What the adapter fixes regardless of overrides: the data layout and where files go.
_FIXED_KEYS = ("data_path", "dataset", "benchmark_filename", "checkpoint_dir", "load_col")


def token_to_internal(field2token_id: Mapping[str, int], tokens: Sequence[str]) -> np.ndarray:
    """RecBole internal id of each of our tokens (``-1`` where RecBole has no such token)."""
    return np.array([field2token_id.get(str(t), -1) for t in tokens], dtype=np.int64)


class RecBoleRecommender(BaseRecommender):
    """Any RecBole general recommender behind the harness's ``fit``/``score`` protocol.

    ``config_overrides`` are passed to RecBole's ``Config`` (its own parameter names, e.g.
    ``{"embedding_size": 32, "learning_rate": 1e-3}``); the data layout keys are fixed by the
    adapter. ``valid_metric`` (RecBole's name, e.g. ``"Recall@20"``) drives RecBole's early
    stopping on *our* validation part; ``stopping_step`` is its patience in evaluations.
    """

    def __init__(
        self,
        model: str = "BPR",
        epochs: int = 300,
        config_overrides: Mapping[str, Any] | None = None,
        seed: int = 2020,
        valid_metric: str = "Recall@20",
        stopping_step: int = 10,
        device: str | None = None,
        workdir: str | None = None,
    ) -> None:
        super().__init__(
            model=model,
            epochs=epochs,
            config_overrides=dict(config_overrides or {}),
            seed=seed,
            valid_metric=valid_metric,
            stopping_step=stopping_step,
            device=device,
            workdir=workdir,
        )
        fixed = [k for k in self.params["config_overrides"] if k in _FIXED_KEYS]
        if fixed:
            raise ValueError(f"config_overrides may not set {fixed}: the adapter fixes the data layout")
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
    def recbole_config(self, data_path: Path, name: str, workdir: Path) -> dict[str, Any]:
        """The full ``config_dict`` handed to RecBole (overrides applied last)."""
        device = self.params["device"]
        use_gpu = bool(device and str(device).startswith("cuda") and torch.cuda.is_available())
        gpu_id = str(device).split(":")[1] if use_gpu and ":" in str(device) else "0"
        metric, _, k_str = self.params["valid_metric"].partition("@")
        k = int(k_str) if k_str else 20
        if k > self.n_items - 1:  # RecBole's top-k over its items fails when k exceeds them
            log.warning(
                "valid_metric %s: only %d items, selecting on %s@%d instead",
                self.params["valid_metric"],
                self.n_items,
                metric,
                self.n_items - 1,
            )
            k = self.n_items - 1
        cfg: dict[str, Any] = {
            "epochs": int(self.params["epochs"]),
            "seed": int(self.params["seed"]),
            "reproducibility": True,
            "use_gpu": use_gpu,
            "gpu_id": gpu_id,
            "show_progress": False,
            "log_wandb": False,
            "save_dataset": False,
            "save_dataloaders": False,
            "eval_args": {"group_by": "user", "order": "RO", "mode": "full"},
            "metrics": ["Recall", "NDCG"],
            "topk": [k],
            "valid_metric": f"{metric}@{k}",
            "valid_metric_bigger": True,
            "stopping_step": int(self.params["stopping_step"]),
            "eval_step": 1,
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
                self.params["epochs"],
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
    return factory


def _signature_without_model() -> Any:
    import inspect

    sig = inspect.signature(RecBoleRecommender.__init__)
    return sig.replace(parameters=[p for n, p in sig.parameters.items() if n not in ("self", "model")])


register_model("recbole")(RecBoleRecommender)
for _model in ("BPR", "LightGCN", "NGCF", "MultiVAE"):
    register_model(f"recbole-{_model.lower()}")(_named(_model))
