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
import time
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


def run_records(run_dir: str | Path, wait_s: float = 60.0) -> list[Any]:
    """Every record of an offline run directory's ``run-*.wandb`` file. W&B's service writes the
    file after ``run.finish()`` returns, so this waits (up to ``wait_s``) for its ``exit`` record
    and then returns what is there."""
    files = sorted(Path(run_dir).glob("run-*.wandb"))
    if not files:
        raise FileNotFoundError(f"no run-*.wandb file in {run_dir}")
    deadline = time.monotonic() + wait_s
    while True:
        try:
            records = list(iter_records(files[0]))
        except Exception:  # a record still being written
            records = []
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.1)


def read_history(run_dir: str | Path) -> list[dict[str, Any]]:
    """Every ``wandb.log`` row of an offline run directory, values JSON-decoded."""
    rows = []
    for rec in run_records(run_dir):
        if rec.WhichOneof("record_type") == "history":
            rows.append(
                {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in rec.history.item}
            )
    return rows


def read_summary(run_dir: str | Path) -> dict[str, Any]:
    """The last summary values of an offline run (``run.summary``)."""
    out: dict[str, Any] = {}
    for rec in run_records(run_dir):
        if rec.WhichOneof("record_type") == "summary":
            for item in rec.summary.update:
                out[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return out


def read_config(run_dir: str | Path) -> dict[str, Any]:
    """The config of an offline run (``run.config``), values JSON-decoded."""
    out: dict[str, Any] = {}
    for rec in run_records(run_dir):
        kind = rec.WhichOneof("record_type")
        if kind in ("run", "config"):  # wandb.init's config is in the run record, later updates in config records
            for item in (rec.run.config if kind == "run" else rec.config).update:
                out[item.key or "/".join(item.nested_key)] = json.loads(item.value_json)
    return out


def read_run_info(run_dir: str | Path) -> dict[str, Any]:
    """The run record of an offline run: ``id``, ``job_type``, ``group``, ``tags``, ``name``."""
    for rec in run_records(run_dir):
        if rec.WhichOneof("record_type") == "run":
            r = rec.run
            return {
                "id": r.run_id,
                "job_type": r.job_type,
                "group": r.run_group,
                "tags": list(r.tags),
                "name": r.display_name,
            }
    return {}


def read_table(run_dir: str | Path, key: str) -> dict[str, Any]:
    """The last ``wandb.Table`` logged under ``key`` in an offline run: ``{"columns", "data"}``."""
    path = None
    for row in read_history(run_dir):  # W&B flattens the table's reference: "<key>/_type", "<key>/path"
        value = row.get(key)
        nested: dict[str, Any] = value if isinstance(value, dict) else {}
        if row.get(f"{key}/_type", nested.get("_type")) == "table-file":
            path = row.get(f"{key}/path", nested.get("path"))
    if path is None:
        raise KeyError(f"no table {key!r} in {run_dir}")
    return json.loads((Path(run_dir) / "files" / path).read_text(encoding="utf-8"))


def offline_runs(wandb_dir: str | Path) -> list[Path]:
    """The offline run directories under a run's ``wandb/`` folder."""
    return sorted(p for p in Path(wandb_dir).glob("offline-run-*") if p.is_dir())
