"""Any model of a user's MMRec checkout trained on *our* split and features, scored by *our* evaluator.

``model: mmrec-freedom`` (one registered name per MMRec model class, :data:`MMREC_MODELS`) or
``model: mmrec, params: {model: FREEDOM}`` (any class of the checkout). ``fit``:

1. finds the checkout (:func:`baselines.mmrec_compat.locate_mmrec`) and the model class, refusing
   with a clear message when a package it needs (``torch_geometric``, ``lmdb``) is missing;
2. resolves MMRec's settings: ``overall.yaml`` ← the model's YAML (each grid key at its first value)
   ← ``params.config`` (:mod:`baselines.mmrec_config`), the trainer's keys from ``train``;
3. estimates the memory the model's item–item graphs need and refuses when it will not fit
   (:mod:`baselines.mmrec_memory`), before building anything;
4. writes the features (``image_feature`` → MMRec's ``v_feat``, ``text_feature`` → ``t_feat``) and
   any graph file the model reads into a temporary dataset folder, builds MMRec's ``RecDataset`` /
   ``TrainDataLoader`` from ``split.train`` (:mod:`baselines.mmrec_data`) and the model class;
5. trains like MMRec's trainer (its seeding, Adam, its learning-rate schedule, the model's
   ``pre_epoch_processing``/``calculate_loss``/``post_epoch_processing``) but selects on *our*
   validation part only: every ``eval_every`` epochs our evaluator ranks ``full_sort_predict``'s
   scores on ``split.valid``, training stops after ``patience`` checks without improvement, and
   the best epoch's model state is restored. MMRec's own trainer evaluates the test part every
   epoch and its ``quick_start`` picks hyper-parameters by test score; neither is used.

``score`` returns ``full_sort_predict`` for the users, columns in our item order (MMRec's item ids
are our dense ids). Trainer settings: :class:`~benchmark.train_config.TrainConfig`, with MMRec's
``overall.yaml`` values as :attr:`MMRecRecommender.train_defaults`.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from baselines import mmrec_compat as compat
from baselines import mmrec_config as mconf
from baselines.mmrec_data import FEATURE_FILES, USER_GRAPH_FILE, train_loader, write_inputs
from baselines.mmrec_loop import BestState, build_optimizer, train_epoch
from baselines.mmrec_memory import check_memory
from benchmark.errors import ConfigError
from benchmark.features import ItemFeatures
from benchmark.io import sha256_file
from benchmark.recommender import BaseRecommender, ValidationListener
from benchmark.registry import register_model
from benchmark.split import Split
from benchmark.train_config import TrainConfig, resolve_train

log = logging.getLogger(__name__)

#: MMRec's model classes at commit e775373, each registered as ``mmrec-<name lowercased>``
MMREC_MODELS: tuple[str, ...] = (
    "BM3",
    "BPR",
    "DAMRS",
    "DRAGON",
    "DualGNN",
    "FREEDOM",
    "GRCN",
    "ItemKNNCBF",
    "LATTICE",
    "LayerGCN",
    "LGMRec",
    "LightGCN",
    "MGCN",
    "MMGCF",
    "MMGCN",
    "MVGAE",
    "PGL",
    "SELFCFED_LGN",
    "SLMRec",
    "SMORE",
    "VBPR",
)


#: data files some MMRec models read that neither MMRec nor this adapter can make from a split
UNPRODUCIBLE_FILES: dict[str, str] = {
    "item_graph_dict_file": "a precomputed item graph file that MMRec ships no generator for",
}


class MMRecConfig(dict):
    """MMRec's ``Config`` contract: ``config[key]`` is ``None`` for a key nobody set."""

    def __getitem__(self, key: str) -> Any:
        return self.get(key)


class MMRecRecommender(BaseRecommender):
    """An MMRec model behind ``fit``/``score``.

    ``model``: MMRec's class name (``FREEDOM``, ``SMORE``, …). ``image_feature``/``text_feature``:
    names of the run's feature entries given to MMRec as ``v_feat``/``t_feat`` (multimodal models
    need at least one). ``config``: MMRec settings by MMRec's names (``{"reg_weight": 1e-4,
    "knn_k": 5}``); a grid key not given takes its grid's first value. ``mmrec_src``: the
    checkout's ``src/`` (default ``$VLM4REC_MMREC_SRC``).
    """

    #: MMRec's overall.yaml trainer values; patience 21 = its ``stopping_step: 20``, which stops
    #: after the 21st evaluation without improvement
    train_defaults: ClassVar[dict[str, Any]] = {
        "max_epochs": 1000,
        "patience": 21,
        "batch_size": 2048,
        "lr": 1e-3,
        "weight_decay": 0.0,
        "eval_batch_size": 4096,
    }
    #: fixed by a registered per-model subclass
    mmrec_model: ClassVar[str | None] = None
    #: shipped search space: the authors' grid from the checkout's model YAML
    search_space = staticmethod(mconf.entry_space)

    def __init__(
        self,
        model: str | None = None,
        image_feature: str | None = None,
        text_feature: str | None = None,
        config: Mapping[str, Any] | None = None,
        mmrec_src: str | None = None,
        seed: int = 0,
        train: TrainConfig | Mapping[str, Any] | None = None,
    ) -> None:
        model = model or self.mmrec_model
        if not model:
            raise ConfigError("model: MMRec's model class name is required (e.g. FREEDOM, SMORE, LGMRec, BM3)")
        super().__init__(
            model=model,
            image_feature=image_feature,
            text_feature=text_feature,
            config=dict(config or {}),
            mmrec_src=mmrec_src,
            seed=seed,
        )
        self.train_config = train if isinstance(train, TrainConfig) else resolve_train(self.train_defaults, train)
        self.required_features = tuple(f for f in (image_feature, text_feature) if f)
        self.model: torch.nn.Module | None = None
        self.device = torch.device("cpu")
        self.mmrec_settings: dict[str, Any] = {}
        self.mmrec_info: dict[str, Any] = {}
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self.valid_history: list[dict[str, float]] = []
        self.loss_history: list[dict[str, float]] = []
        self.stopped_on_nan: int | None = None
        self._logger: Any = None
        self._validation_listener: ValidationListener | None = None

    def set_logger(self, logger: Any) -> None:
        """A Lightning logger for the curves (``train/loss``, ``valid/<metric>@k`` per epoch)."""
        self._logger = logger

    def set_validation_listener(self, listener: ValidationListener | None) -> None:
        """Call ``listener(epoch, value)`` at every validation check of the next ``fit`` (a search's
        pruner; it may raise to stop the fit)."""
        self._validation_listener = listener

    # ------------------------------------------------------------------------------ settings
    def resolve_device(self) -> torch.device:
        """The one device MMRec's model runs on, from ``train.accelerator``/``train.devices``."""
        tc = self.train_config
        devices = tc.devices
        if isinstance(devices, list):
            if len(devices) != 1:
                raise ConfigError(f"train.devices: MMRec models train on one device, got {devices}")
            index = int(devices[0])
        elif str(devices) in ("1", "auto"):
            index = 0
        else:
            raise ConfigError(f"train.devices: MMRec models train on one device (1 or [index]), got {devices!r}")
        if tc.num_nodes != 1 or tc.strategy not in ("auto", "single_device"):
            raise ConfigError("train.num_nodes/strategy: MMRec models train on one device of one node")
        acc = tc.accelerator
        if acc == "auto":
            acc = "cuda" if torch.cuda.is_available() else "cpu"
        if acc in ("gpu", "cuda"):
            if not torch.cuda.is_available():
                raise ConfigError(f"train.accelerator: {tc.accelerator!r} asked for but no CUDA device is available")
            return torch.device("cuda", index)
        return torch.device(acc)

    def mmrec_config(self, src: Path, workdir: Path, device: torch.device) -> MMRecConfig:
        """MMRec's full settings for this run (model YAML, overrides, trainer keys, data layout)."""
        p, tc = self.params, self.train_config
        settings = mconf.resolve_model_config(src, p["model"], p["config"])
        own = mconf.model_yaml(src, p["model"])
        for note in mconf.trainer_settings_ignored(own, tc.to_dict()):
            log.warning("MMRec's %s.yaml sets %s", p["model"], note)
        settings.update(
            {
                "learning_rate": tc.lr,
                "weight_decay": tc.weight_decay,
                "epochs": tc.max_epochs,
                "stopping_step": tc.patience - 1,
                "train_batch_size": tc.batch_size,
                "eval_batch_size": tc.eval_batch_size,
                "eval_step": tc.eval_every,
                "valid_metric": f"{tc.metric.capitalize()}@{tc.eval_k}",
                "clip_grad_norm": {"max_norm": tc.gradient_clip_val} if tc.gradient_clip_val else None,
                "model": p["model"],
                "dataset": workdir.name,
                "data_path": str(workdir.parent) + "/",
                "USER_ID_FIELD": "userID",
                "ITEM_ID_FIELD": "itemID",
                "inter_splitting_label": "x_label",
                "vision_feature_file": FEATURE_FILES["image"],
                "text_feature_file": FEATURE_FILES["text"],
                "user_graph_dict_file": USER_GRAPH_FILE,
                "use_gpu": device.type == "cuda",
                "gpu_id": device.index or 0,
                "device": device,
                "seed": int(p["seed"]),
                "end2end": False,
                "use_raw_features": False,
                "save_recommended_topk": False,
            }
        )
        if settings.get("is_multimodal_model") and not self.required_features:
            raise ConfigError(
                f"MMRec's {p['model']} is multimodal: give image_feature and/or text_feature (names of feature entries)"
            )
        return MMRecConfig(settings)

    # ------------------------------------------------------------------------------ fit
    def fit(self, split: Split, features: Mapping[str, ItemFeatures] | None = None) -> MMRecRecommender:
        """Train MMRec's model on ``split.train``, select its best epoch on ``split.valid``."""
        features = features or {}
        p = self.params
        self.check_features(features, split)
        super().fit(split, features)
        src = compat.locate_mmrec(p["mmrec_src"])
        model_cls = compat.model_class(src, p["model"])
        reads = mconf.config_keys_read(src, p["model"])
        for key, what in UNPRODUCIBLE_FILES.items():
            if key in reads:
                raise compat.MMRecUnavailableError(
                    f"MMRec's {p['model']} reads {what} ({key}); it cannot run on our split"
                )
        self.device = device = self.resolve_device()
        roles = {"image": p["image_feature"], "text": p["text_feature"]}
        dims = {role: features[name].values.shape[1] for role, name in roles.items() if name}
        workdir = Path(tempfile.mkdtemp(prefix="mmrec-")) / "vlm4rec"
        try:
            config = self.mmrec_config(src, workdir, device)
            check_memory(p["model"], split.n_users, split.n_items, dims, config, device)
            source = compat.model_source(src, p["model"])
            write_inputs(
                workdir,
                split,
                {role: features[name] for role, name in roles.items() if name},
                user_graph="user_graph_dict_file" in reads,
            )
            # recorded with the results: the temporary folder and the device object are not settings
            self.mmrec_settings = {k: v for k, v in config.items() if k not in ("device", "data_path")}
            self.mmrec_info = {
                "src": str(src),
                "model_file": str(source),
                "model_file_sha256": sha256_file(source),
                "v_feat": roles["image"],
                "t_feat": roles["text"],
            }
            with compat.device_redirect(device), self._determinism():
                self._train(src, model_cls, config, split)
        finally:
            shutil.rmtree(workdir.parent, ignore_errors=True)
        return self

    @contextlib.contextmanager
    def _determinism(self) -> Iterator[None]:
        """torch's deterministic-algorithms mode while training when ``train.deterministic`` asks for it."""
        if not self.train_config.deterministic:
            yield
            return
        before = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True, warn_only=True)
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(before)

    def _train(self, src: Path, model_cls: type, config: MMRecConfig, split: Split) -> None:
        """MMRec's seeding and construction order, then epochs until ``patience`` checks bring no
        improvement on our validation part; the best epoch's state is restored."""
        model, loader = self._build(src, model_cls, config, split)
        optimizer, scheduler = build_optimizer(model, config)
        tc, name = self.train_config, self.params["model"]
        key = f"{tc.metric}@{tc.eval_k}"
        trains = config["req_training"] is not False  # ItemKNNCBF has nothing to train
        epochs = tc.max_epochs if trains else 1
        best, bad = BestState(model), 0
        self.valid_history, self.loss_history, self.stopped_on_nan = [], [], None
        for epoch in range(1, epochs + 1):
            progress = name if tc.enable_progress_bar else None
            loss = train_epoch(model, loader, optimizer, config["clip_grad_norm"], progress) if trains else 0.0
            if trains:
                scheduler.step()
            if loss != loss:  # NaN
                self.stopped_on_nan = epoch
                log.warning("MMRec %s: training loss is NaN at epoch %d; stopping", name, epoch)
                break
            self.loss_history.append({"epoch": epoch, "loss": loss})
            if epoch % tc.eval_every and epoch != epochs:
                self._log({"train/loss": loss}, epoch)
                continue
            value = self.validation_score(split, tc.metric, tc.eval_k, tc.eval_batch_size)
            self.valid_history.append({"epoch": epoch, key: value})
            self._log({"train/loss": loss, f"valid/{key}": value}, epoch)
            log.info("MMRec %s epoch %d: loss %.5f, valid %s = %.5f", name, epoch, loss, key, value)
            if self._validation_listener is not None:
                self._validation_listener(epoch, value)
            bad = 0 if best.offer(value, epoch, model) else bad + 1
            if bad >= tc.patience:
                break
        if best.value is None:
            raise FloatingPointError(f"MMRec {name}: the loss was NaN before any validation check")
        best.restore(model)
        model.eval()
        self.best_value, self.best_epoch = best.value, best.epoch
        if self._logger is not None and hasattr(self._logger, "save"):
            self._logger.save()
        log.info("MMRec %s: best valid %s = %.5f at epoch %d", name, key, best.value, best.epoch)

    def _build(self, src: Path, model_cls: type, config: MMRecConfig, split: Split) -> tuple[Any, Any]:
        """MMRec's loader and model, in the order its ``quick_start`` makes them (same random draws)."""
        utils_mod = compat.import_mmrec(src, "utils.utils")
        dataset_mod = compat.import_mmrec(src, "utils.dataset")
        loader = train_loader(dataset_mod, compat.import_mmrec(src, "utils.dataloader"), config, split)
        utils_mod.init_seed(config["seed"])  # MMRec seeds python, numpy and torch right before each run
        loader.pretrain_setup()
        with compat.gpu_construction_semantics():
            model = model_cls(config, loader)
        self.model = model.to(self.device)
        return self.model, loader

    def _log(self, metrics: dict[str, float], epoch: int) -> None:
        if self._logger is not None:
            self._logger.log_metrics(metrics, step=epoch)

    # ------------------------------------------------------------------------------ score
    def validation_score(self, split: Split, metric: str = "recall", k: int = 20, batch_size: int = 1024) -> float:
        """Mean ``metric@k`` on ``split.valid`` through the shared evaluator."""
        from benchmark.evaluation import evaluate

        result = evaluate(self, split, part="valid", ks=(k,), metrics=(metric,), batch_size=batch_size, progress=False)
        return float(result.means()[f"{metric}@{k}"])

    @torch.no_grad()
    def score(self, user_ids: torch.Tensor) -> torch.Tensor:
        """``full_sort_predict`` for ``user_ids``: ``[len(user_ids), n_items]`` on the model's device."""
        if self.model is None:
            raise RuntimeError("call fit() before score()")
        was_training = self.model.training
        self.model.eval()
        users = torch.as_tensor(user_ids, dtype=torch.long).to(self.device)
        # Some models sample at inference (LGMRec's Gumbel-softmax hyperedges): every call draws
        # the same noise from a seeded, forked generator, so a user's scores do not depend on the
        # evaluation batching, and scoring never advances the training random stream.
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with compat.device_redirect(self.device), torch.random.fork_rng(devices=devices):
                torch.manual_seed(int(self.params["seed"]))
                scores = self.model.full_sort_predict([users])
        finally:
            self.model.train(was_training)
        return scores.reshape(len(users), -1)[:, : self.n_items].float()

    def describe(self) -> dict[str, Any]:
        """Class, parameters, trainer settings, MMRec's resolved settings and the selection outcome."""
        out = super().describe()
        out.update(
            {
                "mmrec": {**self.mmrec_info, "settings": _jsonable(self.mmrec_settings)},
                "best_epoch": self.best_epoch,
                "best_valid": self.best_value,
                "valid_history": self.valid_history,
                "loss_history": self.loss_history,
                "stopped_on_nan": self.stopped_on_nan,
            }
        )
        return out


# ---------------------------------------------------------------------------------- helpers
def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# ---------------------------------------------------------------------------------- registration
def _named(model: str) -> type[MMRecRecommender]:
    """``mmrec-<model>``: the adapter with ``model`` fixed (its signature has no ``model``)."""

    def space(params: Mapping[str, Any]) -> dict[str, list[Any]]:
        return mconf.entry_space({**params, "model": model})

    attrs = {"mmrec_model": model, "__module__": __name__, "search_space": staticmethod(space)}
    cls = type(f"MMRec_{model}", (MMRecRecommender,), attrs)
    sig = inspect.signature(MMRecRecommender.__init__)
    cls.__signature__ = sig.replace(  # type: ignore[attr-defined]
        parameters=[p for n, p in sig.parameters.items() if n not in ("self", "model")]
    )
    return cls


register_model("mmrec")(MMRecRecommender)
for _model in MMREC_MODELS:
    register_model(f"mmrec-{_model.lower()}")(_named(_model))
