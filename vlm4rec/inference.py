"""Describe a split's catalogue with Lightning batch inference, resumably.

``run_describe`` plans the work (image paths, image sha256, prompt hashes, cache keys), skips
what the cache already has, and runs ``Trainer.predict`` over the rest: an
:class:`ItemDataModule` yields batches of :class:`ItemRecord` (images decoded by PIL in the
loader workers), :class:`DescribeModule.predict_step` calls the describer and appends the
batch to its rank's cache shard. With ``devices > 1`` or ``num_nodes > 1`` Lightning runs DDP
and each rank writes ``shard-<rank>``; rank 0 then merges the shards into the descriptions
table and the coverage report.

Coverage statuses: ``ok``, ``no_image`` (no local image file), ``undecodable_image`` (PIL could
not read it), ``failed_generation`` (the describer returned an error or blank text). The fallback policy
decides what the encoder does with a non-ok item: ``title`` (embed the title alone; an item
with an empty title is dropped and counted) or ``drop`` (no feature: mask False).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset

from benchmark.io import atomic_open, write_json
from vlm4rec.cache import DescriptionCache, now
from vlm4rec.describers.base import Describer
from vlm4rec.encoders import is_multi_process
from vlm4rec.images import image_status, load_image
from vlm4rec.records import IMAGE_OK, IMAGE_UNDECODABLE, DescriptionResult, ItemRecord
from vlm4rec.selection import ItemSelection, chosen_among
from vlm4rec.texts import FALLBACKS

log = logging.getLogger(__name__)

STATUS_OK = "ok"
STATUS_FAILED = "failed_generation"
STATUS_NOT_RUN = "not_described"
STATUS_NOT_SELECTED = "not_selected"
_INTERNAL_COLUMNS = {"item_id", "has_meta"}


@dataclass
class ItemPlan:
    """One item's planned work: where its image is and under which cache key it goes."""

    item_id: int
    item: str
    fields: dict[str, Any]
    image_path: str | None
    image_sha256: str | None
    image_status: str
    image_error: str | None
    prompt_sha256: str
    key: str


def item_fields(row: dict[str, Any]) -> dict[str, Any]:
    """Catalogue fields a prompt may use (``item`` is the original id)."""
    out = {k: v for k, v in row.items() if k not in _INTERNAL_COLUMNS and k != "orig_item_id"}
    out["item"] = str(row["orig_item_id"])
    return out


def plan_items(
    items: pd.DataFrame,
    describer: Describer,
    cache: DescriptionCache,
    image_root: str | Path | None = None,
    image_roots: Sequence[str | Path] = (),
) -> list[ItemPlan]:
    """Resolve images (inside ``image_root`` and ``image_roots`` only), hash them and the
    rendered prompts, and key every item."""
    from benchmark.io import sha256_file

    plans: list[ItemPlan] = []
    rows = items.to_dict("records")
    if rows and describer.kind != "precomputed":
        describer.prompt.check_fields(list(item_fields(rows[0])))
    for row in rows:
        fields = item_fields(row)
        status, path, reason = image_status(row, image_root, image_roots)
        sha = sha256_file(path) if path is not None else None
        probe = ItemRecord(item_id=int(row["item_id"]), item=fields["item"], fields=fields)
        prompt_sha = hashlib.sha256(describer.rendered_prompt(probe).encode()).hexdigest()
        plans.append(
            ItemPlan(
                item_id=int(row["item_id"]),
                item=fields["item"],
                fields=fields,
                image_path=str(path) if path is not None else None,
                image_sha256=sha,
                image_status=status,
                image_error=reason,
                prompt_sha256=prompt_sha,
                key=cache.key(sha, prompt_sha),
            )
        )
    return plans


class ItemDataset(Dataset):
    """Planned items → :class:`ItemRecord` with the image decoded (in loader workers)."""

    def __init__(self, plans: Sequence[ItemPlan], decode_images: bool = True) -> None:
        self.plans = list(plans)
        self.decode_images = decode_images

    def __len__(self) -> int:
        return len(self.plans)

    def __getitem__(self, i: int) -> ItemRecord:
        p = self.plans[i]
        rec = ItemRecord(
            item_id=p.item_id,
            item=p.item,
            fields=p.fields,
            image_sha256=p.image_sha256,
            image_status=p.image_status,
            image_error=p.image_error,
            prompt_sha256=p.prompt_sha256,
            key=p.key,
        )
        if self.decode_images and p.image_path is not None:
            image, data, sha, fmt, err = load_image(Path(p.image_path))
            rec.image, rec.image_bytes, rec.image_format = image, data, fmt
            if sha != p.image_sha256:
                # The file changed since planning: its key would be wrong, so do not describe it.
                rec.image, rec.image_status = None, IMAGE_UNDECODABLE
                rec.image_error = "image file changed during the run"
            elif err is not None:
                rec.image_status, rec.image_error, rec.image_bytes = IMAGE_UNDECODABLE, err, None
        return rec


def collate_records(batch: list[ItemRecord]) -> list[ItemRecord]:
    return list(batch)


class ItemDataModule(pl.LightningDataModule):
    """Serves planned items in fixed order (DDP shards them across ranks)."""

    def __init__(
        self, plans: Sequence[ItemPlan], batch_size: int = 8, num_workers: int = 0, decode_images: bool = True
    ) -> None:
        super().__init__()
        self.dataset = ItemDataset(plans, decode_images)
        self.batch_size = batch_size
        self.num_workers = num_workers

    def predict_dataloader(self) -> DataLoader:
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=collate_records,
            persistent_workers=False,
        )


class DescribeModule(pl.LightningModule):
    """``predict_step``: describe a batch and append it to this rank's cache shard (fsync'ed)."""

    def __init__(self, describer: Describer, cache: DescriptionCache) -> None:
        super().__init__()
        self.describer = describer
        self.cache = cache
        self.n_described = 0

    def on_predict_start(self) -> None:
        self.describer.setup(self.device)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        return batch  # PIL images and bytes: the describer moves its own tensors

    def predict_step(self, batch: list[ItemRecord], batch_idx: int) -> None:
        results = self.describer.describe(batch)
        if len(results) != len(batch):
            raise RuntimeError(f"describer returned {len(results)} results for {len(batch)} items")
        entries = [cache_entry(rec, res, self.global_rank) for rec, res in zip(batch, results)]
        self.cache.append(self.global_rank, entries)
        self.n_described += len(entries)
        return None


def cache_entry(rec: ItemRecord, res: DescriptionResult, rank: int) -> dict[str, Any]:
    if res.ok:
        status = STATUS_OK
    elif rec.image_status == IMAGE_UNDECODABLE:
        status = IMAGE_UNDECODABLE
    else:
        status = STATUS_FAILED
    return {
        "key": rec.key,
        "item": rec.item,
        "image_sha256": rec.image_sha256,
        "prompt_sha256": rec.prompt_sha256,
        "text": res.text if res.ok else None,
        "error": None if res.ok else (res.error or "empty description"),
        "status": status,
        "n_new_tokens": res.n_new_tokens,
        "rank": rank,
        "written_at": now(),
    }


@dataclass
class DescribeOutcome:
    descriptions_path: Path
    coverage_path: Path
    coverage: dict[str, Any]
    n_run: int


def run_describe(
    items: pd.DataFrame,
    describer: Describer,
    cache_root: str | Path,
    out_dir: str | Path,
    *,
    image_root: str | Path | None = None,
    image_roots: Sequence[str | Path] = (),
    batch_size: int = 8,
    devices: int | str = 1,
    accelerator: str = "auto",
    num_nodes: int = 1,
    num_workers: int = 0,
    fallback: str = "title",
    split_fingerprint: str = "",
    progress: bool = True,
    retry_failed: bool = True,
    selection: ItemSelection | None = None,
    train: pd.DataFrame | None = None,
    strategy: str | None = None,
) -> DescribeOutcome | None:
    """Describe every item not yet in the cache, then write the descriptions and coverage.

    ``selection`` (:class:`vlm4rec.selection.ItemSelection`) restricts the described items, e.g.
    to the paper's priority subset computed from ``train`` (the split's training part) among the
    items whose image resolved; the others get status ``not_selected`` (even when the cache has a
    description for them) and the fallback action, and ``coverage.json`` records the selection.

    With several devices or nodes Lightning runs ``strategy`` (default ``ddp``: it re-runs the
    command for each rank, or joins the ranks ``torchrun`` started; ``ddp_spawn``/``ddp_fork``
    start them from this process); each rank appends to its own cache shard. Returns the outcome
    in the process that ends up holding rank 0's results (``None`` on the other DDP ranks).
    """
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
    cache = DescriptionCache(cache_root, describer.identity())
    plans = plan_items(items, describer, cache, image_root, image_roots)
    chosen = None
    if selection is not None:
        if train is None:
            raise ValueError("an item selection needs the split's training part (train=...)")
        chosen = selection.choose(train, len(plans), chosen_among(plans, IMAGE_OK))
    todo = select_todo(plans, describer, cache, retry_failed, chosen)
    rank = 0
    if todo:
        multi = is_multi_process(devices, num_nodes)
        trainer = pl.Trainer(
            accelerator=accelerator,
            devices=devices,
            num_nodes=num_nodes,
            strategy=strategy or ("ddp" if multi else "auto"),
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=progress,
            inference_mode=True,
        )
        module = DescribeModule(describer, cache)
        dm = ItemDataModule(todo, batch_size=batch_size, num_workers=num_workers, decode_images=describer.needs_image)
        trainer.predict(module, datamodule=dm, return_predictions=False)
        trainer.strategy.barrier()
        rank = trainer.global_rank
    if rank != 0:
        return None
    return finalize(
        plans,
        cache,
        out_dir,
        describer,
        fallback,
        split_fingerprint,
        n_run=len(todo),
        chosen=chosen,
        selection=selection.provenance if selection is not None else None,
    )


def output_folder(split: Any, selection: ItemSelection | None) -> str:
    """The folder of a describe run's ``descriptions.jsonl`` under its describer's cache entry:
    per split, and per item selection (the same descriptions, a different subset used)."""
    name = f"split-{split.fingerprint[:12]}"
    if selection is None:
        return name
    key = hashlib.sha256(f"{selection.rule}|{selection.max_items}".encode()).hexdigest()[:8]
    return f"{name}-select-{selection.rule}-{selection.max_items}-{key}"


def select_todo(
    plans: Sequence[ItemPlan],
    describer: Describer,
    cache: DescriptionCache,
    retry_failed: bool = True,
    chosen: Collection[int] | None = None,
) -> list[ItemPlan]:
    """The plans still to describe: chosen (all when ``chosen`` is None), not cached, with the
    image the describer needs, one per cache key."""
    merged, _ = cache.read()
    seen: set[str] = set()
    todo: list[ItemPlan] = []
    n_no_image = n_cached = n_retry = 0
    for p in plans:
        if chosen is not None and p.item_id not in chosen:
            continue
        if describer.needs_image and p.image_status != IMAGE_OK:
            n_no_image += 1
            continue
        done = merged.get(p.key)
        # Undecodable bytes stay undecodable (same sha256): only generation failures are retried.
        if done is not None and (
            done.get("text") is not None or done.get("status") == IMAGE_UNDECODABLE or not retry_failed
        ):
            n_cached += 1
            continue
        n_retry += done is not None
        if p.key in seen:
            n_cached += 1  # same image and prompt as an item already queued
            continue
        seen.add(p.key)
        todo.append(p)
    log.info(
        "%d items: %d without a local image, %d cached, %d to describe (%d retried after a failure)",
        len(plans),
        n_no_image,
        n_cached,
        len(todo),
        n_retry,
    )
    return todo


def item_row(
    p: ItemPlan, entry: dict[str, Any] | None, describer: Describer, fallback: str, selected: bool = True
) -> dict[str, Any]:
    """One ``descriptions.jsonl`` row: the item's status (from its cache entry) and the fallback action."""
    error = None
    if not selected:
        status, text = STATUS_NOT_SELECTED, None
    elif entry is not None and entry.get("text") is not None:
        status, text = STATUS_OK, entry["text"]
    elif describer.needs_image and p.image_status != IMAGE_OK:
        status, text, error = p.image_status, None, p.image_error
    elif entry is not None:
        status, text, error = entry.get("status", STATUS_FAILED), None, entry.get("error")
    else:
        status, text = STATUS_NOT_RUN, None
    if status == STATUS_OK:
        action = "use"
    elif fallback == "title" and str(p.fields.get("title") or "").strip():
        action = "fallback_title"
    else:
        action = "drop"
    return {
        "item_id": p.item_id,
        "item": p.item,
        "description": text,
        "status": status,
        "action": action,
        "error": error,
        "image_sha256": p.image_sha256,
    }


def finalize(
    plans: Sequence[ItemPlan],
    cache: DescriptionCache,
    out_dir: str | Path,
    describer: Describer,
    fallback: str,
    split_fingerprint: str,
    n_run: int = 0,
    chosen: Collection[int] | None = None,
    selection: dict[str, Any] | None = None,
) -> DescribeOutcome:
    """Merge the shards into ``descriptions.jsonl`` (one row per item, by item id) + ``coverage.json``."""
    merged, report = cache.read()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    examples: dict[str, list[str]] = {}
    actions: dict[str, int] = {"use": 0, "fallback_title": 0, "drop": 0}
    rows = []
    for p in sorted(plans, key=lambda q: q.item_id):
        row = item_row(p, merged.get(p.key), describer, fallback, chosen is None or p.item_id in chosen)
        status = row["status"]
        counts[status] = counts.get(status, 0) + 1
        if status != STATUS_OK and len(examples.setdefault(status, [])) < 10:
            examples[status].append(p.item)
        actions[row["action"]] += 1
        rows.append(row)
    coverage = {
        "n_items": len(plans),
        "status_counts": counts,
        "status_examples": examples,
        "fallback": fallback,
        "action_counts": actions,
        "coverage": counts.get(STATUS_OK, 0) / max(1, len(plans)),
        "identity": cache.identity,
        "identity_sha256": cache.identity_hash,
        "cache_dir": str(cache.directory),
        "cache_read": report.as_dict(),
        "split_fingerprint": split_fingerprint,
        "n_described_this_run": n_run,
        **({"selection": selection} if selection is not None else {}),
    }
    desc_path = out / "descriptions.jsonl"
    with atomic_open(desc_path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
    cov_path = out / "coverage.json"
    write_json(cov_path, coverage)
    log.info("coverage: %s; fallback %r → %s", counts, fallback, actions)
    return DescribeOutcome(desc_path, cov_path, coverage, n_run)
