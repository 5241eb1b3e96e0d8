"""A leaderboard over several datasets: a row per model, a column group per dataset.

Input: a :class:`benchmark.runner.multidataset.MultiTable`. Cells are means (``± SD`` over seeds
when a model has several); "—" marks a model without results on a dataset (listed in the
caption). Best bold / second underlined per column on the printed values. ▲/▼ (LaTeX
``\\uparrow``/``\\downarrow``): significantly better/worse than the baseline **within that
dataset** (paired tests need the same users), after one correction over every comparison of the
table, which the caption states with the family size. A "Mean rank" column averages each
model's rank over all shown columns (models missing somewhere have none). Formats: ``md``,
``latex`` (booktabs, ``\\multicolumn`` dataset headers), ``csv`` (long: one row per model ×
dataset × metric, readable with :func:`pandas.read_csv`) and ``json``.
"""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING, Any

import pandas as pd

from benchmark.report.captions import seed_std, significance
from benchmark.report.labels import (
    CORRECTION_NAMES,
    latex_escape,
    md_escape,
    metric_label,
    row_test_phrase,
)
from benchmark.report.tables import rank_marks

if TYPE_CHECKING:
    from benchmark.runner.multidataset import MultiTable

__all__ = ["MISSING", "MULTI_FORMATS", "column_mean_ranks", "render_multi"]

MULTI_FORMATS: tuple[str, ...] = ("md", "latex", "csv", "json")
MISSING = "—"


def render_multi(table: MultiTable, fmt: str = "md", *, digits: int = 4, extra: dict[str, Any] | None = None) -> str:
    """The table in ``fmt``; ``extra`` (e.g. a Friedman result) is added to the json output."""
    if fmt not in MULTI_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(MULTI_FORMATS)}")
    if fmt == "json":
        return _json(table, extra)
    sig = _markers(table)
    if fmt == "csv":
        return _csv(table, sig)
    marks = {  # each dataset's columns marked as in a one-split leaderboard
        (m, d, c): mark
        for d in table.datasets
        for (m, c), mark in rank_marks(table.means[d], list(table.means[d]), table.metrics, digits).items()
    }
    ranks = column_mean_ranks(table)
    cells = {
        (m, d, c): _cell(table, m, d, c, marks.get((m, d, c)), sig.get((d, m, c), 0), digits, fmt)
        for m in table.models
        for d in table.datasets
        for c in table.metrics
    }
    rank_cells = {m: (f"{ranks[m]:.2f}" if m in ranks else (MISSING if fmt == "md" else "--")) for m in table.models}
    return (_md if fmt == "md" else _latex)(table, cells, rank_cells)


def column_mean_ranks(table: MultiTable) -> dict[str, float]:
    """Model → mean rank over every (dataset, metric) column (1 = best, ties averaged), for the
    models with results on every dataset."""
    from benchmark.stats.ranks import complete_models, mean_ranks

    complete = complete_models({d: {m: 0.0 for m in table.means[d]} for d in table.datasets}, table.models)
    if not complete:
        return {}
    rows = [[table.means[d][m][c] for m in complete] for d in table.datasets for c in table.metrics]
    return {str(k): float(v) for k, v in mean_ranks(pd.DataFrame(rows, columns=complete)).items()}


def _markers(table: MultiTable) -> dict[tuple[str, str, str], int]:
    """(dataset, model, metric) → +1/−1 significant better/worse than the baseline, else 0."""
    out: dict[tuple[str, str, str], int] = {}
    for d in table.datasets:
        rows = [t for t in table.tests if t["dataset"] == d]
        if rows:
            _, sig = significance(rows, table.baseline, list(table.means[d]))
            out.update({(d, m, c): v[0] for (m, c), v in sig.items()})
    return out


def _cell(table: MultiTable, m: str, d: str, c: str, mark: str | None, direction: int, digits: int, fmt: str) -> str:
    if m not in table.means[d]:
        return MISSING if fmt == "md" else "--"
    text = f"{table.means[d][m][c]:.{digits}f}"
    std = seed_std(table.spread.get(d), m, c)
    if fmt == "md":
        text = f"**{text}**" if mark == "best" else f"<u>{text}</u>" if mark == "second" else text
        return text + (f" ± {std:.{digits}f}" if std is not None else "") + {1: "▲", -1: "▼"}.get(direction, "")
    text = rf"\textbf{{{text}}}" if mark == "best" else rf"\underline{{{text}}}" if mark == "second" else text
    if std is not None:
        text += rf"{{\scriptsize$\pm${std:.{digits}f}}}"
    return text + {1: r"\textsuperscript{$\uparrow$}", -1: r"\textsuperscript{$\downarrow$}"}.get(direction, "")


def caption(table: MultiTable, fmt: str) -> str:
    """The caption: markers and their one correction, missing cells, users and splits per dataset."""
    esc = (lambda x: str(x)) if fmt == "md" else latex_escape
    up, down = ("▲", "▼") if fmt == "md" else (r"$\uparrow$", r"$\downarrow$")
    alpha = "α" if fmt == "md" else r"$\alpha$"
    parts: list[str] = []
    if table.tests:
        phrases = list(dict.fromkeys(row_test_phrase(t) for t in table.tests))
        corr = CORRECTION_NAMES.get(table.correction, table.correction)
        parts.append(
            f"{up}/{down}: significantly better/worse than {esc(str(table.baseline))} within the same dataset "
            f"({esc('; '.join(phrases))}; two-sided; one {esc(corr)} correction over the whole table: "
            f"{len(table.tests)} comparisons across {len(table.datasets)} datasets, {alpha} = {table.alpha})."
        )
    if table.no_baseline:
        parts.append(esc(f"No markers on {', '.join(table.no_baseline)}: the baseline has no results there."))
    parts.append("Best in bold, second underlined, per column.")
    if any(
        seed_std(table.spread.get(d), m, c) is not None
        for d in table.datasets
        for m in table.means[d]
        for c in table.metrics
    ):
        parts.append("± SD over training seeds.")
    parts.append(
        "Mean rank: each model's rank averaged over all shown columns (1 = best, ties averaged; only models "
        "with results on every dataset)."
    )
    if table.missing:
        dash = MISSING if fmt == "md" else "--"
        listed = "; ".join(f"{m} on {d}" for m, d in table.missing)
        parts.append(esc(f"{dash}: no results for {listed}."))
    users = ", ".join(
        f"{d} {table.n_users[d]} users ({table.protocols[d]}, split {table.fingerprints[d][:12]})"
        for d in table.datasets
    )
    parts.append(esc(f"Datasets: {users}."))
    return " ".join(parts)


def _md(table: MultiTable, cells: dict[tuple[str, str, str], str], ranks: dict[str, str]) -> str:
    head = [f"{md_escape(d)} {metric_label(c)}" for d in table.datasets for c in table.metrics]
    lines = ["| Method | " + " | ".join(head) + " | Mean rank |", "|---|" + "---:|" * (len(head) + 1)]
    for m in table.models:
        label = f"{m} (baseline)" if m == table.baseline and table.tests else m
        row = [cells[(m, d, c)] for d in table.datasets for c in table.metrics] + [ranks[m]]
        lines.append(f"| {md_escape(label)} | " + " | ".join(row) + " |")
    return "\n".join([*lines, "", caption(table, "md")]) + "\n"


def _latex(table: MultiTable, cells: dict[tuple[str, str, str], str], ranks: dict[str, str]) -> str:
    w = len(table.metrics)
    top = [""] + [rf"\multicolumn{{{w}}}{{c}}{{{latex_escape(d)}}}" for d in table.datasets] + [""]
    rules = [rf"\cmidrule(lr){{{2 + i * w}-{1 + (i + 1) * w}}}" for i in range(len(table.datasets))]
    sub = ["Method"] + [latex_escape(metric_label(c)) for _ in table.datasets for c in table.metrics] + ["Mean rank"]
    out = [
        r"\begin{table}[t]",
        r"\centering",
        rf"\caption{{{caption(table, 'latex')}}}",
        rf"\begin{{tabular}}{{l{'r' * (w * len(table.datasets) + 1)}}}",
        r"\toprule",
        " & ".join(top) + r" \\",
        " ".join(rules),
        " & ".join(sub) + r" \\",
        r"\midrule",
    ]
    for m in table.models:
        label = f"{m} (baseline)" if m == table.baseline and table.tests else m
        row = [cells[(m, d, c)] for d in table.datasets for c in table.metrics] + [ranks[m]]
        out.append(latex_escape(label) + " & " + " & ".join(row) + r" \\")
    return "\n".join([*out, r"\bottomrule", r"\end{tabular}", r"\end{table}"]) + "\n"


def _csv(table: MultiTable, sig: dict[tuple[str, str, str], int]) -> str:
    p_adj = {
        (t["dataset"], t["run"], t["metric"]): t["p_adjusted"] for t in table.tests if t["baseline"] == table.baseline
    }
    p_adj.update(
        {(t["dataset"], t["baseline"], t["metric"]): t["p_adjusted"] for t in table.tests if t["run"] == table.baseline}
    )
    records = []
    for m in table.models:
        for d in table.datasets:
            for c in table.metrics:
                present = m in table.means[d]
                tested = (d, m, c) in p_adj
                records.append(
                    {
                        "method": m,
                        "dataset": d,
                        "metric": c,
                        "value": table.means[d][m][c] if present else float("nan"),
                        "std": seed_std(table.spread.get(d), m, c),
                        "missing": not present,
                        "is_baseline": m == table.baseline,
                        "p_adjusted": p_adj.get((d, m, c)),
                        "significant": sig.get((d, m, c), 0) if tested else None,
                    }
                )
    df = pd.DataFrame.from_records(records)
    df["significant"] = df["significant"].astype("Int64")
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()


def _json(table: MultiTable, extra: dict[str, Any] | None) -> str:
    from benchmark.stats import family_record

    out = {
        "datasets": [
            {
                "label": d,
                "n_users": table.n_users[d],
                "protocol": table.protocols[d],
                "split_fingerprint": table.fingerprints[d],
            }
            for d in table.datasets
        ],
        "models": table.models,
        "metrics": table.metrics,
        "baseline": table.baseline,
        "means": table.means,
        "seed_spread": table.spread,
        "mean_ranks": column_mean_ranks(table),
        "missing": [{"model": m, "dataset": d} for m, d in table.missing],
        "families": [
            family_record(table.tests, f"one correction over the whole table ({len(table.datasets)} datasets)")
        ]
        if table.tests
        else [],
        "tests": table.tests,
        **(extra or {}),
    }
    return json.dumps(out, indent=2, default=float) + "\n"
