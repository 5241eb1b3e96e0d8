"""Read back what W&B wrote in an offline run directory (``run-<id>.wandb``).

The file is W&B's transaction log: a 7-byte header (``:W&B``, a 2-byte key, a version byte)
followed by LevelDB-log-format records (32 KiB blocks; each record = crc32c (4 bytes), length
(2, little endian), type (1: full, 2: first, 3: middle, 4: last)) whose payloads are
``wandb_internal_pb2.Record`` protobufs. Used by tests and by ``vlm4rec-bench`` users who want
to check an offline run before syncing it.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_BLOCK = 32768
_HEADER = 7


def iter_records(path: str | Path) -> Iterator[Any]:
    """Yield the protobuf records of a ``.wandb`` file."""
    from wandb.proto import wandb_internal_pb2 as pb

    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B transaction log")
    pos = _HEADER
    pending = b""
    while pos + _HEADER <= len(data):
        left_in_block = _BLOCK - (pos % _BLOCK)
        if left_in_block < _HEADER:
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + _HEADER])
        pos += _HEADER
        chunk = data[pos : pos + length]
        pos += length
        if kind == 0 and length == 0:
            continue  # zero padding at a block's end
        if kind in (1, 2):
            pending = chunk
        else:
            pending += chunk
        if kind in (1, 4):
            rec = pb.Record()  # type: ignore[attr-defined]  # generated protobuf class
            rec.ParseFromString(pending)
            pending = b""
            yield rec


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every ``wandb.log`` row of an offline run directory, values JSON-decoded."""
    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {run_dir}")
    rows = []
    for rec in iter_records(files[0]):
        if rec.WhichOneof("record_type") == "history":
            rows.append(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in rec.history.item}
            )
    return rows


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    """The last summary values of an offline run (``run.summary``)."""
    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {run_dir}")
    out: dict[str, Any] = {}
    for rec in iter_records(files[0]):
        if rec.WhichOneof("record_type") == "summary":
            for item in rec.summary.update:
                out[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return out


def read_config(run_dir: str | Path) -> dict[str, Any]:
    files = sorted(Path(run_dir).glob("run-*.wandb"))
    out: dict[str, Any] = {}
    for rec in iter_records(files[0]):
        if rec.WhichOneof("record_type") == "config":
            for item in rec.config.update:
                out[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return out
