"""The run's log file, ``<run dir>/run.log``: every log record and Python warning of the run.

The console is quiet by default (:class:`benchmark.cli.ConsoleFilter`: other libraries' INFO
lines and warnings only with ``-v``); this file has no filter, so nothing said during a run is
lost. It is appended to, so a resumed run keeps the earlier attempts' lines.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

RUN_LOG = "run.log"


@contextlib.contextmanager
def run_log(run_dir: Path) -> Iterator[Path]:
    """Send every log record (INFO and up; DEBUG when the root logger is at DEBUG) and every
    Python warning to ``run_dir/run.log`` while the block runs."""
    path = Path(run_dir) / RUN_LOG
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    handler = logging.FileHandler(path, mode="a", encoding="utf-8", delay=False)
    handler.setLevel(min(root.getEffectiveLevel(), logging.INFO))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    old_level = root.level
    root.setLevel(min(root.getEffectiveLevel(), logging.INFO))
    root.addHandler(handler)
    shown_by = warnings.showwarning
    logging.captureWarnings(True)  # warnings become records of the ``py.warnings`` logger
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        handler.close()
        warnings.showwarning = shown_by
