"""Leaderboards across datasets (issue 14): one table over three generated datasets in every
format, markers within each dataset under one correction over the table, missing cells, the
Friedman test and its CD diagram; and the one-split leaderboard's row order and seed spread."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.multirun import write_run
from scipy import stats

from benchmark.cli import main
from benchmark.stats import adjust_pvalues
from benchmark.stats.ranks import min_datasets

SKILLS = {"Base": 0.30, "Strong": 0.45, "Weak": 0.20, "Extra": 0.33}


@pytest.fixture(scope="module")
def three(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("multi")
    dirs = []
    for i, name in enumerate(("baby", "sports", "clothing")):
        models = {
            "Base": (SKILLS["Base"], [None]),
            "Strong": (SKILLS["Strong"] - 0.03 * i, [0, 1]),
            "Weak": (SKILLS["Weak"], [None]),
        }
        if name != "clothing":  # a missing cell
            models["Extra"] = (SKILLS["Extra"], [None])
        dirs.append(write_run(root / name, name, f"{i:02d}" * 32, models, seed=i, baseline="Base"))
    return dirs


def _seed_mean(d: Path, model: str, metric: str) -> float:
    """A model's mean on ``metric``, recomputed from its per-user files (averaged over seeds)."""
    files = sorted((d / "units").glob(f"{model}*.parquet"))
    per_user = np.mean([pd.read_parquet(f)[metric].to_numpy() for f in files], axis=0)
    return float(per_user.mean())


def _per_user(d: Path, model: str, metric: str) -> np.ndarray:
    files = sorted((d / "units").glob(f"{model}*.parquet"))
    return np.mean([pd.read_parquet(f).sort_values("user_id")[metric].to_numpy() for f in files], axis=0)


def _run(args: list[str], capsys) -> str:
    assert main(args) == 0
    return capsys.readouterr().out


def test_table_in_every_format_with_recomputed_numbers(three, capsys, tmp_path):
    dirs = [str(d) for d in three]
    metrics = ["recall@20", "ndcg@20"]
    base = ["leaderboard", *dirs, "--metrics", ",".join(metrics)]
    out = json.loads(_run([*base, "--format", "json"], capsys))
    assert [d["label"] for d in out["datasets"]] == ["baby", "sports", "clothing"]
    assert out["models"] == ["Base", "Strong", "Weak", "Extra"]  # first appearance, config order
    assert out["missing"] == [{"model": "Extra", "dataset": "clothing"}]
    for d in three:
        for m in out["means"][d.name]:
            for c in metrics:
                assert out["means"][d.name][m][c] == pytest.approx(_seed_mean(d, m, c), abs=1e-12)
    # one correction over the whole table: Holm over every comparison of every dataset
    tests = out["tests"]
    n_expected = (3 + 3 + 2) * len(metrics)  # vs Base: 3 models on baby/sports, 2 on clothing
    assert len(tests) == n_expected and {t["family_size"] for t in tests} == {n_expected}
    assert out["families"][0]["size"] == n_expected
    assert np.allclose([t["p_adjusted"] for t in tests], adjust_pvalues([t["p"] for t in tests], "holm"))
    # a one-model-per-side comparison is the paired t-test, recomputed from the per-user files
    weak = next(t for t in tests if t["dataset"] == "sports" and t["run"] == "Weak" and t["metric"] == "recall@20")
    ref = stats.ttest_rel(_per_user(three[1], "Weak", "recall@20"), _per_user(three[1], "Base", "recall@20"))
    assert weak["p"] == pytest.approx(ref.pvalue, rel=1e-9) and weak["dataset"] == "sports"
    assert weak["significant"] and weak["direction"] == -1

    md = _run(base, capsys)
    assert md.splitlines()[0].startswith("| Method | baby Recall@20 | baby NDCG@20 | sports Recall@20")
    extra_row = next(line for line in md.splitlines() if line.startswith("| Extra"))
    assert extra_row.count("—") == 2 + 1  # two clothing cells and no mean rank
    assert "— : no results for Extra on clothing" in md.replace("—:", "— :")
    assert f"one Holm correction over the whole table: {n_expected} comparisons across 3 datasets" in md
    assert "Weak | " in md and "▼" in next(line for line in md.splitlines() if line.startswith("| Weak"))
    strong_row = next(line for line in md.splitlines() if line.startswith("| Strong"))
    assert "**" in strong_row and " ± " in strong_row  # best per column; seed SD of a 2-seed model

    csv = pd.read_csv(io.StringIO(_run([*base, "--format", "csv"], capsys)))
    assert len(csv) == 4 * 3 * len(metrics)
    row = csv[(csv.method == "Strong") & (csv.dataset == "clothing") & (csv.metric == "ndcg@20")].iloc[0]
    assert row.value == pytest.approx(_seed_mean(three[2], "Strong", "ndcg@20"), abs=1e-12)
    assert csv[csv.missing].shape[0] == 2 and csv[csv.missing].value.isna().all()

    tex = _run([*base, "--format", "latex"], capsys)
    assert r"\multicolumn{2}{c}{baby}" in tex and r"\cmidrule(lr){2-3}" in tex and r"\toprule" in tex
    assert "Extra & " in tex and tex.count("--") >= 3  # missing cells and mean rank


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="needs pdflatex")
def test_latex_table_compiles(three, capsys, tmp_path):
    tex = _run(["leaderboard", *map(str, three), "--format", "latex", "--friedman", "recall@20"], capsys)
    doc = "\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n" + tex + "\\end{document}\n"
    (tmp_path / "t.tex").write_text(doc, encoding="utf-8")
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]


def test_friedman_and_cd_diagram(three, capsys, tmp_path):
    png = tmp_path / "cd.png"
    args = ["leaderboard", *map(str, three), "--format", "json", "--friedman", "recall@20", "--cd-diagram", str(png)]
    fr = json.loads(_run(args, capsys))["friedman"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    complete = ["Base", "Strong", "Weak"]  # Extra has no clothing result
    values = np.array([[_seed_mean(d, m, "recall@20") for m in complete] for d in three])
    ref = stats.friedmanchisquare(*values.T)
    assert fr["statistic"] == pytest.approx(ref.statistic) and fr["p"] == pytest.approx(ref.pvalue)
    assert fr["n_datasets"] == 3 and fr["mean_ranks"] == {"Base": 2.0, "Strong": 1.0, "Weak": 3.0}
    assert fr["chi2_approximation_rough"] is True
    md = _run(["leaderboard", *map(str, three), "--friedman", "recall@20"], capsys)
    assert "Friedman test over 3 datasets on recall@20" in md and "rough" in md


def test_friedman_refuses_too_few_datasets(three, caplog):
    assert (
        min_datasets(3, 0.05) == 3
        and min_datasets(2, 0.05) == 6
        and min_datasets(5, 0.05) == 3
        and min_datasets(10, 0.01) == 4
    )
    assert main(["leaderboard", *map(str, three[:2]), "--friedman", "recall@20"]) == 2
    assert "over 2 dataset(s) cannot mean anything" in caplog.text and "needs at least 3 datasets" in caplog.text
    assert main(["leaderboard", str(three[0]), "--cd-diagram", "x.png"]) == 2


def test_one_split_keeps_config_order_and_seed_spread(tmp_path, capsys):
    # issue 12's rough edge: rows follow the config (not the alphabet) and keep ± SD over seeds
    d = write_run(
        tmp_path / "r", "demo", "ab" * 32, {"Zeta": (0.4, [0, 1]), "Mid": (0.3, [0, 1]), "Alpha": (0.2, [None])}
    )
    md = _run(["leaderboard", str(d), "--metrics", "recall@10"], capsys)
    rows = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| ") and "Method" not in line]
    assert rows == ["Zeta (baseline)", "Mid", "Alpha"]
    assert md.count(" ± ") == 2
    tex = _run(["leaderboard", str(d), "--format", "latex"], capsys)
    assert tex.index("Zeta") < tex.index("Mid") < tex.index("Alpha") and r"$\pm$" in tex
    csv = pd.read_csv(io.StringIO(_run(["leaderboard", str(d), "--format", "csv"], capsys)))
    assert list(csv.method) == ["Zeta", "Mid", "Alpha"] and csv["recall@10_std"].notna().sum() == 2
    out = json.loads(_run(["leaderboard", str(d), "--format", "json"], capsys))
    assert list(out["runs"]) == ["Zeta", "Mid", "Alpha"] and out["seed_spread"]["Zeta"]["recall@10"]["n_seeds"] == 2
    # several directories on one split: directory order, then each config's order
    e = write_run(tmp_path / "s", "demo", "ab" * 32, {"Beta": (0.1, [None]), "Aardvark": (0.1, [None])}, seed=3)
    out = json.loads(_run(["leaderboard", str(e), str(d), "--format", "json"], capsys))
    assert list(out["runs"]) == ["Beta", "Aardvark", "Zeta", "Mid", "Alpha"]


def test_sensitivity_report_between_two_generated_datasets(three, capsys):
    args = ["sensitivity", str(three[0]), str(three[2]), "--metric", "recall@20", "--n-resamples", "300"]
    out = json.loads(_run([*args, "--format", "json"], capsys))
    models = ["Base", "Strong", "Weak"]  # Extra is not on clothing
    assert out["models"] == models and out["only_on_one_side"] == {"baby · mmrec": ["Extra"]}
    va = [_seed_mean(three[0], m, "recall@20") for m in models]
    vb = [_seed_mean(three[2], m, "recall@20") for m in models]
    assert out["changes"]["Weak"]["recall@20"]["abs"] == pytest.approx(vb[2] - va[2])
    assert out["changes"]["Weak"]["recall@20"]["rel"] == pytest.approx((vb[2] - va[2]) / va[2])
    assert out["kendall_tau"]["tau"] == pytest.approx(stats.kendalltau(va, vb).statistic)
    md = _run(args, capsys)
    assert "**A: baby · mmrec**" in md and "Only under baby · mmrec (not compared): Extra." in md
    assert main(["sensitivity", str(three[0])]) == 2  # one run needs --mode-b
