"""Leaderboards and statistics tables as Markdown, LaTeX (booktabs) or CSV.

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
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from benchmark.report.labels import (
    CORRECTION_NAMES,
    TEST_NAMES,
    direction_of,
    format_number,
    format_p,
    format_percent,
    is_finite,
    latex_escape,
    md_escape,
    metric_label,
    order_metrics,
    row_test_phrase,
    split_metric,
)

FORMATS: tuple[str, ...] = ("md", "latex", "csv")
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
SEED_MARK = "†"
SEED_SD_SHARE = 0.5
"""A row is marked when a seed SD reaches this share of a comparison's CI half-width."""


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
        caption: keys among :data:`CAPTION_KEYS`. ``correction`` and ``alpha`` default to the
            tests' values (required for comparison dicts that do not record them); ``test``
            and ``n_users`` too. ``code_versions``: descriptions of the code versions a
            results directory mixes (``--allow-mixed``), stated in the footnote.
        metrics: columns to show, in this order; default: every metric, grouped by family then K.
        digits: decimals shown (best/second are decided on the printed values).
        spread: run → metric → ``{"std": …}`` (from :func:`benchmark.stats.aggregate_seeds`),
            printed as ``± std``; with ``tests``, rows whose seed SD is comparable to a CI
            half-width are marked (module docstring).

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
        return _leaderboard_csv(means, runs, cols, baseline, sig, spread, seed_flags(tests, spread, cols))

    marks = _rank_marks(means, runs, cols, digits)
    cells = {
        (r, m): _cell(means[r].get(m), marks.get((r, m)), sig.get((r, m), (0, 0.0))[0], _std(spread, r, m), digits, fmt)
        for r in runs
        for m in cols
    }
    flagged = seed_flags(tests, spread, cols)
    if flagged:
        info["seed_flag"] = True
    labels = {r: (f"{r} (baseline)" if r == baseline else r) + (SEED_MARK if r in flagged else "") for r in runs}
    if fmt == "md":
        return _leaderboard_md(runs, cols, cells, labels, info)
    return _leaderboard_latex(runs, cols, cells, labels, info)


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


def _rank_marks(
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
    fams: dict[str, Mapping[str, Any]] = {}
    for t in rows:
        if "family" in t:
            fams.setdefault(str(t["family"]), t)
    lines = [
        f'Family "{name}": {t["family_size"]} comparisons, '
        f"{CORRECTION_NAMES.get(str(t['correction']), str(t['correction']))} correction, α = {t['alpha']}."
        for name, t in fams.items()
    ]
    labels = list(dict.fromkeys(str(t["test_label"]) for t in rows if t.get("test_label")))
    lines += [f"Test: {lab}." for lab in labels]
    if any(t["significant"] and direction_of(t) == 0 for t in rows):
        lines.append("•: significant, but the test's own statistic gives no direction.")
    return ("\n" + "\n".join(f"- {line}" for line in lines) + "\n") if lines else ""


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


def _std(spread: Mapping[str, Mapping[str, Mapping[str, float]]] | None, run: str, metric: str) -> float | None:
    if not spread or run not in spread or metric not in spread[run]:
        return None
    s = spread[run][metric].get("std")
    return float(s) if s is not None and is_finite(s) else None


def _significance(
    tests: Sequence[Mapping[str, Any]], baseline: str | None, runs: Sequence[str]
) -> tuple[str | None, dict[tuple[str, str], tuple[int, float]]]:
    """Resolve the baseline; map (run, metric) → (+1/−1/0 significant better/worse/not, p_adjusted).

    A marker needs ``significant`` and a non-zero direction from the test's own statistic
    (:func:`~benchmark.report.labels.direction_of`).
    """
    tests = list(tests)
    if baseline is None and tests:
        names = sorted({str(t["baseline"]) for t in tests})
        if len(names) > 1:
            raise ValueError(f"tests compare against several baselines {names}; pass baseline=")
        baseline = names[0]
    if baseline is not None and baseline not in runs:
        raise ValueError(f"baseline {baseline!r} is not among the runs {list(runs)}")
    sig: dict[tuple[str, str], tuple[int, float]] = {}
    used = _against(tests, baseline)
    if tests and not used:
        raise ValueError(f"none of the tests is against baseline {baseline!r}")
    for t in used:
        flipped = t["run"] == baseline  # a pair stored with the baseline as its run
        other = str(t["baseline"] if flipped else t["run"])
        direction = direction_of(t) if t["significant"] else 0
        sig[(other, str(t["metric"]))] = (-direction if flipped else direction, float(t["p_adjusted"]))
    return baseline, sig


def _against(tests: Sequence[Mapping[str, Any]], baseline: str | None) -> list[Mapping[str, Any]]:
    """The comparisons that involve ``baseline`` (an all-pairs family stores each pair once,
    with the earlier model as its baseline, so the baseline can sit on either side)."""
    return [t for t in tests if baseline in (t["baseline"], t["run"])]


def seed_flags(
    tests: Sequence[Mapping[str, Any]],
    spread: Mapping[str, Mapping[str, Mapping[str, float]]] | None,
    metrics: Sequence[str],
) -> set[str]:
    """Models whose seed SD on a shown metric is at least :data:`SEED_SD_SHARE` of the CI
    half-width of one of their comparisons on that metric (as run or as baseline)."""
    flagged: set[str] = set()
    if not spread:
        return flagged
    for t in tests:
        metric = str(t["metric"])
        if metric not in metrics or not (is_finite(t["ci_low"]) and is_finite(t["ci_high"])):
            continue
        half = (float(t["ci_high"]) - float(t["ci_low"])) / 2.0
        for side in (str(t["run"]), str(t["baseline"])):
            std = _std(spread, side, metric)
            if std is not None and half > 0 and std >= SEED_SD_SHARE * half:
                flagged.add(side)
    return flagged


def _caption_info(cap: dict[str, Any], baseline: str | None, tests: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the footnote states: the caption keys, plus, when markers are shown, the tests in
    words, the family and its correction (from the comparisons when they record them)."""
    info = dict(cap)
    used = _against(tests, baseline)
    if not used:
        return info
    for key in ("correction", "alpha"):
        if key not in info and key in used[0]:
            info[key] = used[0][key]
    missing = [k for k in ("correction", "alpha") if k not in info]
    if missing:
        raise ValueError(
            f"caption must give {missing} when tests are shown (these comparison results do not record them)"
        )
    phrases = Counter(row_test_phrase(t) for t in used)
    info["tests_phrase"] = (
        next(iter(phrases))
        if len(phrases) == 1
        else "; ".join(f"{ph} for {n} comparison{'s' if n > 1 else ''}" for ph, n in phrases.items())
    )
    info.setdefault("test", str(used[0]["test"]))
    info.setdefault("n_users", int(used[0]["n_users"]))
    info["family"] = int(used[0].get("family_size", len(used)))
    if "family" in used[0]:
        info["family_name"] = str(used[0]["family"])
    info["n_shown"] = len(used)
    info["baseline"] = baseline
    return info


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


def _footnote(info: Mapping[str, Any], fmt: str) -> str:
    esc = (lambda x: str(x)) if fmt == "md" else latex_escape
    parts: list[str] = []
    up, down = ("▲", "▼") if fmt == "md" else (r"$\uparrow$", r"$\downarrow$")
    if "baseline" in info:
        corr = CORRECTION_NAMES.get(str(info["correction"]), str(info["correction"]))
        alpha_sym = "α" if fmt == "md" else r"$\alpha$"
        family = f"{info['family']} comparisons"
        if info.get("family_name"):
            family = f'the family "{info["family_name"]}" of {family}'
            if info["family"] > info["n_shown"]:
                family += f" ({info['n_shown']} shown here; every comparison is in statistics.md)"
        parts.append(
            f"{up}/{down}: significantly better/worse than {esc(info['baseline'])} "
            f"({esc(info['tests_phrase'])}; two-sided; {esc(corr)} correction over {esc(family)}, "
            f"{alpha_sym} = {info['alpha']})."
        )
    elif any(k in info for k in ("test", "correction", "alpha")):
        test = TEST_NAMES.get(str(info.get("test")), info.get("test", "n/a"))
        text = (
            f"Test: {test}, correction: {info.get('correction', 'n/a')}, "
            f"alpha = {info.get('alpha', 'n/a')}; no significance markers."
        )
        parts.append(esc(text))
    parts.append("Best in bold, second underlined.")
    if info.get("seed_flag"):
        parts.append(
            esc(
                f"± SD over seeds; {SEED_MARK}: a seed SD at least half the CI half-width of one of this model's "
                "comparisons (training randomness is as large as the comparison's uncertainty; more seeds would "
                "narrow it)."
            )
        )
    if "n_users" in info:
        parts.append(
            f"n_users = {info['n_users']}." if fmt == "md" else rf"$n_{{\mathrm{{users}}}}$ = {info['n_users']}."
        )
    if info.get("fingerprint"):
        fp = str(info["fingerprint"])
        parts.append(
            f"Split fingerprint `{fp}`." if fmt == "md" else rf"Split fingerprint \texttt{{{latex_escape(fp[:12])}}}."
        )
    if info.get("code_versions"):
        parts.append(esc("Results mix code versions (--allow-mixed): " + "; ".join(info["code_versions"]) + "."))
    if info.get("note"):
        parts.append(esc(str(info["note"])))
    return " ".join(parts)


def _leaderboard_md(
    runs: Sequence[str],
    cols: Sequence[str],
    cells: Mapping[tuple[str, str], str],
    labels: Mapping[str, str],
    info: Mapping[str, Any],
) -> str:
    lines: list[str] = []
    if info.get("title"):
        lines += [f"**{md_escape(info['title'])}**", ""]
    lines.append("| Method | " + " | ".join(metric_label(m) for m in cols) + " |")
    lines.append("|---|" + "|".join("---:" for _ in cols) + "|")
    for r in runs:
        lines.append(f"| {md_escape(labels[r])} | " + " | ".join(cells[(r, m)] for m in cols) + " |")
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
    flagged: set[str],
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
