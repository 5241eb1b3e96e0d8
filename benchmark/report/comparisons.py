"""The statistics table: one row per comparison (Markdown, LaTeX booktabs, CSV)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from benchmark.report.labels import (
    CORRECTION_NAMES,
    FORMATS,
    direction_of,
    format_number,
    format_p,
    format_percent,
    latex_escape,
    md_escape,
    metric_label,
)

__all__ = ["comparison_table"]


def comparison_table(tests: Sequence[Mapping[str, Any]], fmt: str = "md", *, digits: int = 4) -> str:
    """Render the statistics of each comparison (one row per run × metric).

    Columns: metric, run, baseline, test, mean difference with its CI, the test's own estimate,
    p, adjusted p, effect size (mean/SD of differences), relative improvement with its CI,
    significance (▲/▼ from the test's direction). Markdown ends with the family each comparison
    was corrected over and the tests in words. CSV holds every key of the comparison dicts as
    plain values.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    rows = list(tests)
    if fmt == "csv":
        buf = io.StringIO()
        pd.DataFrame([dict(t) for t in rows]).to_csv(buf, index=False)
        return buf.getvalue()
    head = [
        "Metric",
        "Run",
        "Baseline",
        "Test",
        "Δ mean",
        "CI",
        "Estimate",
        "p",
        "p (adj.)",
        "Effect size",
        "Rel. impr.",
        "Rel. CI",
        "Sig.",
    ]
    body = [_comparison_row(t, digits) for t in rows]
    if fmt == "md":
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 4 + ["---:"] * 9) + "|"]
        lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in body]
        return "\n".join(lines) + "\n" + _families_md(rows)
    return _comparison_latex(head, body)


# --- helpers -------------------------------------------------------------------------------


def _comparison_row(t: Mapping[str, Any], digits: int) -> list[str]:
    """The printed cells of one comparison (the last one is ▲/▼/• when significant)."""
    direction = direction_of(t)
    return [
        metric_label(str(t["metric"])),
        str(t["run"]),
        str(t["baseline"]),
        str(t["test"]),
        format_number(t["mean_diff"], digits, signed=True),
        f"[{format_number(t['ci_low'], digits, signed=True)}, {format_number(t['ci_high'], digits, signed=True)}]",
        format_number(t.get("estimate", t["mean_diff"]), digits, signed=True),
        format_p(t["p"]),
        format_p(t["p_adjusted"]),
        format_number(t["effect_size"], 3, signed=True),
        format_percent(t["rel_improvement"]),
        f"[{format_percent(t['rel_ci_low'])}, {format_percent(t['rel_ci_high'])}]",
        ("▲" if direction > 0 else "▼" if direction < 0 else "•") if t["significant"] else "",
    ]


def _families_md(rows: Sequence[Mapping[str, Any]]) -> str:
    """The family line(s) and the tests in words under a Markdown statistics table."""
    fams: dict[str, list[Mapping[str, Any]]] = {}
    for t in rows:
        if "family" in t:
            fams.setdefault(str(t["family"]), []).append(t)
    lines = [
        f'Family "{name}": {ts[0]["family_size"]} comparisons ({_members(ts)}), '
        f"{CORRECTION_NAMES.get(str(ts[0]['correction']), str(ts[0]['correction']))} correction, "
        f"α = {ts[0]['alpha']}."
        for name, ts in fams.items()
    ]
    labels = list(dict.fromkeys(str(t["test_label"]) for t in rows if t.get("test_label")))
    lines += [f"Test: {lab}." for lab in labels]
    if any(t["significant"] and direction_of(t) == 0 for t in rows):
        lines.append("•: significant, but the test's own statistic gives no direction.")
    return ("\n" + "\n".join(f"- {line}" for line in lines) + "\n") if lines else ""


def _members(rows: Sequence[Mapping[str, Any]]) -> str:
    pairs = {frozenset((str(t["run"]), str(t["baseline"]))) for t in rows}
    metrics = {str(t["metric"]) for t in rows}
    return f"{len(pairs)} pair(s) × {len(metrics)} metric(s) shown"


def _comparison_latex(head: Sequence[str], body: Sequence[list[str]]) -> str:
    out = [
        r"\begin{tabular}{llll" + "r" * 9 + "}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in head) + r" \\",
        r"\midrule",
    ]
    for row in body:
        row = row[:-1] + [{"▲": r"$\uparrow$", "▼": r"$\downarrow$", "•": r"$\bullet$"}.get(row[-1], "")]
        out.append(" & ".join(latex_escape(c) if i < len(row) - 1 else c for i, c in enumerate(row)) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"
