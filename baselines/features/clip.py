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

import hashlib
import json
import logging
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
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
from benchmark.features import ItemFeatures
from benchmark.split import Split

log = logging.getLogger(__name__)

KINDS = ("image", "text")
DEFAULT_MODEL = "ViT-L-14"
DEFAULT_PRETRAINED = "openai"


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
            with Image.open(self.paths[i]) as im:
                x = self.transform(im.convert("RGB"))
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
    """Each rank saves its predictions to ``out_dir/rank-<r>.safetensors``."""

    def __init__(self, out_dir: Path) -> None:
        super().__init__(write_interval="epoch")
        self.out_dir = out_dir

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
        save_file(
            {k: v.contiguous() for k, v in tensors.items()},
            str(self.out_dir / f"rank-{trainer.global_rank}.safetensors"),
        )


# ---------------------------------------------------------------------------------- extraction
def load_clip(
    model_name: str = DEFAULT_MODEL,
    pretrained: str | None = DEFAULT_PRETRAINED,
    precision: str = "fp32",
    cache_dir: str | None = None,
) -> tuple[torch.nn.Module, Callable, Callable]:
    """``(model, eval image transform, tokenizer)`` from open_clip (weights must be local)."""
    import open_clip

    model, _, preprocess = open_clip.create_model_and_transforms(
        model_name, pretrained=pretrained or None, precision=precision, cache_dir=cache_dir
    )
    return model.eval(), preprocess, open_clip.get_tokenizer(model_name)


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
    keys = (
        "kind",
        "model",
        "pretrained",
        "open_clip_version",
        "input_hash",
        "split_fingerprint",
        "normalized",
        "text_fields",
        "precision",
    )
    blob = json.dumps({k: provenance.get(k) for k in keys}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def clip_features(
    split: Split,
    kind: str = "image",
    model_name: str = DEFAULT_MODEL,
    pretrained: str | None = DEFAULT_PRETRAINED,
    *,
    images: str | Path | None = None,
    text_fields: Sequence[str] = ("title",),
    normalize: bool = True,
    batch_size: int = 64,
    num_workers: int = 0,
    accelerator: str = "auto",
    devices: int | str | Sequence[int] = 1,
    strategy: str = "auto",
    precision: str = "fp32",
    cache_dir: str | Path | None = None,
    name: str | None = None,
    progress: bool = True,
    model: tuple[torch.nn.Module, Callable, Callable] | None = None,
) -> ItemFeatures:
    """CLIP ``kind`` ("image" or "text") features of every item of ``split``.

    ``model`` may pass an already built ``(model, transform, tokenizer)``; otherwise
    :func:`load_clip` builds ``model_name``/``pretrained``. With ``cache_dir`` a previous result
    with the same provenance is loaded instead of recomputed.
    """
    import open_clip

    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    name = name or f"clip_{kind}"
    n = split.n_items
    missing: Counter = Counter()
    if kind == "image":
        src = resolve_images(split.items, images)
        positions = [i for i, p in enumerate(src.paths) if p is not None]
        missing.update(src.missing)
        input_hash = hash_strings(image_hashes(src.paths))
    else:
        texts = item_texts(split.items, text_fields)
        positions = [i for i, t in enumerate(texts) if t]
        if len(positions) < n:
            missing["no_text"] = n - len(positions)
        input_hash = hash_strings(texts)
    provenance: dict[str, Any] = {
        "producer": "open_clip",
        "kind": kind,
        "model": model_name,
        "pretrained": pretrained,
        "open_clip_version": open_clip.__version__,
        "precision": precision,
        "input_hash": input_hash,
        "split_fingerprint": split.fingerprint,
        "normalized": normalize,
        "text_fields": list(text_fields) if kind == "text" else None,
    }
    key = cache_key(provenance)
    cached_dir = Path(cache_dir) / name / key if cache_dir is not None else None
    if cached_dir is not None and (cached_dir / f"{name}.safetensors").exists():
        feats = ItemFeatures.load(cached_dir, name)
        if cache_key(feats.provenance) == key:
            log.info("%s: loaded cached features from %s", name, cached_dir)
            return feats

    clip_model, transform, tokenizer = model if model is not None else load_clip(model_name, pretrained, precision)
    if kind == "image":
        h, w = _image_size(transform)
        dataset: Dataset = ItemImageDataset(
            positions, [src.paths[i] for i in positions], transform, torch.zeros(3, h, w)
        )
    else:
        dataset = ItemTextDataset(positions, [texts[i] for i in positions], tokenizer)

    work = Path(tempfile.gettempdir()) / f"vlm4rec-clip-{key}"  # same path on every rank
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.glob("rank-*.safetensors"):
        stale.unlink()
    try:
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=devices,
            strategy=strategy,
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=progress,
            enable_model_summary=False,
            callbacks=[_RankWriter(work)],
        )
        trainer.predict(
            ClipEncoder(clip_model, kind, normalize),
            datamodule=ItemDataModule(dataset, batch_size, num_workers),
            return_predictions=False,
        )
        trainer.strategy.barrier()
        dim = None
        values = torch.zeros(0)
        mask = torch.zeros(n, dtype=torch.bool)
        failed = torch.zeros(n, dtype=torch.bool)
        for part in sorted(work.glob("rank-*.safetensors")):
            t = load_file(str(part))
            if t["z"].numel() == 0:
                continue
            if dim is None:
                dim = t["z"].shape[1]
                values = torch.zeros(n, dim)
            pos, ok = t["pos"], t["ok"]
            values[pos[ok]] = t["z"][ok]
            mask[pos[ok]] = True
            failed[pos[~ok]] = True
        trainer.strategy.barrier()
    finally:
        if not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0:
            shutil.rmtree(work, ignore_errors=True)
    if dim is None:  # nothing to encode: still return an aligned, all-missing matrix
        dim = int(getattr(clip_model, "embed_dim", 0) or _output_dim(clip_model))
        values = torch.zeros(n, dim)
    if int(failed.sum()):
        missing["undecodable"] = int(failed.sum())
    provenance.update({"n_items": n, "n_missing": int((~mask).sum()), "missing": dict(missing), "dim": dim})
    if missing:
        log.warning(
            "%s: %d of %d items have no feature (%s)",
            name,
            int((~mask).sum()),
            n,
            ", ".join(f"{k}: {v}" for k, v in sorted(missing.items())),
        )
    feats = ItemFeatures(name, values, mask, provenance)
    if cached_dir is not None:
        feats.save(cached_dir)
    return feats


def _output_dim(clip_model: torch.nn.Module) -> int:
    proj = getattr(clip_model, "text_projection", None)
    if isinstance(proj, torch.Tensor):
        return int(proj.shape[-1])
    raise ValueError("cannot tell the CLIP model's output dimension")
