"""vlm4rec-bench: the shared benchmark harness (data, splits, evaluation, statistics, runner).

`benchmark` knows no particular method: models are found through the
``vlm4rec_bench.models`` entry-point group (see :mod:`benchmark.registry`).
"""

__version__ = "0.1.0"
