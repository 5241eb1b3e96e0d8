"""Review lines parsed by several processes, with exactly the sequential reader's result.

The parent decompresses and cuts the file into blocks of whole lines
(:func:`~benchmark.data.lines.iter_line_chunks`); worker processes run the release reader's own
line handler over each block (:func:`~benchmark.data.lines.lines_of`, the handler's
:class:`~benchmark.data.records.InteractionBuilder` checks) and send back the kept rows as Arrow
arrays and every report entry (kind, line, detail) in order; the parent appends the rows to the
sink in file order (so ``pos`` is unchanged) and replays the entries into the file's report — the
same counts, the same first line numbers, and with ``strict`` the same first error. Used for
large files when a sink takes the rows (``data prepare``); the in-memory reader stays sequential.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from benchmark.data.lines import iter_line_chunks, iter_lines, lines_of
from benchmark.data.read_report import Plausibility, ReadReport
from benchmark.data.records import InteractionBuilder, run_lines
from benchmark.data.window import DateWindow, WindowTally

log = logging.getLogger(__name__)

#: a reader's line handler for a builder: ``factory(builder) -> handle(lineno, line)``
HandlerFactory = Callable[[InteractionBuilder], Callable[[int, bytes], None]]
#: lines per task (a few MiB of text): large enough that pickling costs little per line
TASK_LINES = 32_768
#: files smaller than this are read in one process (starting workers costs more)
MIN_PARALLEL_BYTES = 64 << 20


class _Recorder(ReadReport):
    """A report that records entries (never raises): the parent replays them into the real one."""

    def __init__(self, plausible: Plausibility) -> None:
        super().__init__(file="", plausible=plausible)  # the parent's bounds: the same lines implausible
        self.entries: list[tuple[str, int | None, str]] = []

    def add(self, kind: str, line: int | None, detail: str = "") -> None:
        self.entries.append((kind, line, detail))


#: below this many cores one process reads: measured on 2 cores, the parent's share (decompressing,
#: cutting blocks, writing) plus the workers' start-up and pickling cost more CPU than they save
MIN_CORES = 4


def default_workers() -> int:
    """Parsing processes when none are asked for: one per core but the parent's, from
    :data:`MIN_CORES` cores on; 1 (read in this process) below."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores - 1 if cores >= MIN_CORES else 1


def use_parallel(path: str | os.PathLike[str], workers: int | None) -> bool:
    """Whether ``path`` is worth several parsing processes (large enough, more than one worker)."""
    n = default_workers() if workers is None else workers
    return n > 1 and Path(path).stat().st_size >= MIN_PARALLEL_BYTES


def _parse(
    factory: HandlerFactory,
    ts_divisor: int,
    window: DateWindow | None,
    plausible: Plausibility,
    first: int,
    data: bytes,
    final: bool,
) -> tuple[Any, ...]:
    """One task in a worker: the block's kept rows (Arrow), its report entries and its date
    window counts."""
    rec = _Recorder(plausible)
    out = InteractionBuilder(rec, ts_divisor, window)
    run_lines(lines_of(first, data.split(b"\n"), final, rec), rec, factory(out))
    return (*out.columns(), rec.entries, out.tally)


def _add_tally(total: WindowTally, part: WindowTally) -> None:
    """A block's window counts added to the file's (every count is a sum over the records)."""
    total.kept += part.kept
    total.before += part.before
    total.after += part.after
    for edge, counts in ((total.start, part.start), (total.end, part.end)):
        for key, n in counts.items():
            edge[key] += n


def _tasks(path: str | os.PathLike[str], report: ReadReport) -> Iterator[tuple[int, bytes, bool]]:
    """Blocks of about :data:`TASK_LINES` lines (one final line stays a task of its own)."""
    pending: list[bytes] = []
    start = 1
    for first, parts, final in iter_line_chunks(path, report):
        if final:
            if pending:
                yield start, b"\n".join(pending), False
                pending = []
            yield first, parts[0], True
            continue
        if not pending:
            start = first
        pending.extend(parts)
        if len(pending) >= TASK_LINES:
            yield start, b"\n".join(pending), False
            pending = []
    if pending:
        yield start, b"\n".join(pending), False


def read_parallel(
    path: str | os.PathLike[str],
    report: ReadReport,
    out: InteractionBuilder,
    factory: HandlerFactory,
    workers: int | None = None,
) -> None:
    """Parse ``path`` with ``factory``'s handler in ``workers`` processes into ``out`` (which must
    have a sink) and ``report``, as :func:`benchmark.data.records.run_lines` would sequentially."""
    n_workers = default_workers() if workers is None else workers
    # spawn: fresh interpreters, not forks of this process (which may hold DuckDB's or torch's
    # threads); their start-up (~1 s) is why small files are read here
    ctx = multiprocessing.get_context("spawn")
    in_flight: deque[Future] = deque()
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx) as pool:
        try:
            pool.submit(int).result()
        except BrokenProcessPool as exc:
            # e.g. a script without `if __name__ == "__main__":` (its workers re-run it): read here
            log.warning("parsing processes could not start (%s); reading %s in one process", exc, path)
            run_lines(iter_lines(path, report), report, factory(out))
            return
        for first, data, final in _tasks(path, report):
            in_flight.append(
                pool.submit(_parse, factory, out.ts_divisor, out.window, out.report.plausible, first, data, final)
            )
            while len(in_flight) > 2 * n_workers:  # bounded: memory stays flat
                _take(in_flight.popleft().result(), report, out)
        while in_flight:
            _take(in_flight.popleft().result(), report, out)


def _take(result: tuple[Any, ...], report: ReadReport, out: InteractionBuilder) -> None:
    users, items, ratings, timestamps, entries, tally = result
    for kind, line, detail in entries:  # in line order; raises at the first problem when strict
        report.add(kind, line, detail)
    if out.tally is not None and tally is not None:
        _add_tally(out.tally, tally)
    out.append_arrays(users, items, ratings, timestamps)
