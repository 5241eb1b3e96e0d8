"""Where the out-of-core stages run: a temp folder under the output folder and one DuckDB
connection held to a memory budget.

The budget (``dataset.memory_budget`` / ``--memory-budget``) is DuckDB's ``memory_limit``: its
operators (hash aggregates, joins, sorts, windows) keep their state in memory up to it and spill
to ``<tmp>/spill`` beyond it, so the peak memory of ``data prepare`` is set by the budget, not by
the number of lines. Default: :data:`DEFAULT_FRACTION` of the machine's memory. The temp folder
(``<out>/.prepare-tmp-<pid>-<random>``: the reader's Parquet chunks, DuckDB's database and spill
files) is removed when the work ends, on success and on failure alike.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from benchmark.errors import ConfigError

log = logging.getLogger(__name__)

#: share of the machine's memory the engine may use when no budget is given
DEFAULT_FRACTION = 0.1
#: the smallest budget accepted (DuckDB needs room for its operators' minimum state)
MIN_BUDGET = 256 << 20
TMP_PREFIX = ".prepare-tmp-"
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20, "mib": 1 << 20}
_UNITS |= {"g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30, "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}
_BUDGET = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*([a-z%]*)\s*$", re.IGNORECASE)


def total_memory() -> int:
    """Physical memory of the machine in bytes (cgroup limit when one is lower)."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            raw = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if raw.isdigit():
            total = min(total, int(raw))
    return total


def parse_budget(value: str | int | float | None, key: str = "memory_budget") -> int:
    """A memory budget in bytes from ``None`` (the default share), a byte count, a share of
    memory (``0.25`` or ``"25%"``) or a size (``"4GB"``, ``"512MiB"``; units are powers of 1024)."""
    if value is None:
        return max(MIN_BUDGET, int(total_memory() * DEFAULT_FRACTION))
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a size like 4GB, a share like 25% or 0.25; got {value!r}")
    if isinstance(value, (int, float)):
        number, unit = float(value), ("share" if 0 < value <= 1 else "")
    else:
        m = _BUDGET.match(str(value))
        if not m or (m.group(2).lower() not in _UNITS and m.group(2) != "%"):
            raise ConfigError(f"{key}: expected a size like 4GB, a share like 25% or 0.25; got {value!r}")
        number, unit = float(m.group(1)), m.group(2).lower()
        if unit == "" and 0 < number <= 1:
            unit = "share"
    if unit in ("%", "share"):
        share = number / 100 if unit == "%" else number
        if not 0 < share <= 1:
            raise ConfigError(f"{key}: a share of memory must be in (0, 100%]; got {value!r}")
        budget = int(total_memory() * share)
    else:
        budget = int(number * _UNITS[unit])
    if budget < MIN_BUDGET:
        raise ConfigError(f"{key}: {value!r} is below the minimum of {MIN_BUDGET >> 20} MiB")
    return budget


@dataclass
class Workspace:
    """The temp folder and DuckDB connection of one ``data prepare`` run."""

    tmp: Path
    con: duckdb.DuckDBPyConnection
    budget: int

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Run one statement (``params`` bound to ``?``) and return all its rows (none for DDL),
        so that no result is left pending on the connection."""
        log.debug("sql: %s", " ".join(query.split())[:300])
        result = self.con.execute(query, params) if params is not None else self.con.execute(query)
        return result.fetchall()

    def scalar(self, query: str, params: Any = None) -> Any:
        rows = self.sql(query, params)
        return rows[0][0] if rows else None

    def column(self, query: str, params: Any = None) -> Any:
        """The first column of ``query``'s result as a numpy array."""
        result = self.con.execute(query, params) if params is not None else self.con.execute(query)
        return next(iter(result.fetchnumpy().values()))

    def path(self, name: str) -> Path:
        return self.tmp / name


#: rows per record batch when streaming a result out of DuckDB
STREAM_BATCH = 1 << 19


def stream(ws: Workspace, query: str, params: Any = None, batch_rows: int = STREAM_BATCH) -> Iterator[pa.RecordBatch]:
    """The record batches of ``query``, read on a cursor of its own so that other statements
    (inserts of what is computed from them) can run on the connection meanwhile."""
    cur = ws.con.cursor()
    try:
        yield from cur.sql(query, params=params).to_arrow_reader(batch_rows)
    finally:
        cur.close()


@contextmanager
def workspace(out: str | os.PathLike[str], budget: int, threads: int | None = None) -> Iterator[Workspace]:
    """A :class:`Workspace` under ``out`` (created if needed), removed when the block ends."""
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=out_dir))
    con = None
    try:
        (tmp / "spill").mkdir()
        con = duckdb.connect(str(tmp / "engine.duckdb"))
        con.execute(f"SET memory_limit = '{budget >> 20}MiB'")
        con.execute("SET temp_directory = ?", [str(tmp / "spill")])
        # results that matter are ordered explicitly; letting DuckDB reorder the rest lets it
        # stream inserts and exports without buffering them
        con.execute("SET preserve_insertion_order = false")
        if threads:
            con.execute(f"SET threads = {int(threads)}")
        yield Workspace(tmp, con, budget)
    finally:
        if con is not None:
            con.close()
        shutil.rmtree(tmp, ignore_errors=True)
