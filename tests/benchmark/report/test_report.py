"""Leaderboards, statistics tables and plots in benchmark.report."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.report import comparison_table, leaderboard, order_metrics, plot_metric_bars, plot_metric_vs_k
from benchmark.stats import aggregate_seeds, compare

MEANS = {
    "base_line": {"recall@10": 0.10, "recall@20": 0.20, "ndcg@10": 0.05},
    "better": {"recall@10": 0.30, "recall@20": 0.25, "ndcg@10": 0.07},
    "mid": {"recall@10": 0.20, "recall@20": 0.30, "ndcg@10": 0.07},
    "worse": {"recall@10": 0.05, "recall@20": 0.10, "ndcg@10": 0.01},
}
CAP = {"correction": "holm", "alpha": 0.05, "fingerprint": "0123456789abcdef" * 4, "title": "Baby_2018 test"}


def _test(run, metric, sig, diff, p_adj=0.01):
    return {
        "metric": metric,
        "run": run,
        "baseline": "base_line",
        "test": "t",
        "p": p_adj / 2,
        "p_adjusted": p_adj,
        "mean_diff": diff,
        "ci_low": diff - 0.01,
        "ci_high": diff + 0.01,
        "effect_size": 0.5,
        "significant": sig,
        "rel_improvement": 0.1,
        "rel_ci_low": 0.0,
        "rel_ci_high": 0.2,
        "n_users": 1234,
        "mean_run": 0.0,
        "mean_baseline": 0.0,
    }


TESTS = [
    _test("better", "recall@10", True, 0.2),
    _test("better", "recall@20", False, 0.05, 0.2),
    _test("better", "ndcg@10", True, 0.02),
    _test("mid", "recall@10", False, 0.1, 0.3),
    _test("mid", "recall@20", True, 0.1),
    _test("mid", "ndcg@10", False, 0.02, 0.06),
    _test("worse", "recall@10", True, -0.05),
    _test("worse", "recall@20", False, -0.1, 0.5),
    _test("worse", "ndcg@10", True, -0.04),
]


def _md_cells(text):
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| Method")]
    header = next(line for line in text.splitlines() if line.startswith("| Method"))
    cols = [c.strip() for c in header.strip("|").split("|")][1:]
    out = {}
    for line in rows:
        parts = [c.strip() for c in line.strip("|").split("|")]
        out[parts[0]] = dict(zip(cols, parts[1:]))
    return cols, out


def test_metric_columns_grouped_by_family_then_k():
    assert order_metrics(["ndcg@20", "recall@50", "mrr@10", "recall@10", "ndcg@5", "foo@3", "hitrate@10"]) == [
        "recall@10",
        "recall@50",
        "ndcg@5",
        "ndcg@20",
        "hitrate@10",
        "mrr@10",
        "foo@3",
    ]


def test_markdown_bold_underline_and_markers():
    md = leaderboard(MEANS, TESTS, caption=CAP)
    cols, cells = _md_cells(md)
    assert cols == ["Recall@10", "Recall@20", "NDCG@10"]
    assert cells["better"]["Recall@10"] == "**0.3000**▲"
    assert cells["mid"]["Recall@10"] == "<u>0.2000</u>"
    assert cells["mid"]["Recall@20"] == "**0.3000**▲"
    assert cells["better"]["Recall@20"] == "<u>0.2500</u>"  # not significant: no marker
    # Tie for best: both bold; the next distinct value is second.
    assert cells["better"]["NDCG@10"] == "**0.0700**▲" and cells["mid"]["NDCG@10"] == "**0.0700**"
    assert cells["base_line (baseline)"]["NDCG@10"] == "<u>0.0500</u>"
    assert cells["worse"]["Recall@10"] == "0.0500▼" and cells["worse"]["Recall@20"] == "0.1000"
    assert not any(m in v for v in cells["base_line (baseline)"].values() for m in "▲▼")
    assert "**Baby_2018 test**" in md
    foot = md.strip().splitlines()[-1]
    for needle in (
        "paired t-test",
        "Holm",
        "α = 0.05",
        "9 comparisons",
        "n_users = 1234",
        CAP["fingerprint"],
        "base_line",
    ):
        assert needle in foot


def test_marks_follow_printed_values():
    means = {"a": {"m@1": 0.123449}, "b": {"m@1": 0.12345}, "c": {"m@1": 0.1}}
    cells = _md_cells(leaderboard(means, digits=3))[1]
    # 0.123449 and 0.12345 both print 0.123: both bold.
    assert cells["a"]["m@1"] == "**0.123**" == cells["b"]["m@1"] and cells["c"]["m@1"] == "<u>0.100</u>"


def _braces_balanced(tex: str) -> bool:
    depth = 0
    for tok in re.findall(r"\\.|[{}]", tex):
        if tok == "{":
            depth += 1
        elif tok == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def test_latex_structure():
    means = dict(MEANS)
    means["VLM4Rec_text & 100%"] = {"recall@10": 0.01, "recall@20": 0.02, "ndcg@10": 0.0}
    tex = leaderboard(means, TESTS, fmt="latex", caption={**CAP, "note": "Costs in $; 50% off #1", "label": "tab:main"})
    assert _braces_balanced(tex)
    lines = tex.splitlines()
    order = [lines.index(c) for c in (r"\toprule", r"\midrule", r"\bottomrule")]
    assert order == sorted(order)
    assert tex.count(r"\begin{") == tex.count(r"\end{") == 2
    assert r"\begin{tabular}{lrrr}" in tex
    assert r"VLM4Rec\_text \& 100\%" in tex and r"Baby\_2018 test" in tex
    assert r"Costs in \$; 50\% off \#1" in tex and r"\label{tab:main}" in tex
    assert r"\multicolumn{2}{c}{Recall} & \multicolumn{1}{c}{NDCG}" in tex
    assert r"\cmidrule(lr){2-3} \cmidrule(lr){4-4}" in tex
    body = lines[lines.index(r"\midrule") + 1 : lines.index(r"\bottomrule")]
    assert len(body) == 5
    for row in body:
        assert row.endswith(r"\\") and len(re.findall(r"(?<!\\)&", row)) == 3
    better = next(r for r in body if r.startswith("better"))
    assert r"\textbf{0.3000}\textsuperscript{$\uparrow$}" in better and r"\underline{0.2500} " in better
    worse = next(r for r in body if r.startswith("worse"))
    assert r"0.0500\textsuperscript{$\downarrow$}" in worse
    assert r"\texttt{0123456789ab}" in tex and r"$\alpha$ = 0.05" in tex


def test_csv_round_trips():
    csv = leaderboard(MEANS, TESTS, fmt="csv", caption=CAP)
    df = pd.read_csv(io.StringIO(csv))
    assert df["method"].tolist() == list(MEANS)
    assert df["is_baseline"].tolist() == [True, False, False, False]
    for _, row in df.iterrows():
        for m, v in MEANS[row["method"]].items():
            assert row[m] == v  # full precision, plain numbers
    better = df.set_index("method").loc["better"]
    assert better["recall@10_significant"] == 1 and better["recall@20_significant"] == 0
    assert df.set_index("method").loc["worse", "ndcg@10_significant"] == -1
    assert better["recall@20_p_adjusted"] == pytest.approx(0.2)
    assert np.isnan(df.set_index("method").loc["base_line", "recall@10_p_adjusted"])


def test_spread_shown():
    spread = {"better": {"recall@10": {"std": 0.0123, "mean": 0.3, "min": 0.29, "max": 0.31, "n_seeds": 3}}}
    cells = _md_cells(leaderboard(MEANS, spread=spread, metrics=["recall@10"]))[1]
    assert cells["better"]["Recall@10"] == "**0.3000** ± 0.0123"
    tex = leaderboard(MEANS, spread=spread, metrics=["recall@10"], fmt="latex")
    assert r"\textbf{0.3000}{\scriptsize$\pm$0.0123}" in tex and _braces_balanced(tex)
    df = pd.read_csv(io.StringIO(leaderboard(MEANS, spread=spread, fmt="csv")))
    assert df.set_index("method").loc["better", "recall@10_std"] == 0.0123


def test_leaderboard_errors():
    with pytest.raises(ValueError, match="allowed: md, latex, csv"):
        leaderboard(MEANS, fmt="html")
    with pytest.raises(ValueError, match="correction"):
        leaderboard(MEANS, TESTS, caption={"alpha": 0.05})
    with pytest.raises(ValueError, match="unknown caption key"):
        leaderboard(MEANS, caption={"titel": "x"})
    with pytest.raises(ValueError, match="not among the runs"):
        leaderboard(MEANS, baseline="nope")
    with pytest.raises(ValueError, match="several baselines"):
        leaderboard(MEANS, TESTS + [{**TESTS[0], "baseline": "mid", "run": "better"}], caption=CAP)


def test_end_to_end_with_compare_and_seeds():
    rng = np.random.default_rng(0)
    users = np.arange(400)

    def table(shift):
        return pd.DataFrame(
            {
                "user_id": users,
                "recall@10": np.clip(rng.random(400) * 0.4 + shift, 0, 1),
                "ndcg@10": np.clip(rng.random(400) * 0.3 + shift, 0, 1),
            }
        )

    per_user, spread = {}, {}
    for name, shift in {"pop": 0.0, "vlm4rec": 0.08}.items():
        per_user[name], spread[name] = aggregate_seeds([table(shift) for _ in range(3)])
    tests = compare(per_user, "pop", test="randomization", n_resamples=2000)
    means = {k: v.drop(columns="user_id").mean().to_dict() for k, v in per_user.items()}
    md = leaderboard(means, tests, caption={"correction": "holm", "alpha": 0.05}, spread=spread)
    cells = _md_cells(md)[1]
    # three independent seed tables: each model's seed SD is comparable to the CI half-width (†)
    assert cells["vlm4rec†"]["Recall@10"].startswith("**") and cells["vlm4rec†"]["Recall@10"].endswith("▲")
    assert "paired randomization (sign-flip) test" in md and "n_users = 400" in md
    assert "†: a seed SD at least half the CI half-width" in md

    out = comparison_table(tests)
    table_lines = [line for line in out.splitlines() if line.startswith("|")]
    assert len(table_lines) == 2 + len(tests) and "▲" in out
    assert '- Family "vs pop": 2 comparisons (1 pair(s) × 2 metric(s) shown), Holm correction, α = 0.05.' in out
    tex = comparison_table(tests, fmt="latex")
    assert _braces_balanced(tex) and r"\toprule" in tex and r"$\Delta$ mean" in tex
    back = pd.read_csv(io.StringIO(comparison_table(tests, fmt="csv")))
    assert back["p_adjusted"].tolist() == pytest.approx([t["p_adjusted"] for t in tests])
    assert back["significant"].tolist() == [t["significant"] for t in tests]


# --- plots -----------------------------------------------------------------------------------


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_write_valid_pngs(tmp_path):
    import matplotlib.image as mpimg

    rng = np.random.default_rng(0)
    per_user = {
        n: pd.DataFrame({"user_id": range(100), "recall@10": rng.random(100) * s})
        for n, s in [("a", 0.3), ("b", 0.5), ("c", 0.4)]
    }
    bars = plot_metric_bars(per_user, "recall@10", tmp_path / "out" / "bars.png", n_resamples=500)
    curves = plot_metric_vs_k(
        {
            "a": {"recall@10": 0.1, "recall@20": 0.2, "ndcg@10": 0.05, "ndcg@20": 0.07},
            "b": {"recall@10": 0.15, "recall@20": 0.22, "ndcg@10": 0.06, "ndcg@20": 0.08},
        },
        tmp_path / "k.png",
    )
    for p in (bars, curves):
        assert p.exists() and _is_png(p)
        img = mpimg.imread(p)
        assert img.ndim == 3 and img.shape[0] > 200 and img.shape[1] > 200
    # Atomic writes leave no temporary siblings behind.
    assert sorted(x.name for x in tmp_path.rglob("*") if x.is_file()) == ["bars.png", "k.png"]


def test_plot_errors(tmp_path):
    with pytest.raises(ValueError, match="no column 'ndcg@10'"):
        plot_metric_bars({"a": pd.DataFrame({"user_id": [1], "recall@10": [0.1]})}, "ndcg@10", tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"\['ndcg'\]"):
        plot_metric_vs_k({"a": {"recall@10": 0.1}}, tmp_path / "y.png", metrics=("recall", "ndcg"))
    assert not list(tmp_path.iterdir())


def test_metric_vs_k_plots_whatever_families_the_runs_have(tmp_path):
    # issue 12 defect 5: the default asked for recall and ndcg and failed on any other metric list
    out = plot_metric_vs_k({"a": {"hitrate@5": 0.1, "hitrate@10": 0.2, "mrr@5": 0.05}}, tmp_path / "z.png")
    assert out.is_file() and out.stat().st_size > 0


def test_comparison_table_shows_infinite_effect_size():
    # A constant per-user difference has effect size ±inf (sd = 0); it must not print as "nan".
    t = {**_test("better", "recall@10", True, 0.1), "effect_size": float("inf")}
    u = {**_test("worse", "recall@10", True, -0.1), "effect_size": float("-inf")}
    md = comparison_table([t, u], "md")
    assert "| +inf |" in md and "| -inf |" in md and "nan" not in md


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_latex_tables_compile_with_booktabs(tmp_path):
    means = dict(MEANS)
    means["VLM4Rec_text & 100% ~x^"] = {"recall@10": 0.01, "recall@20": 0.02, "ndcg@10": 0.0}
    spread = {r: {m: {"std": 0.001} for m in v} for r, v in means.items()}
    tex = leaderboard(means, TESTS, fmt="latex", caption={**CAP, "note": "Costs in $; 50% off #1"}, spread=spread)
    doc = (
        "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
        + tex
        + comparison_table(TESTS, "latex")
        + "\\end{document}\n"
    )
    (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert (tmp_path / "t.pdf").stat().st_size > 0
