"""Leaderboards (Markdown, LaTeX booktabs, CSV), statistics tables and PNG plots."""

from benchmark.report.plots import plot_metric_bars, plot_metric_vs_k
from benchmark.report.tables import (
    CAPTION_KEYS,
    FORMATS,
    comparison_table,
    latex_escape,
    leaderboard,
    metric_label,
    order_metrics,
    split_metric,
)

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
