"""Split protocols (``paper``, ``mmrec``, ``loo``, ``global-time``) and leakage checks.

``official`` splits (the 2023 release's own benchmark files) are built by
``benchmark.data.interop.import_2023_official``; ``data prepare`` dispatches to it.
"""

from benchmark.protocols.leakage import LeakageError, check_leakage
from benchmark.protocols.make import PAPER_SEED, PROTOCOLS, make_split

__all__ = ["LeakageError", "PAPER_SEED", "PROTOCOLS", "check_leakage", "make_split"]
