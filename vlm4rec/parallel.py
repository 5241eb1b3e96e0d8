"""Text encoding over several processes: ``Trainer.predict`` with DDP, one file of rows per rank.

:func:`encode_sharded` is what :func:`vlm4rec.encoders.encode_items` runs when it is given more
than one device (or node): Lightning starts the processes (``strategy``: ``ddp`` re-runs the
command for each rank, or joins ranks started by ``torchrun``; ``ddp_spawn``/``ddp_fork`` start
them from this process), its distributed sampler hands each rank every N-th text, each rank
writes its vectors with their positions to ``work/rank-<r>.safetensors``, and the rows are put
back in order. Describing has its own sharded cache (:mod:`vlm4rec.inference`).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import BasePredictionWriter
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset


class _Texts(Dataset):
    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> tuple[int, str]:
        return i, self.texts[i]


def _collate(batch: list[tuple[int, str]]) -> tuple[torch.Tensor, list[str]]:
    return torch.tensor([i for i, _ in batch], dtype=torch.long), [t for _, t in batch]


class _TextData(pl.LightningDataModule):
    def __init__(self, texts: Sequence[str], batch_size: int) -> None:
        super().__init__()
        self.dataset, self.batch_size = _Texts(texts), batch_size

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(self.dataset, batch_size=self.batch_size, shuffle=False, collate_fn=_collate)


class EncodeModule(pl.LightningModule):
    """``predict_step``: the encoder's vectors of one batch of texts, with their positions."""

    def __init__(self, encoder: Any) -> None:
        super().__init__()
        self.encoder = encoder

    def on_predict_start(self) -> None:
        self.encoder.to(self.device)  # each rank's own device

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        return batch  # texts: the encoder tokenizes and moves its own tensors

    def predict_step(self, batch: tuple[torch.Tensor, list[str]], batch_idx: int) -> dict[str, torch.Tensor]:
        pos, texts = batch
        z = self.encoder.encode(texts, batch_size=len(texts), progress=False)
        return {"pos": pos, "z": torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))}


class _RankWriter(BasePredictionWriter):
    def __init__(self, work: Path) -> None:
        super().__init__(write_interval="epoch")
        self.work = work

    def write_on_epoch_end(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, predictions: Sequence[Any], batch_indices: Any
    ) -> None:
        preds = [p for p in predictions if isinstance(p, dict)] or [p for group in predictions for p in group]
        rows = {
            "pos": torch.cat([p["pos"] for p in preds]) if preds else torch.zeros(0, dtype=torch.long),
            "z": torch.cat([p["z"] for p in preds]) if preds else torch.zeros(0, 0),
        }
        save_file(
            {k: v.contiguous() for k, v in rows.items()}, str(self.work / f"rank-{trainer.global_rank}.safetensors")
        )


def encode_sharded(
    encoder: Any,
    texts: Sequence[str],
    work: Path,
    *,
    batch_size: int = 64,
    devices: int | str = 2,
    num_nodes: int = 1,
    strategy: str | None = None,
    accelerator: str = "auto",
    progress: bool = True,
) -> np.ndarray:
    """``encoder.encode(texts)`` across ``devices`` × ``num_nodes`` processes; ``work`` must be the
    same folder for every rank (a shared file system across nodes). Returns ``float32 [n × d]``
    on every rank (rank 0 removes ``work`` afterwards)."""
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.glob("rank-*.safetensors"):
        stale.unlink()
    trainer = pl.Trainer(
        accelerator=accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy or "ddp",
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        callbacks=[_RankWriter(work)],
    )
    trainer.predict(EncodeModule(encoder), datamodule=_TextData(texts, batch_size), return_predictions=False)
    trainer.strategy.barrier()
    vectors = gather_rows(work, len(texts))
    trainer.strategy.barrier()
    if trainer.global_rank == 0:
        shutil.rmtree(work, ignore_errors=True)
    return vectors


def gather_rows(work: Path, n: int) -> np.ndarray:
    """The rows of every ``rank-*.safetensors`` in ``work`` put back at their positions (the
    distributed sampler pads the last shard with repeats: they are written twice, identically)."""
    out: np.ndarray | None = None
    seen = np.zeros(n, dtype=bool)
    for part in sorted(work.glob("rank-*.safetensors")):
        t = load_file(str(part))
        if t["z"].numel() == 0:
            continue
        if out is None:
            out = np.zeros((n, t["z"].shape[1]), dtype=np.float32)
        pos = t["pos"].numpy()
        out[pos] = t["z"].numpy()
        seen[pos] = True
    if n and (out is None or not seen.all()):
        raise RuntimeError(f"sharded encoding returned {int(seen.sum())} of {n} rows (a rank failed?)")
    return out if out is not None else np.zeros((0, 0), dtype=np.float32)
