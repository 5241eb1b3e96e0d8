"""Leaderboards and statistics tables as Markdown, LaTeX (booktabs) or CSV.

A leaderboard is methods × metric columns, grouped by metric family then by K (``recall@10``,
``recall@20``, ``ndcg@10``, …). In every column the best value is bold and the second best
underlined (compared on the values as printed, higher is better; ties share the mark). A run
that differs significantly from the baseline after correction gets ▲ (better) or ▼ (worse) —
``\\uparrow``/``\\downarrow`` in LaTeX — and the footnote names the test, the correction, the
family size, α, the number of users and the split fingerprint. CSV carries plain numbers with
``<metric>_p_adjusted`` and ``<metric>_significant`` (1 better, −1 worse, 0 not significant,
empty for the baseline) so that it reads back with :func:`pandas.read_csv`.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

FORMATS: tuple[str, ...] = ("md", "latex", "csv")
CAPTION_KEYS: tuple[str, ...] = ("test", "correction", "alpha", "n_users", "fingerprint", "title", "note", "label")

# Display order and names of metric families; others follow alphabetically, named as given.
_FAMILY_ORDER = ("recall", "ndcg", "hitrate", "hit", "hr", "precision", "mrr", "map", "coverage")
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
}
TEST_NAMES = {
    "t": "paired t-test",
    "wilcoxon": "Wilcoxon signed-rank test (Pratt zeros)",
    "randomization": "paired randomization (sign-flip) test",
    "bootstrap": "paired bootstrap test",
}
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
) -> str:
    """Render a methods × metrics leaderboard.

    Args:
        means: run → metric → mean value; rows follow this mapping's order.
        tests: comparison dicts from :func:`benchmark.stats.compare`; those against
            ``baseline`` give the significance markers.
        fmt: ``"md"``, ``"latex"`` or ``"csv"``.
        baseline: the reference run; default: the single baseline named in ``tests``.
        caption: keys among :data:`CAPTION_KEYS`. ``correction`` and ``alpha`` are required
            when ``tests`` are given (comparison dicts do not record them); ``test`` and
            ``n_users`` default to the tests' values.
        metrics: columns to show, in this order; default: every metric, grouped by family then K.
        digits: decimals shown (best/second are decided on the printed values).
        spread: run → metric → ``{"std": …}`` (from :func:`benchmark.stats.aggregate_seeds`),
            printed as ``± std``.

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
    baseline, sig = _significance(tests, baseline, runs)
    info = _caption_info(cap, baseline, tests)

    if fmt == "csv":
        return _leaderboard_csv(means, runs, cols, baseline, sig, spread)

    # Best/second per column on the printed values, so the marks agree with what is read.
    marks: dict[tuple[str, str], str] = {}
    for m in cols:
        shown = {r: round(float(means[r][m]), digits) for r in runs if m in means[r] and _finite(means[r][m])}
        levels = sorted(set(shown.values()), reverse=True)
        for r, v in shown.items():
            if v == levels[0]:
                marks[(r, m)] = "best"
            elif len(levels) > 1 and v == levels[1]:
                marks[(r, m)] = "second"
    cells = {
        (r, m): _cell(means[r].get(m), marks.get((r, m)), sig.get((r, m), (0, 0.0))[0], _std(spread, r, m), digits, fmt)
        for r in runs
        for m in cols
    }
    labels = {r: (f"{r} (baseline)" if r == baseline else r) for r in runs}
    if fmt == "md":
        return _leaderboard_md(runs, cols, cells, labels, info)
    return _leaderboard_latex(runs, cols, cells, labels, info)


def comparison_table(tests: Sequence[Mapping[str, Any]], fmt: str = "md", *, digits: int = 4) -> str:
    """Render the statistics of each comparison (one row per run × metric).

    Columns: metric, run, baseline, mean difference with its CI, p, adjusted p, effect size
    (mean/SD of differences), relative improvement with its CI, significance. CSV holds every
    key of the comparison dicts as plain values.
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
        "Δ mean",
        "CI",
        "p",
        "p (adj.)",
        "Effect size",
        "Rel. impr.",
        "Rel. CI",
        "Sig.",
    ]
    body = []
    for t in rows:
        body.append(
            [
                metric_label(str(t["metric"])),
                str(t["run"]),
                str(t["baseline"]),
                _num(t["mean_diff"], digits, signed=True),
                f"[{_num(t['ci_low'], digits, signed=True)}, {_num(t['ci_high'], digits, signed=True)}]",
                _pval(t["p"]),
                _pval(t["p_adjusted"]),
                _num(t["effect_size"], 3, signed=True),
                _pct(t["rel_improvement"]),
                f"[{_pct(t['rel_ci_low'])}, {_pct(t['rel_ci_high'])}]",
                ("▲" if t["mean_diff"] > 0 else "▼" if t["mean_diff"] < 0 else "•") if t["significant"] else "",
            ]
        )
    if fmt == "md":
        lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 3 + ["---:"] * 8) + "|"]
        lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in body]
        return "\n".join(lines) + "\n"
    out = [
        r"\begin{tabular}{lll" + "r" * 8 + "}",
        r"\toprule",
        " & ".join(latex_escape(h) for h in head) + r" \\",
        r"\midrule",
    ]
    for row in body:
        row = row[:-1] + [{"▲": r"$\uparrow$", "▼": r"$\downarrow$", "•": r"$\bullet$"}.get(row[-1], "")]
        out.append(" & ".join(latex_escape(c) if i < len(row) - 1 else c for i, c in enumerate(row)) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


# --- helpers -------------------------------------------------------------------------------


def _finite(x: Any) -> bool:
    try:
        return math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _std(spread: Mapping[str, Mapping[str, Mapping[str, float]]] | None, run: str, metric: str) -> float | None:
    if not spread or run not in spread or metric not in spread[run]:
        return None
    s = spread[run][metric].get("std")
    return float(s) if s is not None and _finite(s) else None


def _significance(
    tests: Sequence[Mapping[str, Any]], baseline: str | None, runs: Sequence[str]
) -> tuple[str | None, dict[tuple[str, str], tuple[int, float]]]:
    """Resolve the baseline; map (run, metric) → (+1/−1/0 significant better/worse/not, p_adjusted)."""
    tests = list(tests)
    if baseline is None and tests:
        names = sorted({str(t["baseline"]) for t in tests})
        if len(names) > 1:
            raise ValueError(f"tests compare against several baselines {names}; pass baseline=")
        baseline = names[0]
    if baseline is not None and baseline not in runs:
        raise ValueError(f"baseline {baseline!r} is not among the runs {list(runs)}")
    sig: dict[tuple[str, str], tuple[int, float]] = {}
    used = [t for t in tests if t["baseline"] == baseline]
    if tests and not used:
        raise ValueError(f"none of the tests is against baseline {baseline!r}")
    for t in used:
        direction = 0
        if t["significant"]:
            direction = 1 if t["mean_diff"] > 0 else -1 if t["mean_diff"] < 0 else 0
        sig[(str(t["run"]), str(t["metric"]))] = (direction, float(t["p_adjusted"]))
    return baseline, sig


def _caption_info(cap: dict[str, Any], baseline: str | None, tests: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    info = dict(cap)
    used = [t for t in tests if t["baseline"] == baseline]
    if used:
        missing = [k for k in ("correction", "alpha") if k not in cap]
        if missing:
            raise ValueError(
                f"caption must give {missing} when tests are shown (comparison results do not record them)"
            )
        kinds = sorted({str(t["test"]) for t in used})
        if len(kinds) > 1:
            raise ValueError(f"tests of several kinds {kinds} in one table")
        info.setdefault("test", kinds[0])
        info.setdefault("n_users", int(used[0]["n_users"]))
        info["family"] = len(used)
        info["baseline"] = baseline
    return info


def _num(x: Any, digits: int, signed: bool = False) -> str:
    if x is None or not _finite(x):
        if isinstance(x, (int, float)) and math.isinf(x):  # e.g. effect size of a constant difference
            return ("+inf" if signed else "inf") if x > 0 else "-inf"
        return "–" if x is None else "nan"
    return f"{float(x):+.{digits}f}" if signed else f"{float(x):.{digits}f}"


def _pval(p: Any) -> str:
    p = float(p)
    if not math.isfinite(p):
        return "nan"
    return f"{p:.1e}" if p < 1e-3 else f"{p:.4f}"


def _pct(x: Any) -> str:
    return f"{100.0 * float(x):+.1f}%" if _finite(x) else "n/a"


def _cell(value: Any, mark: str | None, direction: int, std: float | None, digits: int, fmt: str) -> str:
    if value is None or not _finite(value):
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


def _footnote(info: Mapping[str, Any], fmt: str) -> str:
    parts: list[str] = []
    up, down = ("▲", "▼") if fmt == "md" else (r"$\uparrow$", r"$\downarrow$")
    if "baseline" in info:
        corr = CORRECTION_NAMES.get(str(info["correction"]), str(info["correction"]))
        test = TEST_NAMES.get(str(info["test"]), str(info["test"]))
        base = info["baseline"] if fmt == "md" else latex_escape(info["baseline"])
        alpha_sym = "α" if fmt == "md" else r"$\alpha$"
        parts.append(
            f"{up}/{down}: significantly better/worse than {base} "
            f"({latex_escape(test) if fmt == 'latex' else test}, two-sided, "
            f"{latex_escape(corr) if fmt == 'latex' else corr} correction over "
            f"{info['family']} comparisons, {alpha_sym} = {info['alpha']})."
        )
    elif any(k in info for k in ("test", "correction", "alpha")):
        text = (
            f"Test: {info.get('test', 'n/a')}, correction: {info.get('correction', 'n/a')}, "
            f"alpha = {info.get('alpha', 'n/a')}; no significance markers."
        )
        parts.append(text if fmt == "md" else latex_escape(text))
    parts.append("Best in bold, second underlined.")
    if "n_users" in info:
        parts.append(
            f"n_users = {info['n_users']}." if fmt == "md" else rf"$n_{{\mathrm{{users}}}}$ = {info['n_users']}."
        )
    if info.get("fingerprint"):
        fp = str(info["fingerprint"])
        parts.append(
            f"Split fingerprint `{fp}`." if fmt == "md" else rf"Split fingerprint \texttt{{{latex_escape(fp[:12])}}}."
        )
    if info.get("note"):
        parts.append(str(info["note"]) if fmt == "md" else latex_escape(str(info["note"])))
    return " ".join(parts)


def _md_escape(text: str) -> str:
    return str(text).replace("|", r"\|")


def _leaderboard_md(
    runs: Sequence[str],
    cols: Sequence[str],
    cells: Mapping[tuple[str, str], str],
    labels: Mapping[str, str],
    info: Mapping[str, Any],
) -> str:
    lines: list[str] = []
    if info.get("title"):
        lines += [f"**{_md_escape(info['title'])}**", ""]
    lines.append("| Method | " + " | ".join(metric_label(m) for m in cols) + " |")
    lines.append("|---|" + "|".join("---:" for _ in cols) + "|")
    for r in runs:
        lines.append(f"| {_md_escape(labels[r])} | " + " | ".join(cells[(r, m)] for m in cols) + " |")
    lines += ["", _footnote(info, "md")]
    return "\n".join(lines) + "\n"


def _leaderboard_latex(
    runs: Sequence[str],
    cols: Sequence[str],
    cells: Mapping[tuple[str, str], str],
    labels: Mapping[str, str],
    info: Mapping[str, Any],
) -> str:
    # Two header rows: metric family spanning its K columns, then @K.
    groups: list[tuple[str, int]] = []
    for m in cols:
        fam = metric_label(split_metric(m)[0])
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
    caption += _footnote(info, "latex")
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
        out.append(latex_escape(labels[r]) + " & " + " & ".join(cells[(r, m)] for m in cols) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(out) + "\n"


def _leaderboard_csv(
    means: Mapping[str, Mapping[str, float]],
    runs: Sequence[str],
    cols: Sequence[str],
    baseline: str | None,
    sig: Mapping[tuple[str, str], tuple[int, float]],
    spread: Mapping[str, Mapping[str, Mapping[str, float]]] | None,
) -> str:
    records = []
    for r in runs:
        rec: dict[str, Any] = {"method": r, "is_baseline": r == baseline}
        for m in cols:
            v = means[r].get(m)
            rec[m] = float(v) if v is not None else float("nan")
            if spread:
                rec[f"{m}_std"] = _std(spread, r, m)
            if sig:
                d, pa = sig.get((r, m), (None, None))
                rec[f"{m}_p_adjusted"] = pa
                rec[f"{m}_significant"] = d
        records.append(rec)
    df = pd.DataFrame.from_records(records)
    for m in cols:  # nullable ints: 1/-1/0, empty for the baseline and untested cells
        if f"{m}_significant" in df.columns:
            df[f"{m}_significant"] = df[f"{m}_significant"].astype("Int64")
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()
