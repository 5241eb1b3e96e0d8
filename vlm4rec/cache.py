"""Append-only, crash-safe cache of generated descriptions.

Layout: ``<cache_dir>/<identity hash>/identity.json`` (model id + revision, prompt name/hash,
generation settings: everything that changes the output) and one ``shard-<rank>.jsonl`` per
writer rank. An entry's ``key`` is sha256 over (identity hash, image sha256, rendered-prompt
sha256), so the same image with the same prompt text is described once.

Durability: each batch is appended as whole lines, then flushed and fsync'ed, so a run killed
at any moment loses at most the batch in flight. A kill during the write can leave a torn last
line (no trailing newline): readers detect it, report it and ignore it; the next append
truncates it away before writing (the repair is logged).

Merging shards (deterministic): shards are read in file-name order and lines in file order;
for each key the first *successful* entry wins; a failed generation is kept only while no
success exists for that key (failures are retried on the next run). Merged output is sorted
by item id, then key.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SHARD_GLOB = "shard-*.jsonl"


def identity_hash(identity: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a describer's identity."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class CacheReadReport:
    """What reading the shards found: line counts and any torn/corrupt lines (file, line no.)."""

    n_lines: int = 0
    n_entries: int = 0
    n_duplicates: int = 0
    torn: list[tuple[str, int]] = field(default_factory=list)
    corrupt: list[tuple[str, int]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "n_lines": self.n_lines,
            "n_entries": self.n_entries,
            "n_duplicates": self.n_duplicates,
            "torn_lines": [f"{f}:{n}" for f, n in self.torn],
            "corrupt_lines": [f"{f}:{n}" for f, n in self.corrupt],
        }


class DescriptionCache:
    """Description cache for one describer identity under ``root``."""

    def __init__(self, root: str | Path, identity: Mapping[str, Any]) -> None:
        self.identity = dict(identity)
        self.identity_hash = identity_hash(self.identity)
        self.directory = Path(root) / self.identity_hash[:20]
        self.directory.mkdir(parents=True, exist_ok=True)
        ident_file = self.directory / "identity.json"
        if not ident_file.exists():
            from benchmark.io import write_json

            write_json(ident_file, {"identity": self.identity, "identity_sha256": self.identity_hash})

    # ------------------------------------------------------------------ keys
    def key(self, image_sha256: str | None, prompt_sha256: str) -> str:
        """Cache key of one (image, rendered prompt) under this identity."""
        h = hashlib.sha256()
        for part in (self.identity_hash, image_sha256 or "no-image", prompt_sha256):
            h.update(part.encode())
            h.update(b"\x1f")
        return h.hexdigest()

    def shard_path(self, rank: int) -> Path:
        return self.directory / f"shard-{rank:05d}.jsonl"

    # ------------------------------------------------------------------ write
    def append(self, rank: int, entries: Iterable[Mapping[str, Any]]) -> int:
        """Append whole lines for one batch, then flush + fsync. Returns the number written."""
        lines = [json.dumps(dict(e), sort_keys=True, ensure_ascii=False) + "\n" for e in entries]
        if not lines:
            return 0
        path = self.shard_path(rank)
        with open(path, "a+b") as fh:
            # One writer per shard file; the lock turns an accidental second writer into a wait.
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                _repair_torn_tail(fh, path)
                fh.write("".join(lines).encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        return len(lines)

    # ------------------------------------------------------------------ read
    def read(self) -> tuple[dict[str, dict[str, Any]], CacheReadReport]:
        """Merged entries by key (rule in the module docstring) and a read report."""
        report = CacheReadReport()
        merged: dict[str, dict[str, Any]] = {}
        for path in sorted(self.directory.glob(SHARD_GLOB)):
            data = path.read_bytes()
            lines = data.split(b"\n")
            complete_last = data.endswith(b"\n")
            for i, raw in enumerate(lines, start=1):
                if not raw.strip():
                    continue
                is_tail = i == len(lines) and not complete_last
                try:
                    entry = json.loads(raw)
                    if not isinstance(entry, dict) or "key" not in entry:
                        raise ValueError("not a cache entry")
                except ValueError:
                    if is_tail:
                        report.torn.append((path.name, i))
                        log.warning("ignoring torn last line %d of %s (a run was killed mid-write)", i, path)
                    else:
                        report.corrupt.append((path.name, i))
                        log.error("ignoring corrupt line %d of %s", i, path)
                    continue
                if is_tail:
                    # A parseable line without its newline is still an interrupted write.
                    report.torn.append((path.name, i))
                    log.warning("ignoring unterminated last line %d of %s", i, path)
                    continue
                report.n_lines += 1
                key = entry["key"]
                prev = merged.get(key)
                if prev is None or (prev.get("text") is None and entry.get("text") is not None):
                    merged[key] = entry
                else:
                    report.n_duplicates += 1
        report.n_entries = len(merged)
        return merged, report

    def merged_entries(self) -> list[dict[str, Any]]:
        """Merged entries sorted by item id, then key (the deterministic merge order)."""
        merged, _ = self.read()
        return sorted(merged.values(), key=lambda e: (str(e.get("item", "")), e["key"]))


def _repair_torn_tail(fh, path: Path) -> None:
    """Truncate a file opened ``a+b`` back to its last newline if its last line is torn."""
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    if size == 0:
        return
    fh.seek(size - 1)
    if fh.read(1) == b"\n":
        return
    # Walk back to the previous newline (lines are short; read in chunks).
    pos = size
    chunk = 1 << 16
    cut = 0
    while pos > 0:
        start = max(0, pos - chunk)
        fh.seek(start)
        block = fh.read(pos - start)
        idx = block.rfind(b"\n")
        if idx >= 0:
            cut = start + idx + 1
            break
        pos = start
    fh.truncate(cut)
    fh.flush()
    os.fsync(fh.fileno())
    log.warning("repaired %s: removed a torn last line of %d bytes before appending", path, size - cut)


def now() -> float:
    return round(time.time(), 3)
