"""Dataset stage: a :class:`DatasetConfig` → its split, built once per config in the data cache.

The split is made by :func:`benchmark.prepare.load_dataset` — the same function ``data prepare``
and ``data import`` call, so a config and the equivalent command give the same fingerprint —
into ``<cache_dir>/<name>/<protocol or source>-<seed>-<config hash>/`` and reused from there.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.configuration import to_dict
from benchmark.prepare import DatasetConfig, load_dataset, source_dir
from benchmark.prepare.config import RESOURCE_KEYS
from benchmark.split import Split

log = logging.getLogger(__name__)


@dataclass
class DatasetResult:
    """The split, where it is, where its source files are, and their recorded checksums."""

    split: Split
    split_dir: Path
    raw_dir: Path | None
    checksums: dict[str, str] = field(default_factory=dict)

    def split_info(self) -> dict[str, Any]:
        """What a run directory's ``split.json`` records about its split."""
        return {
            "fingerprint": self.split.fingerprint,
            "catalogue_sha256": self.split.catalogue_sha256,
            "protocol": self.split.protocol,
            "params": self.split.params,
            "summary": self.split.summary(),
            "split_dir": str(self.split_dir),
            "dataset_checksums": self.checksums,
        }


def dataset_dirs(ds: DatasetConfig, cache_dir: str | Path) -> tuple[Path, Path]:
    """(raw dir, split dir) in the data cache for this dataset config."""
    root = Path(cache_dir) / ds.name
    identity = {k: v for k, v in to_dict(ds).items() if k not in RESOURCE_KEYS}  # e.g. the memory budget
    key = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:10]
    kind = ds.protocol if ds.source in ("demo", "files") else ds.source
    return root / "raw", root / f"{kind}-{ds.split_settings().seed}-{key}"


def build_split(ds: DatasetConfig, cache_dir: str | Path) -> DatasetResult:
    """Build (or load the cached) split for ``ds``; also return its source files' checksums."""
    raw_dir, split_dir = dataset_dirs(ds, cache_dir)
    if (split_dir / "split.json").exists():
        split = Split.load(split_dir)
        log.info("using cached split %s (fingerprint %s)", split_dir, split.fingerprint[:12])
        return DatasetResult(split, split_dir, source_dir(ds, raw_dir), recorded_checksums(split.params))
    loaded = load_dataset(ds, split_dir, raw_dir=raw_dir)
    return DatasetResult(loaded.split, loaded.split_dir, loaded.raw_dir, recorded_checksums(loaded.split.params))


def recorded_checksums(params: Any, prefix: str = "") -> dict[str, str]:
    """Every ``sha256`` the split's parameters record for its source files, by dotted key path."""
    out: dict[str, str] = {}
    if isinstance(params, dict):
        if isinstance(params.get("sha256"), str):
            out[prefix or "source"] = params["sha256"]
        for k, v in params.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if k == "files" and isinstance(v, dict):  # importers record {file name: sha256}
                out.update({f"{key}.{name}": h for name, h in v.items() if isinstance(h, str) and len(h) == 64})
            elif k != "sha256":
                out.update(recorded_checksums(v, key))
    elif isinstance(params, list):
        for i, v in enumerate(params):
            out.update(recorded_checksums(v, f"{prefix}[{i}]"))
    return out
