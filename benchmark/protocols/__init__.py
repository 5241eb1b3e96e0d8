"""Split protocols (``paper``, ``mmrec``, ``loo``, ``global-time``, ``user-time``) and leakage checks.

``PROTOCOLS`` is the one list of protocol names a config or a flag may use; ``SPLIT_PROTOCOLS``
are the ones :func:`make_split` draws. ``official`` splits (the 2023 release's own benchmark
files) are built by ``benchmark.data.interop.import_2023_official``; the dataset loader
(:mod:`benchmark.prepare`) dispatches to it. :func:`default_seed` and :func:`default_kcore` are
each protocol's defaults when a dataset config leaves them unset.
"""

from benchmark.protocols.leakage import LeakageError, check_leakage
from benchmark.protocols.make import (
    PAPER_SEED,
    PROTOCOLS,
    SPLIT_PROTOCOLS,
    default_kcore,
    default_seed,
    make_split,
)

__all__ = [
    "LeakageError",
    "PAPER_SEED",
    "PROTOCOLS",
    "SPLIT_PROTOCOLS",
    "check_leakage",
    "default_kcore",
    "default_seed",
    "make_split",
]
