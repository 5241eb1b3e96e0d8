"""The write side of the streaming readers: record batches → one Parquet file, as they come.

``read_reviews(..., sink=ParquetSink(path))`` keeps a reader's memory flat: each batch of
:data:`~benchmark.data.records.BATCH_ROWS` checked rows becomes one row group of ``path`` (with
the rows' file-order position ``pos``), which the out-of-core stages of ``data prepare``
(:mod:`benchmark.prepare.engine`) read back.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from benchmark.data.records import INTERACTION_SCHEMA


class ParquetSink:
    """Writes :data:`INTERACTION_SCHEMA` record batches to one Parquet file (one row group each).

    ``close()`` finishes the file (an empty one when no batch came) and returns the row count.
    Use it as a context manager so the file is closed on errors too.
    """

    def __init__(self, path: str | os.PathLike[str], compression: str = "zstd") -> None:
        self.path = Path(path)
        self.rows = 0
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self.path, INTERACTION_SCHEMA, compression=compression)

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            raise ValueError(f"{self.path}: the sink is closed")
        self._writer.write_batch(batch)
        self.rows += batch.num_rows

    def close(self) -> int:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        return self.rows

    def __enter__(self) -> ParquetSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
