"""Leaderboards as Markdown, LaTeX (booktabs) or CSV (the statistics table is in
:mod:`benchmark.report.comparisons`, the footnote and marks in :mod:`benchmark.report.captions`).

A leaderboard is methods × metric columns, grouped by metric family then by K (``recall@10``,
``recall@20``, ``ndcg@10``, …). In every column the best value is bold and the second best
underlined (compared on the values as printed, higher is better; ties share the mark). A run
that differs significantly from the baseline after correction gets ▲ (better) or ▼ (worse) —
``\\uparrow``/``\\downarrow`` in LaTeX —, the direction being the test's own (``direction`` of
the comparison: the sign of R⁺ − R⁻ for Wilcoxon, the CI for the bootstrap, the mean otherwise).
The footnote names the tests (and says when a test holds the trained models fixed), the
correction, the family it ran over (name and size), α, the number of users and the split
fingerprint. With the seed spread given, each value shows ``± SD`` over seeds and a row is marked
† when a model's seed SD is at least half the CI half-width of one of its comparisons on a shown
metric (training randomness is then as large as the uncertainty of the comparison). CSV carries
plain numbers with ``<metric>_p_adjusted`` and ``<metric>_significant`` (1 better, −1 worse, 0
not significant, empty for the baseline) so that it reads back with :func:`pandas.read_csv`.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from benchmark.report.captions import SEED_MARK, caption_info, footnote, seed_flags, seed_std, significance
from benchmark.report.comparisons import comparison_table
from benchmark.report.labels import (
    FORMATS,
    format_cost,
    is_finite,
    latex_escape,
    md_escape,
    metric_label,
    order_metrics,
    split_metric,
)

__all__ = ["CAPTION_KEYS", "FORMATS", "comparison_table", "leaderboard", "rank_marks"]

CAPTION_KEYS: tuple[str, ...] = (
    "test",
    "correction",
    "alpha",
    "n_users",
    "fingerprint",
    "title",
    "note",
    "label",
    "code_versions",
)


def leaderboard(
    means: Mapping[str, Mapping[str, float]],
    tests: Sequence[Mapping[str, Any]] = (),
    *,
    fmt: str = "md",
    baseline: str | None = None,
    caption: Mapping[str, Any] | None = None,
    metrics: Sequence[str] | None = None,
    digits: int = 4,
    spread: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None,
    costs: Mapping[str, Mapping[str, Any] | None] | None = None,
    row_marks: Mapping[str, str] | None = None,
) -> str:
    """Render a methods × metrics leaderboard.

    Args:
        means: run → metric → mean value; rows follow this mapping's order.
        tests: comparison dicts from :func:`benchmark.stats.compare`; those against
            ``baseline`` give the significance markers.
        fmt: ``"md"``, ``"latex"`` or ``"csv"``.
        baseline: the reference run; default: the single baseline named in ``tests``.
        caption: keys among :data:`CAPTION_KEYS`. ``correction`` and ``alpha`` default to the
            tests' values (required for comparison dicts that do not record them); ``test``
            and ``n_users`` too. ``code_versions``: descriptions of the code versions a
            results directory mixes (``--allow-mixed``), stated in the footnote.
        metrics: columns to show, in this order; default: every metric, grouped by family then K.
        digits: decimals shown (best/second are decided on the printed values).
        spread: run → metric → ``{"std": …}`` (from :func:`benchmark.stats.aggregate_seeds`),
            printed as ``± std``; with ``tests``, rows whose seed SD is comparable to a CI
            half-width are marked (module docstring).
        costs: run → cost row (``total_seconds``, ``energy_kwh``; :mod:`benchmark.runner.costs`):
            a last ``Cost`` column (CSV: ``cost_seconds``, ``energy_kwh``); rows without one show ``–``.
        row_marks: run → text appended to its row label in md/LaTeX (health warnings,
            :mod:`benchmark.report.notes`).

    Raises:
        ValueError: unknown format or caption key, baseline not among the runs, tests naming
            several baselines, missing correction/alpha.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(FORMATS)}")
    cap = dict(caption or {})
    unknown = sorted(set(cap) - set(CAPTION_KEYS))
    if unknown:
        raise ValueError(f"unknown caption key(s) {unknown}; allowed: {', '.join(CAPTION_KEYS)}")
    runs = list(means)
    if not runs:
        raise ValueError("leaderboard needs at least one run")
    cols = list(dict.fromkeys(metrics)) if metrics is not None else order_metrics([m for r in runs for m in means[r]])
    if not cols:
        raise ValueError("no metrics to show")
    baseline, sig = significance(tests, baseline, runs)
    info = caption_info(cap, baseline, tests)

    if fmt == "csv":
        return _leaderboard_csv(means, runs, cols, baseline, sig, spread, seed_flags(tests, spread, cols), costs)

    marks = rank_marks(means, runs, cols, digits)
    cells = {
        (r, m): _cell(
            means[r].get(m), marks.get((r, m)), sig.get((r, m), (0, 0.0))[0], seed_std(spread, r, m), digits, fmt
        )
        for r in runs
        for m in cols
    }
    flagged = seed_flags(tests, spread, cols)
    if flagged:
        info["seed_flag"] = True
    labels = {r: _row_label(r, baseline, row_marks, fmt, SEED_MARK if r in flagged else "") for r in runs}
    heads = {m: metric_label(m) for m in cols}
    if costs is not None:  # a last column: what each method cost (wall time, energy)
        heads["cost"] = "Cost"
        cells.update({(r, "cost"): format_cost(costs.get(r)) for r in runs})
        if fmt == "latex":
            cells.update({(r, "cost"): latex_escape(cells[(r, "cost")]) for r in runs})
    if fmt == "md":
        return _leaderboard_md(runs, list(heads), cells, labels, info, heads)
    return _leaderboard_latex(runs, list(heads), cells, labels, info, heads)


def rank_marks(
    means: Mapping[str, Mapping[str, float]], runs: Sequence[str], cols: Sequence[str], digits: int
) -> dict[tuple[str, str], str]:
    """(run, metric) → ``"best"``/``"second"``, per column on the printed values (rounded to
    ``digits``), so the marks agree with what is read; ties share the mark."""
    marks: dict[tuple[str, str], str] = {}
    for m in cols:
        shown = {r: round(float(means[r][m]), digits) for r in runs if m in means[r] and is_finite(means[r][m])}
        levels = sorted(set(shown.values()), reverse=True)
        for r, v in shown.items():
            if v == levels[0]:
                marks[(r, m)] = "best"
            elif len(levels) > 1 and v == levels[1]:
                marks[(r, m)] = "second"
    return marks


def _row_label(run: str, baseline: str | None, marks: Mapping[str, str] | None, fmt: str, seed_mark: str = "") -> str:
    """A row's label in ``fmt`` (LaTeX escaped): the run, ``(baseline)``, the seed mark, then its
    health mark (given in the output format, so not escaped)."""
    label = (f"{run} (baseline)" if run == baseline else run) + seed_mark
    return (latex_escape(label) if fmt == "latex" else label) + (marks or {}).get(run, "")


def _cell(value: Any, mark: str | None, direction: int, std: float | None, digits: int, fmt: str) -> str:
    if value is None or not is_finite(value):
        return "–" if fmt == "md" else "--"
    text = f"{float(value):.{digits}f}"
    if fmt == "md":
        if mark == "best":
            text = f"**{text}**"
        elif mark == "second":
            text = f"<u>{text}</u>"
        if std is not None:
            text += f" ± {std:.{digits}f}"
        return text + {1: "▲", -1: "▼"}.get(direction, "")
    if mark == "best":
        text = rf"\textbf{{{text}}}"
    elif mark == "second":
        text = rf"\underline{{{text}}}"
    if std is not None:
        text += rf"{{\scriptsize$\pm${std:.{digits}f}}}"
    return text + {1: r"\textsuperscript{$\uparrow$}", -1: r"\textsuperscript{$\downarrow$}"}.get(direction, "")


def _leaderboard_md(
    runs: Sequence[str],
    cols: Sequence[str],
    cells: Mapping[tuple[str, str], str],
    labels: Mapping[str, str],
    info: Mapping[str, Any],
    heads: Mapping[str, str],
) -> str:
    lines: list[str] = []
    if info.get("title"):
        lines += [f"**{md_escape(info['title'])}**", ""]
    lines.append("| Method | " + " | ".join(heads[m] for m in cols) + " |")
    lines.append("|---|" + "|".join("---:" for _ in cols) + "|")
    for r in runs:
        lines.append(f"| {md_escape(labels[r])} | " + " | ".join(cells[(r, m)] for m in cols) + " |")
    lines += ["", footnote(info, "md")]
    return "\n".join(lines) + "\n"


def _leaderboard_latex(
    runs: Sequence[str],
    cols: Sequence[str],
    cells: Mapping[tuple[str, str], str],
    labels: Mapping[str, str],
    info: Mapping[str, Any],
    heads: Mapping[str, str],
) -> str:
    # Two header rows: metric family spanning its K columns, then @K (a non-metric column: its heading).
    groups: list[tuple[str, int]] = []
    for m in cols:
        fam = metric_label(split_metric(m)[0]) if m in heads and heads[m] == metric_label(m) else heads[m]
        if groups and groups[-1][0] == fam:
            groups[-1] = (fam, groups[-1][1] + 1)
        else:
            groups.append((fam, 1))
    top, rules, col = [""], [], 2
    for fam, width in groups:
        top.append(rf"\multicolumn{{{width}}}{{c}}{{{latex_escape(fam)}}}")
        rules.append(rf"\cmidrule(lr){{{col}-{col + width - 1}}}")
        col += width
    ks = [("@" + str(split_metric(m)[1])) if split_metric(m)[1] is not None else "" for m in cols]
    caption = latex_escape(str(info["title"])) + ". " if info.get("title") else ""
    caption += footnote(info, "latex")
    out = [r"\begin{table}[t]", r"\centering", rf"\caption{{{caption}}}"]
    if info.get("label"):
        out.append(rf"\label{{{info['label']}}}")
    out += [
        rf"\begin{{tabular}}{{l{'r' * len(cols)}}}",
        r"\toprule",
        " & ".join(top) + r" \\",
        " ".join(rules),
        "Method & " + " & ".join(ks) + r" \\",
        r"\midrule",
    ]
    for r in runs:
        out.append(labels[r] + " & " + " & ".join(cells[(r, m)] for m in cols) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def _leaderboard_csv(
    means: Mapping[str, Mapping[str, float]],
    runs: Sequence[str],
    cols: Sequence[str],
    baseline: str | None,
    sig: Mapping[tuple[str, str], tuple[int, float]],
    spread: Mapping[str, Mapping[str, Mapping[str, float]]] | None,
    flagged: set[str],
    costs: Mapping[str, Mapping[str, Any] | None] | None = None,
) -> str:
    records = []
    for r in runs:
        rec: dict[str, Any] = {"method": r, "is_baseline": r == baseline}
        if spread:
            rec["seed_sd_flag"] = r in flagged
        for m in cols:
            v = means[r].get(m)
            rec[m] = float(v) if v is not None else float("nan")
            if spread:
                rec[f"{m}_std"] = seed_std(spread, r, m)
            if sig:
                d, pa = sig.get((r, m), (None, None))
                rec[f"{m}_p_adjusted"] = pa
                rec[f"{m}_significant"] = d
        if costs is not None:
            rec["cost_seconds"] = (costs.get(r) or {}).get("total_seconds")
            rec["energy_kwh"] = (costs.get(r) or {}).get("energy_kwh")
        records.append(rec)
    df = pd.DataFrame.from_records(records)
    for m in cols:  # nullable ints: 1/-1/0, empty for the baseline and untested cells
        if f"{m}_significant" in df.columns:
            df[f"{m}_significant"] = df[f"{m}_significant"].astype("Int64")
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()
