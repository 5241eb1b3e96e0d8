"""Item features aligned to a split's dense item ids, with provenance.

Stored as ``<name>.safetensors`` (values + mask; never pickle) beside ``<name>.json``
(provenance: producer, model id/revision, library versions, input hash, split fingerprint,
coverage). This pair is the one cache-entry format of every feature cache (the runner's
features stage, VLM4Rec's text encoders, CLIP): :meth:`ItemFeatures.save` writes each file
atomically, the ``.json`` last — its presence commits the entry — and :func:`load_cached` is
the one way to read an entry back: a torn entry (killed mid-write), a corrupt file or values
that do not match the recorded checksum are a *miss* (recomputed and overwritten), never an
error that blocks every later run.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from benchmark.errors import IntegrityError
from benchmark.io import atomic_path, read_json, write_json

log = logging.getLogger(__name__)


class FeatureIntegrityError(IntegrityError, ValueError):
    """A saved feature file whose values no longer match its recorded checksum."""


@dataclass(init=False)
class ItemFeatures:
    """A named ``[n_items × d]`` float32 matrix; ``mask[i]`` is False where item i has no feature."""

    name: str
    values: torch.Tensor
    """float32 ``[n_items × d]``, contiguous."""
    mask: torch.Tensor
    """bool ``[n_items]``; every item present when none was given."""
    provenance: dict[str, Any]

    # An explicit __init__ (not the generated one) so the constructor can say what it accepts
    # (arrays, no mask) while the attributes say what every reader gets (tensors, a mask).
    def __init__(
        self,
        name: str,
        values: torch.Tensor | np.ndarray,
        mask: torch.Tensor | np.ndarray | None = None,
        provenance: dict[str, Any] | None = None,
    ) -> None:
        self.name = name
        if not isinstance(values, torch.Tensor):
            values = torch.as_tensor(np.asarray(values))
        self.values = values.detach().to(torch.float32).contiguous()
        if self.values.ndim != 2:
            raise ValueError(f"features {self.name!r} must be 2-d [n_items, d], got shape {tuple(self.values.shape)}")
        if mask is None:
            mask = torch.ones(self.values.shape[0], dtype=torch.bool)
        self.mask = torch.as_tensor(mask, dtype=torch.bool).contiguous()
        if self.mask.shape != (self.values.shape[0],):
            raise ValueError(
                f"mask of {self.name!r} has shape {tuple(self.mask.shape)}, expected ({self.values.shape[0]},)"
            )
        if not torch.isfinite(self.values[self.mask]).all():
            raise ValueError(f"features {self.name!r} contain NaN/inf for items marked present")
        self.provenance = {} if provenance is None else provenance

    @property
    def n_items(self) -> int:
        return int(self.values.shape[0])

    @property
    def dim(self) -> int:
        return int(self.values.shape[1])

    @property
    def coverage(self) -> float:
        return float(self.mask.float().mean()) if self.n_items else 0.0

    def checksum(self) -> str:
        """sha256 of the values and mask (what the results' provenance records)."""
        h = hashlib.sha256()
        h.update(self.values.numpy().tobytes())
        h.update(self.mask.numpy().tobytes())
        return h.hexdigest()

    def check_aligned(self, n_items: int) -> None:
        if self.n_items != n_items:
            raise ValueError(
                f"features {self.name!r} have {self.n_items} rows but the split has {n_items} items; "
                "features must be aligned to the split's dense item ids"
            )

    def save(self, directory: str | Path) -> Path:
        """Write the entry: ``.safetensors`` first, then ``.json`` (each atomically); the ``.json``
        is the commit marker, so an entry is complete exactly when both are there and agree."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        meta = d / f"{self.name}.json"
        meta.unlink(missing_ok=True)  # a re-save un-commits the old entry before replacing its values
        with atomic_path(d / f"{self.name}.safetensors") as tmp:
            save_file({"values": self.values, "mask": self.mask}, str(tmp))
        write_json(
            meta,
            {
                "name": self.name,
                "shape": list(self.values.shape),
                "checksum": self.checksum(),
                "coverage": self.coverage,
                "provenance": self.provenance,
            },
        )
        return d / f"{self.name}.safetensors"

    @classmethod
    def load(cls, directory: str | Path, name: str) -> ItemFeatures:
        d = Path(directory)
        tensors = load_file(str(d / f"{name}.safetensors"))
        meta = read_json(d / f"{name}.json")
        feats = cls(name=name, values=tensors["values"], mask=tensors["mask"], provenance=meta.get("provenance", {}))
        if meta.get("checksum") and feats.checksum() != meta["checksum"]:
            raise FeatureIntegrityError(f"features {name!r} in {d} do not match their recorded checksum")
        return feats


def load_cached(directory: str | Path, name: str) -> ItemFeatures | None:
    """A cache entry written by :meth:`ItemFeatures.save`, or ``None`` when there is no complete,
    intact entry (no ``.json``: never committed or torn; unreadable or checksum mismatch: corrupt).
    A damaged entry is logged and left to be overwritten by the caller's recomputation."""
    d = Path(directory)
    if not (d / f"{name}.json").is_file():
        if (d / f"{name}.safetensors").exists():
            log.warning("cache entry %s/%s was not finished (no %s.json); recomputing it", d, name, name)
        return None
    try:
        return ItemFeatures.load(d, name)
    except Exception as exc:  # safetensors raises its own error type; a cache read must never block a run
        log.warning("cache entry %s/%s is damaged (%s: %s); recomputing it", d, name, type(exc).__name__, exc)
        return None


def find_features(name: str, directories: list[Path], *, split_fingerprint: str | None = None) -> tuple[Path, str]:
    """Where feature set ``name`` is: ``(directory, entry name)``.

    ``name`` may be an entry's own name (``clip_image`` written by ``features``/``encode``, or a
    run's full ``text-<hash>``) or the plain name a run caches under ``<name>-<hash>``
    (``<dataset cache>/features``); in the latter case only entries made from this split
    (``split_fingerprint``) count, and several candidates are an error listing them. A missing
    name is a :class:`FileNotFoundError` saying where it looked.
    """
    for d in directories:
        if (d / f"{name}.json").is_file():
            return d, name
    found: list[tuple[Path, str]] = []
    for d in directories:
        for meta in sorted(d.glob(f"{name}-*.json")) if d.is_dir() else []:
            entry = meta.stem
            if not _RUN_ENTRY.fullmatch(entry[len(name) + 1 :]):
                continue
            try:
                prov = read_json(meta).get("provenance", {})
            except (OSError, ValueError):
                continue
            if split_fingerprint is None or prov.get("split_fingerprint") == split_fingerprint:
                found.append((d, entry))
    if len(found) == 1:
        return found[0]
    looked = ", ".join(str(d) for d in directories)
    if found:
        names = ", ".join(e for _, e in found)
        raise FileNotFoundError(
            f"feature {name!r} has several cached entries for this split ({names}); give one of them"
        )
    raise FileNotFoundError(f"feature {name!r} not found (looked for {name}.json and {name}-<hash>.json in {looked})")


_RUN_ENTRY = re.compile(r"[0-9a-f]{16}")


def concat_features(name: str, parts: list[ItemFeatures]) -> ItemFeatures:
    """Column-wise concatenation; an item has the result only if it has every part."""
    if not parts:
        raise ValueError("concat_features needs at least one feature set")
    n = parts[0].n_items
    for p in parts:
        p.check_aligned(n)
    values = torch.cat([p.values for p in parts], dim=1)
    mask = torch.stack([p.mask for p in parts]).all(dim=0)
    return ItemFeatures(
        name,
        values,
        mask,
        {"op": "concat", "inputs": [p.name for p in parts], "input_checksums": [p.checksum() for p in parts]},
    )
