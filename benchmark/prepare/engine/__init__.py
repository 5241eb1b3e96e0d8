"""The out-of-core engine of ``data prepare`` (DuckDB): raw files → a split with memory set by
a budget, not by the number of lines. See :mod:`benchmark.prepare.engine.pipeline`."""

from benchmark.prepare.engine.pipeline import prepare_files_out_of_core
from benchmark.prepare.engine.workspace import DEFAULT_FRACTION, parse_budget

__all__ = ["DEFAULT_FRACTION", "parse_budget", "prepare_files_out_of_core"]
