"""How metric names, tests and numbers are printed in every table (Markdown, LaTeX, CSV).

Metric columns are ``family@K`` (``recall@10``); families have a display order and name
(Recall, NDCG, HR, Precision, MRR, MAP, Coverage; others follow alphabetically, named as
given). Numbers are formatted here once so that leaderboards and statistics tables agree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "CORRECTION_NAMES",
    "FORMATS",
    "TEST_NAMES",
    "TRAINING_RANDOMNESS_NOTE",
    "direction_of",
    "row_test_phrase",
    "trained",
    "test_phrase",
    "format_number",
    "format_p",
    "format_percent",
    "is_finite",
    "latex_escape",
    "md_escape",
    "metric_label",
    "order_metrics",
    "split_metric",
]

# Display order and names of metric families; others follow alphabetically, named as given.
_FAMILY_ORDER = (
    "recall",
    "ndcg",
    "hitrate",
    "hit",
    "hr",
    "precision",
    "mrr",
    "map",
    "coverage",
    "aplt",
    "novelty",
    "ild",
    "gini",
    "tail_coverage",
)
_FAMILY_NAMES = {
    "recall": "Recall",
    "ndcg": "NDCG",
    "hitrate": "HR",
    "hit": "HR",
    "hr": "HR",
    "precision": "Precision",
    "mrr": "MRR",
    "map": "MAP",
    "coverage": "Coverage",
    "aplt": "APLT",
    "novelty": "Novelty",
    "ild": "ILD",
    "gini": "Gini",
    "tail_coverage": "LT coverage",
}
FORMATS: tuple[str, ...] = ("md", "latex", "csv")
"""Table formats of :mod:`benchmark.report.tables` and :mod:`benchmark.report.comparisons`."""
TEST_NAMES = {
    "auto": "mixed model for multi-seed comparisons, else paired t-test",
    "mixed": "linear mixed model over users and training seeds",
    "t": "paired t-test",
    "wilcoxon": "Wilcoxon signed-rank test (Pratt zeros)",
    "randomization": "paired randomization (sign-flip) test",
    "bootstrap": "paired bootstrap test",
}
TRAINING_RANDOMNESS_NOTE = "conditional on the trained models (training randomness not counted)"
"""How a classic test over users is qualified when a compared model was trained with seeds."""
CORRECTION_NAMES = {"holm": "Holm", "bonferroni": "Bonferroni", "bh": "Benjamini–Hochberg", "none": "no"}
_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "–": "--",
    "α": r"$\alpha$",
    "±": r"$\pm$",
    "Δ": r"$\Delta$",
}
_METRIC_RE = re.compile(r"^(?P<family>.+?)@(?P<k>\d+)$")


def split_metric(name: str) -> tuple[str, int | None]:
    """``"recall@10"`` → ``("recall", 10)``; a name without ``@K`` → ``(name, None)``."""
    m = _METRIC_RE.match(name)
    return (m["family"], int(m["k"])) if m else (name, None)


def order_metrics(names: Sequence[str]) -> list[str]:
    """Order metric columns by family (Recall, NDCG, HR, Precision, MRR, MAP, Coverage, others) then K."""

    def key(name: str) -> tuple[int, str, int]:
        fam, k = split_metric(name)
        f = fam.lower()
        rank = _FAMILY_ORDER.index(f) if f in _FAMILY_ORDER else len(_FAMILY_ORDER)
        return (rank, f, -1 if k is None else k)

    return sorted(dict.fromkeys(names), key=key)


def metric_label(name: str) -> str:
    """Display name: ``"ndcg@10"`` → ``"NDCG@10"``."""
    fam, k = split_metric(name)
    disp = _FAMILY_NAMES.get(fam.lower(), fam)
    return disp if k is None else f"{disp}@{k}"


def latex_escape(text: str) -> str:
    """Escape LaTeX special characters (``_ & % $ # { } ~ ^ \\``) in plain text."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def is_finite(x: Any) -> bool:
    """True for a value that converts to a finite float (None, text and NaN are not)."""
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def format_number(x: Any, digits: int, signed: bool = False) -> str:
    """``digits`` decimals (``+`` shown when ``signed``); ``±inf``/``inf``, ``nan``, ``–`` for None."""
    if x is None or not is_finite(x):
        if isinstance(x, (int, float)) and math.isinf(x):  # e.g. effect size of a constant difference
            return ("+inf" if signed else "inf") if x > 0 else "-inf"
        return "–" if x is None else "nan"
    return f"{float(x):+.{digits}f}" if signed else f"{float(x):.{digits}f}"


def format_p(p: Any) -> str:
    """A p-value: 4 decimals, scientific below 0.001."""
    p = float(p)
    if not math.isfinite(p):
        return "nan"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.4f}"


def format_percent(x: Any) -> str:
    """A ratio as a signed percentage with one decimal; ``n/a`` when not finite."""
    return f"{100.0 * float(x):+.1f}%" if is_finite(x) else "n/a"


def md_escape(text: str) -> str:
    """Escape ``|`` so the text stays inside one Markdown table cell."""
    return str(text).replace("|", r"\|")


def direction_of(t: Mapping[str, Any]) -> int:
    """+1/−1/0: a comparison's direction from its test's own statistic (``direction``), or the
    sign of the mean difference for comparison dicts written before that key existed."""
    if "direction" in t and t["direction"] is not None:
        return int(t["direction"])
    d = float(t["mean_diff"])
    return 1 if d > 0 else -1 if d < 0 else 0


def trained(t: Mapping[str, Any]) -> bool:
    """Whether a side of the comparison is a model trained with seeds (its seed ids are known)."""
    seeds = t.get("seeds") or {}
    return any(s is not None for side in seeds.values() for s in side)


def test_phrase(test: str, with_trained_models: bool) -> str:
    """A test's name for captions, saying when it holds the trained models fixed."""
    name = TEST_NAMES.get(test, test)
    if with_trained_models and test != "mixed":
        return f"{name}, {TRAINING_RANDOMNESS_NOTE}"
    return name


def row_test_phrase(t: Mapping[str, Any]) -> str:
    """:func:`test_phrase` of one comparison dict (the mixed model with one model per side is
    the paired t-test, and is named so)."""
    test = str(t["test"])
    n_seeds = t.get("n_seeds") or {}
    if test == "mixed" and n_seeds and max(int(v) for v in n_seeds.values()) < 2:
        test = "t"
    return test_phrase(test, trained(t))


def format_duration(seconds: float) -> str:
    """``42.0 s``, ``4.1 min``, ``2.0 h``."""
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_cost(row: Mapping[str, Any] | None) -> str:
    """A cost cell from a cost row (``total_seconds``, ``energy_kwh``; :mod:`benchmark.runner.costs`):
    total wall time and, when measured, energy — ``4.1 min, 0.0021 kWh``; ``–`` when unknown."""
    if not row or row.get("total_seconds") is None:
        return "–"
    text = format_duration(float(row["total_seconds"]))
    if row.get("energy_kwh") is not None:
        text += f", {float(row['energy_kwh']):.2g} kWh"
    return text
