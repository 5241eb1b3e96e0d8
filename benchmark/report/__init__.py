"""Leaderboards (Markdown, LaTeX booktabs, CSV), statistics tables and PNG plots.

:mod:`~benchmark.report.labels` (how metric names and numbers print), :mod:`~benchmark.report.tables`
(leaderboard layouts), :mod:`~benchmark.report.captions` (their footnotes and marks),
:mod:`~benchmark.report.comparisons` (the statistics table), :mod:`~benchmark.report.plots` (PNG
figures).
"""

from benchmark.report.labels import latex_escape, metric_label, order_metrics, split_metric
from benchmark.report.plots import plot_metric_bars, plot_metric_vs_k
from benchmark.report.tables import CAPTION_KEYS, FORMATS, comparison_table, leaderboard

__all__ = [
    "CAPTION_KEYS",
    "FORMATS",
    "comparison_table",
    "latex_escape",
    "leaderboard",
    "metric_label",
    "order_metrics",
    "plot_metric_bars",
    "plot_metric_vs_k",
    "split_metric",
]
