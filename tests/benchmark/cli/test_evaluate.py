"""`vlm4rec-bench evaluate` on TREC files: JSON output checked against direct computations."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.cli import main
from benchmark.evaluation import metrics as M


def make_files(tmp_path, n_users=40, n_items=30, seed=0):
    """Qrels + two runs (B is missing some users); also returns the relevant sets and ranked lists."""
    rng = np.random.default_rng(seed)
    relevant, lists = {}, {"A": {}, "B": {}}
    q_lines, runs = [], {"A": [], "B": []}
    for u in range(n_users):
        rel = rng.choice(n_items, size=int(rng.integers(1, 6)), replace=False)
        relevant[f"u{u}"] = {f"i{i:02d}" for i in rel}
        q_lines += [f"u{u} 0 i{i:02d} 1" for i in rel]
        q_lines.append(f"u{u} 0 i{int(rng.integers(n_items)):02d}x 0")  # judged non-relevant
        for name in ("A", "B"):
            if name == "B" and u % 7 == 3:
                continue
            items = rng.permutation(n_items)[:15]
            scores = rng.integers(0, 5, size=15).astype(float)  # ties → item id order decides
            order = sorted(range(15), key=lambda j: (-scores[j], f"i{items[j]:02d}"))
            lists[name][f"u{u}"] = [f"i{items[j]:02d}" for j in order]
            runs[name] += [
                f"u{u} Q0 i{items[j]:02d} {r + 1} {scores[j]} {name}" for r, j in enumerate(rng.permutation(15))
            ]
    q_lines.append("ux 0 i00 0")  # a user with nothing relevant: excluded
    (tmp_path / "qrels.txt").write_text("\n".join(q_lines) + "\n")
    for name, lines in runs.items():
        (tmp_path / f"{name}.run").write_text("\n".join(lines) + "\n")
    return relevant, lists


def expected(relevant, lists, spec):
    users = sorted(relevant)
    hits = np.array([[i in relevant[u] for i in (lists.get(u, []) + [None] * spec.k)[: spec.k]] for u in users])
    return users, M.METRICS[spec.name](hits, np.array([len(relevant[u]) for u in users]), spec.k)


def test_json_output(tmp_path, capsys):
    relevant, lists = make_files(tmp_path)
    metrics = "recall@10,ndcg@5,hitrate@3,precision@20,mrr@10,map@10"
    rc = main(
        [
            "evaluate",
            "--qrels",
            str(tmp_path / "qrels.txt"),
            "--run",
            str(tmp_path / "A.run"),
            "--run",
            f"Other={tmp_path / 'B.run'}",
            "--metrics",
            metrics,
            "--format",
            "json",
            "--per-user",
            str(tmp_path / "pu.tsv"),
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert {"runs", "n_users", "missing_users", "tests"} <= set(out)
    assert out["n_users"] == len(relevant) == 40
    assert out["missing_users"] == {"A": 0, "Other": sum(1 for u in range(40) if u % 7 == 3)}
    specs = M.parse_metrics(metrics)
    per_user = {}
    for run, key in (("A", "A"), ("Other", "B")):
        assert list(out["runs"][run]) == [s.label for s in specs]
        for s in specs:
            users, vals = expected(relevant, lists[key], s)
            per_user[(run, s.label)] = vals
            assert out["runs"][run][s.label] == pytest.approx(vals.mean(), abs=1e-12)
    assert len(out["tests"]) == len(specs)
    for t in out["tests"]:
        assert {
            "metric",
            "run",
            "baseline",
            "test",
            "p",
            "p_adjusted",
            "mean_diff",
            "ci_low",
            "ci_high",
            "effect_size",
            "significant",
        } <= set(t)
        assert (t["run"], t["baseline"], t["test"]) == ("Other", "A", "t")
        x, y = per_user[("Other", t["metric"])], per_user[("A", t["metric"])]
        direct = stats.ttest_rel(x, y)
        if np.isfinite(direct.pvalue):
            assert t["p"] == pytest.approx(direct.pvalue, rel=1e-9)
        assert t["mean_diff"] == pytest.approx((x - y).mean(), abs=1e-12)
    pu = pd.read_csv(tmp_path / "pu.tsv", sep="\t")
    assert len(pu) == 80 and set(pu["run"]) == {"A", "Other"}


def test_markdown_and_single_run(tmp_path, capsys):
    make_files(tmp_path)
    rc = main(
        [
            "evaluate",
            "--qrels",
            str(tmp_path / "qrels.txt"),
            "--run",
            str(tmp_path / "B.run"),
            "--metrics",
            "recall@10",
            "--format",
            "md",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "Recall@10" in out and "B" in out and "missing" in out


def test_malformed_line_reported_with_file_and_line(tmp_path, capsys, caplog):
    make_files(tmp_path)
    bad = tmp_path / "bad.run"
    bad.write_text("u1 Q0 i01 1 0.5 t\nu1 Q0 i02 2\n")
    args = ["evaluate", "--qrels", str(tmp_path / "qrels.txt"), "--run", str(bad), "--format", "json"]
    assert main(args) == 2
    assert "bad.run:2: malformed" in caplog.text
    capsys.readouterr()
    assert main(args + ["--skip-malformed"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["skipped_lines"]["bad"] == 1 and out["missing_users"]["bad"] == 39


def test_bad_arguments(tmp_path):
    make_files(tmp_path)
    base = ["evaluate", "--qrels", str(tmp_path / "qrels.txt"), "--run", str(tmp_path / "A.run")]
    assert main(base + ["--metrics", "auc@10"]) == 2
    assert main(base + ["--baseline", "nope"]) == 2
    assert main(base + ["--run", f"A={tmp_path / 'B.run'}"]) == 2
    # the floor: a randomization test needs >= 10,000 permutations
    two = base + ["--run", str(tmp_path / "B.run"), "--test", "randomization", "--format", "json"]
    assert main(two + ["--n-resamples", "999"]) == 2


def test_rank_column_that_disagrees_with_scores_is_warned(tmp_path, capsys, caplog):
    # Constant scores with the order in the rank column only: we rank by score (ties by item id),
    # like trec_eval; the user must be told rather than silently get a different ranking.
    (tmp_path / "q.txt").write_text("u1 0 z 1\nu2 0 a 1\n")
    (tmp_path / "r.run").write_text("u1 Q0 z 1 0 t\nu1 Q0 a 2 0 t\nu2 Q0 a 1 1 t\nu2 Q0 b 2 0 t\n")
    rc = main(
        [
            "evaluate",
            "--qrels",
            str(tmp_path / "q.txt"),
            "--run",
            str(tmp_path / "r.run"),
            "--metrics",
            "mrr@2",
            "--format",
            "json",
        ]
    )
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["runs"]["r"]["mrr@2"] == pytest.approx((0.5 + 1.0) / 2)  # u1: z ranked after a
    assert "for 1 users the rank column orders items differently" in caplog.text


def test_ties_flag_matches_trec_eval(tmp_path, capsys):
    # §8: `--ties trec_eval` reproduces trec_eval on a run whose scores tie (pytrec_eval is the
    # reference); the default (item id ascending) is stated in --help and gives other numbers here.
    pytrec_eval = pytest.importorskip("pytrec_eval")
    relevant, _ = make_files(tmp_path)
    qrels = {u: {i: 1 for i in items} for u, items in relevant.items()}
    run: dict[str, dict[str, float]] = {}
    for line in (tmp_path / "A.run").read_text().splitlines():
        u, _, item, _, score, _ = line.split()
        run.setdefault(u, {})[item] = float(score)
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut_5", "P_5"}).evaluate(run)
    base = ["evaluate", "--qrels", str(tmp_path / "qrels.txt"), "--run", str(tmp_path / "A.run")]
    base += ["--metrics", "ndcg@5,precision@5", "--format", "json", "--per-user", str(tmp_path / "pu.tsv")]
    means = {}
    for ties in ("trec_eval", "item-asc"):
        assert main(base + ["--ties", ties]) == 0
        out = json.loads(capsys.readouterr().out)
        assert out["ties"] == ties
        means[ties] = out["runs"]["A"]
        pu = pd.read_csv(tmp_path / "pu.tsv", sep="\t").set_index("user_id")
        if ties == "trec_eval":
            for u in ref:
                assert pu.loc[u, "ndcg@5"] == pytest.approx(ref[u]["ndcg_cut_5"], abs=1e-9)
                assert pu.loc[u, "precision@5"] == pytest.approx(ref[u]["P_5"], abs=1e-9)
    assert means["trec_eval"]["ndcg@5"] != pytest.approx(means["item-asc"]["ndcg@5"], abs=1e-6)


def test_help_states_the_default_tie_rule(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--ties {item-asc,trec_eval}" in text and "item id ascending (default" in text
