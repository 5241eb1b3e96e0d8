"""CLIP image and text item features through open_clip, by Lightning batch inference.

Any open_clip architecture and pretrained tag works by name (default ``ViT-L-14`` / ``openai``,
the features of the data the paper used); ``pretrained`` may also be a local weights file.
Extraction is ``Trainer.predict`` over an item :class:`ItemDataModule`, so ``devices``/``strategy``
give multi-GPU inference: every rank writes its rows to a shared work directory and every rank
then reads all of them back, so the result is the same everywhere.

- Image features: ``encode_image`` of open_clip's eval transform of each item's image; items
  without a local image or whose file does not decode get ``mask=False`` (counted, reported).
- Text features: ``encode_text`` of the title (``text_fields=("title", "description")`` adds the
  description), truncated to the model's context length by open_clip's tokenizer; items with no
  text get ``mask=False``.
- ``normalize=True`` (default) stores L2-normalised vectors, as CLIP's similarity uses;
  ``normalize=False`` stores the raw projections (the profile matcher normalises again anyway).

Results are cached under ``cache_dir`` keyed by a hash of the provenance (model, pretrained tag,
open_clip version, input hash over image sha256s / texts, split fingerprint, normalisation), and
saved as safetensors through :meth:`ItemFeatures.save` — never pickle.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from PIL import Image
from pytorch_lightning.callbacks import BasePredictionWriter
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset

from baselines.features.sources import hash_strings, image_hashes, item_texts, resolve_images
from benchmark.configuration import check_choices, choice
from benchmark.data.image_io import open_image
from benchmark.errors import ConfigError
from benchmark.features import ItemFeatures
from benchmark.features import load_cached as read_entry
from benchmark.split import Split

log = logging.getLogger(__name__)

KINDS = ("image", "text")
#: open_clip model precisions (``create_model_and_transforms(precision=...)``)
PRECISIONS = ("fp32", "fp16", "bf16")
DEFAULT_MODEL = "ViT-L-14"
DEFAULT_PRETRAINED = "openai"
#: the provenance fields that determine the vectors (everything else is about how they were computed)
CACHE_KEY_FIELDS = ("kind", "model", "pretrained", "open_clip_version", "input_hash", "split_fingerprint")
CACHE_KEY_FIELDS += ("normalized", "text_fields", "precision")


# ---------------------------------------------------------------------------------- data
class ItemImageDataset(Dataset):
    """``(item position, preprocessed image)``; undecodable files yield ``ok=False`` rows."""

    def __init__(
        self,
        positions: Sequence[int],
        paths: Sequence[Path],
        transform: Callable[[Image.Image], torch.Tensor],
        blank: torch.Tensor,
    ) -> None:
        self.positions = list(positions)
        self.paths = list(paths)
        self.transform = transform
        self.blank = blank

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> dict[str, Any]:
        try:
            x = self.transform(open_image(self.paths[i]))  # RGB, with the fetcher's pixel limit
            ok = True
        except Exception as exc:  # a bad file is a counted skip, not a crash of the whole run
            log.warning("could not decode image %s: %s", self.paths[i], exc)
            x, ok = self.blank, False
        return {"pos": self.positions[i], "x": x, "ok": ok}


class ItemTextDataset(Dataset):
    """``(item position, token ids)`` for non-empty texts."""

    def __init__(self, positions: Sequence[int], texts: Sequence[str], tokenizer: Callable[..., torch.Tensor]) -> None:
        self.positions = list(positions)
        self.tokens = tokenizer(list(texts)) if texts else torch.zeros(0, 1, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"pos": self.positions[i], "x": self.tokens[i], "ok": True}


class ItemDataModule(pl.LightningDataModule):
    """Serves one item dataset for ``Trainer.predict`` (Lightning shards it across ranks)."""

    def __init__(self, dataset: Dataset, batch_size: int = 64, num_workers: int = 0) -> None:
        super().__init__()
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_workers = num_workers

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers)


# ---------------------------------------------------------------------------------- model
class ClipEncoder(pl.LightningModule):
    """Wraps an open_clip model; ``predict_step`` returns positions, vectors and ok flags."""

    def __init__(self, clip_model: torch.nn.Module, kind: str, normalize: bool = True) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.clip_model = clip_model.eval()
        self.kind = kind
        self.normalize = normalize

    @torch.no_grad()
    def predict_step(self, batch: dict[str, Any], batch_idx: int, dataloader_idx: int = 0) -> dict[str, torch.Tensor]:
        x = batch["x"]
        if self.kind == "image":
            x = x.to(next(self.clip_model.parameters()).dtype)
            z = self.clip_model.encode_image(x)
        else:
            z = self.clip_model.encode_text(x)
        z = z.float()
        if self.normalize:
            z = F.normalize(z, dim=-1)
        return {"pos": batch["pos"].long().cpu(), "z": z.cpu(), "ok": batch["ok"].bool().cpu()}


class _RankWriter(BasePredictionWriter):
    """Each rank saves its predictions to ``out_dir/rank-<r>.safetensors``.

    ``out_dir`` is a private directory (``tempfile.mkdtemp``: mode 0700, an unpredictable name)
    made by rank 0 when the run starts and broadcast to the other ranks, so every rank writes
    to the same place and nobody else can read, plant or delete files there.
    """

    def __init__(self) -> None:
        super().__init__(write_interval="epoch")
        self.out_dir: Path | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        made = tempfile.mkdtemp(prefix="vlm4rec-clip-") if trainer.global_rank == 0 else None
        self.out_dir = Path(trainer.strategy.broadcast(made, src=0))

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Sequence[Any], batch_indices: Any
    ) -> None:
        preds = [p for p in predictions if isinstance(p, dict)]
        if not preds:  # Lightning nests per-dataloader lists
            preds = [p for group in predictions for p in group]
        tensors = {
            "pos": torch.cat([p["pos"] for p in preds]) if preds else torch.zeros(0, dtype=torch.long),
            "z": torch.cat([p["z"] for p in preds]) if preds else torch.zeros(0, 0),
            "ok": torch.cat([p["ok"] for p in preds]) if preds else torch.zeros(0, dtype=torch.bool),
        }
        assert self.out_dir is not None, "setup() makes the work directory"
        save_file(
            {k: v.contiguous() for k, v in tensors.items()},
            str(self.out_dir / f"rank-{trainer.global_rank}.safetensors"),
        )


# ---------------------------------------------------------------------------------- extraction
def load_clip(
    clip_model: str = DEFAULT_MODEL,
    pretrained: str | None = DEFAULT_PRETRAINED,
    precision: str = "fp32",
    cache_dir: str | None = None,
) -> tuple[torch.nn.Module, Callable, Callable]:
    """``(model, eval image transform, tokenizer)`` from open_clip (weights must be local)."""
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(
        clip_model, pretrained=pretrained or None, precision=precision, cache_dir=cache_dir
    )
    return model.eval(), preprocess, open_clip.get_tokenizer(clip_model)


def _image_size(transform: Any) -> tuple[int, int]:
    for t in getattr(transform, "transforms", []):
        size = getattr(t, "size", None)
        if isinstance(size, int):
            return size, size
        if isinstance(size, (tuple, list)) and len(size) == 2:
            return int(size[0]), int(size[1])
    return 224, 224


def cache_key(provenance: dict[str, Any]) -> str:
    """Short hash of everything that determines the features."""
    blob = json.dumps({k: provenance.get(k) for k in CACHE_KEY_FIELDS}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


@dataclass
class ClipConfig:
    """Which CLIP features (identity: part of the cache key) and how to run the extraction.

    ``kind``, ``clip_model``, ``pretrained``, ``precision``, ``normalize`` and ``text_fields``
    decide the vectors; ``batch_size``, ``num_workers``, ``accelerator``, ``devices`` and
    ``strategy`` only how fast they come (Lightning ``Trainer.predict``).
    """

    kind: str = choice("image", KINDS)
    #: open_clip architecture name
    clip_model: str = DEFAULT_MODEL
    #: open_clip pretrained tag or a local weights file; None for random weights
    pretrained: str | None = DEFAULT_PRETRAINED
    precision: str = choice("fp32", PRECISIONS)
    normalize: bool = True
    #: text kind: the item fields joined into the text (``("title", "description")`` adds the description)
    text_fields: Sequence[str] = ("title",)
    batch_size: int = 64
    num_workers: int = 0
    accelerator: str = "auto"
    devices: int | str | Sequence[int] = 1
    strategy: str = "auto"

    def validate(self, path: str = "") -> None:
        at = f"{path}." if path else ""
        for f in dataclasses.fields(self):
            check_choices(f, getattr(self, f.name), f"{at}{f.name}")
        if self.batch_size < 1:
            raise ConfigError(f"{at}batch_size: must be >= 1, got {self.batch_size}")


@dataclass
class ItemInputs:
    """What gets encoded: the positions of items that have an input, the inputs, what is missing."""

    positions: list[int]
    inputs: list[Any]  # image paths (image kind) or texts (text kind), one per position
    missing: Counter
    input_hash: str


def item_inputs(
    split: Split, cfg: ClipConfig, images: str | Path | None = None, roots: Sequence[str | Path] = ()
) -> ItemInputs:
    """Each item's local image (image kind; inside ``images`` or ``roots``) or text (text kind);
    items without one are counted."""
    n = split.n_items
    if cfg.kind == "image":
        src = resolve_images(split.items, images, roots)
        positions = [i for i, p in enumerate(src.paths) if p is not None]
        return ItemInputs(
            positions, [src.paths[i] for i in positions], src.missing, hash_strings(image_hashes(src.paths))
        )
    texts = item_texts(split.items, tuple(cfg.text_fields))
    positions = [i for i, t in enumerate(texts) if t]
    missing: Counter = Counter({"no_text": n - len(positions)} if len(positions) < n else {})
    return ItemInputs(positions, [texts[i] for i in positions], missing, hash_strings(texts))


def clip_provenance(split: Split, cfg: ClipConfig, input_hash: str) -> dict[str, Any]:
    """Everything that determines the features (the cache key is a hash of it)."""
    import open_clip

    return {
        "producer": "open_clip",
        "kind": cfg.kind,
        "model": cfg.clip_model,
        "pretrained": cfg.pretrained,
        "open_clip_version": open_clip.__version__,
        "precision": cfg.precision,
        "input_hash": input_hash,
        "split_fingerprint": split.fingerprint,
        "normalized": cfg.normalize,
        "text_fields": list(cfg.text_fields) if cfg.kind == "text" else None,
    }


def load_cached(cache_dir: str | Path | None, name: str, key: str) -> ItemFeatures | None:
    """The features cached under ``cache_dir/name/key`` when their provenance still has that key."""
    if cache_dir is None:
        return None
    entry = Path(cache_dir) / name / key
    feats = read_entry(entry, name)  # the one cache-entry reader: a torn or damaged entry is a miss
    if feats is None or cache_key(feats.provenance) != key:
        return None
    log.info("%s: loaded cached features from %s", name, entry)
    return feats


def clip_features(
    split: Split,
    cfg: ClipConfig | None = None,
    *,
    images: str | Path | None = None,
    cache_dir: str | Path | None = None,
    name: str | None = None,
    progress: bool = True,
    model: tuple[torch.nn.Module, Callable, Callable] | None = None,
    roots: Sequence[str | Path] = (),
) -> ItemFeatures:
    """CLIP features (``cfg.kind``: "image" or "text") of every item of ``split``.

    ``model`` may pass an already built ``(model, transform, tokenizer)``; otherwise
    :func:`load_clip` builds ``cfg.clip_model``/``cfg.pretrained``. With ``cache_dir`` a previous
    result with the same provenance is loaded instead of recomputed.
    """
    cfg = cfg or ClipConfig()
    cfg.validate()
    name = name or f"clip_{cfg.kind}"
    inputs = item_inputs(split, cfg, images, roots)
    provenance = clip_provenance(split, cfg, inputs.input_hash)
    key = cache_key(provenance)
    cached = load_cached(cache_dir, name, key)
    if cached is not None:
        return cached
    net, transform, tokenizer = model or load_clip(cfg.clip_model, cfg.pretrained, cfg.precision)
    if cfg.kind == "image":
        h, w = _image_size(transform)
        dataset: Dataset = ItemImageDataset(inputs.positions, inputs.inputs, transform, torch.zeros(3, h, w))
    else:
        dataset = ItemTextDataset(inputs.positions, inputs.inputs, tokenizer)
    n = split.n_items
    values, mask, failed = predict(ClipEncoder(net, cfg.kind, cfg.normalize), dataset, cfg, n, progress)
    if values is None:  # nothing to encode: still return an aligned, all-missing matrix
        values = torch.zeros(n, int(getattr(net, "embed_dim", 0) or _output_dim(net)))
    missing = inputs.missing.copy()
    if int(failed.sum()):
        missing["undecodable"] = int(failed.sum())
    n_missing = int((~mask).sum())
    provenance.update({"n_items": n, "n_missing": n_missing, "missing": dict(missing), "dim": values.shape[1]})
    if missing:
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(missing.items()))
        log.warning("%s: %d of %d items have no feature (%s)", name, n_missing, n, detail)
    feats = ItemFeatures(name, values, mask, provenance)
    if cache_dir is not None:
        feats.save(Path(cache_dir) / name / key)
    return feats


def predict(
    encoder: ClipEncoder, dataset: Dataset, cfg: ClipConfig, n: int, progress: bool = True
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Run ``Trainer.predict`` over ``dataset`` on ``cfg``'s devices and gather every rank's rows.

    Returns ``(values [n × d] or None when nothing was encoded, mask [n], undecodable [n])``, the
    same on every rank: each rank writes its rows to a private work directory rank 0 made (see
    :class:`_RankWriter`), then reads all back; rank 0 removes it.
    """
    writer = _RankWriter()
    try:
        trainer = pl.Trainer(
            accelerator=cfg.accelerator,
            devices=cfg.devices,
            strategy=cfg.strategy,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=progress,
            enable_model_summary=False,
            callbacks=[writer],
        )
        trainer.predict(
            encoder, datamodule=ItemDataModule(dataset, cfg.batch_size, cfg.num_workers), return_predictions=False
        )
        trainer.strategy.barrier()
        assert writer.out_dir is not None
        gathered = gather_rank_files(writer.out_dir, n)
        trainer.strategy.barrier()
    finally:
        rank0 = not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0
        if writer.out_dir is not None and rank0:
            shutil.rmtree(writer.out_dir, ignore_errors=True)
    return gathered


def gather_rank_files(work: Path, n: int) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """Merge the ``rank-*.safetensors`` rows into ``(values or None, mask, undecodable)``."""
    values: torch.Tensor | None = None
    mask = torch.zeros(n, dtype=torch.bool)
    failed = torch.zeros(n, dtype=torch.bool)
    for part in sorted(work.glob("rank-*.safetensors")):
        t = load_file(str(part))
        if t["z"].numel() == 0:
            continue
        if values is None:
            values = torch.zeros(n, t["z"].shape[1])
        pos, ok = t["pos"], t["ok"]
        values[pos[ok]] = t["z"][ok]
        mask[pos[ok]] = True
        failed[pos[~ok]] = True
    return values, mask, failed


def _output_dim(clip_model: torch.nn.Module) -> int:
    proj = getattr(clip_model, "text_projection", None)
    if isinstance(proj, torch.Tensor):
        return int(proj.shape[-1])
    raise ValueError("cannot tell the CLIP model's output dimension")
