"""TREC qrels/run IO, run export round trip, and subset metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fixtures.ranking import make_split, table_model

from benchmark.data.read_report import BadInputError
from benchmark.evaluation import evaluate, evaluate_topk
from benchmark.evaluation.subsets import activity_buckets, cold_items, cold_start_result, subset_metrics
from benchmark.evaluation.trec import rank_run, read_qrels, read_run, relevant_from_qrels, write_qrels


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_read_qrels_and_run(tmp_path):
    q, rep = read_qrels(write(tmp_path, "q.txt", "u1 0 a 1\n\nu1 0 b 0\nu2 0 c 2\n"))
    assert q.to_dict("list") == {"user": ["u1", "u1", "u2"], "item": ["a", "b", "c"], "rel": [1, 0, 2]}
    assert rep.counts == {"blank": 1}
    rel, n_without = relevant_from_qrels(pd.concat([q, pd.DataFrame({"user": ["u3"], "item": ["z"], "rel": [0]})]))
    assert rel.values.tolist() == [["u1", "a"], ["u2", "c"]] and n_without == 1
    r, _ = read_run(write(tmp_path, "r.txt", "u1 Q0 b 1 0.5 t\nu1 Q0 a 2 0.5 t\nu1 Q0 c 3 0.9 t\nu2 Q0 x 9 1e-3 t\n"))
    ranked = rank_run(r)
    # score desc, then item id (string) asc; the file's rank column is ignored
    assert ranked.loc[ranked["user"] == "u1", "item"].tolist() == ["c", "a", "b"]
    assert ranked["rank"].tolist() == [1, 2, 3, 1]
    assert rank_run(r, k=1)["item"].tolist() == ["c", "x"]


def test_byte_order_mark_does_not_rename_the_first_user(tmp_path):
    # Regression: a UTF-8 BOM became part of the first user id ("\ufeffu1"), which then matched
    # nothing in the other file and silently scored 0.
    q_path, r_path = tmp_path / "q.txt", tmp_path / "r.txt"
    q_path.write_bytes("u1 0 a 1\nu2 0 b 1\n".encode("utf-8-sig"))
    r_path.write_bytes("u1 Q0 a 1 0.5 t\n".encode("utf-8-sig"))
    q, _ = read_qrels(q_path)
    r, _ = read_run(r_path)
    assert q["user"].tolist() == ["u1", "u2"] and r["user"].tolist() == ["u1"]


def test_non_utf8_line_is_reported_not_a_crash(tmp_path):
    # Regression: one Latin-1 byte raised UnicodeDecodeError (a traceback, no file/line).
    p = tmp_path / "run.txt"
    p.write_bytes(b"u1 Q0 a 1 0.5 t\nu1 Q0 caf\xe9 2 0.4 t\nu1 Q0 b 3 0.3 t\n")
    with pytest.raises(BadInputError, match="run.txt:2: malformed"):
        read_run(p)
    df, rep = read_run(p, strict=False)
    assert df["item"].tolist() == ["a", "b"] and rep.counts == {"malformed": 1} and rep.lines_read == 3


@pytest.mark.parametrize(
    "text, line, kind",
    [
        ("u1 Q0 a 1 0.5 t\nu1 Q0 a 1\n", 2, "malformed"),
        ("u1 Q0 a 1 0.5 t\nu1 Q0 b one 0.5 t\n", 2, "wrong_type"),
        ("u1 Q0 a 1 nan t\n", 1, "wrong_type"),
        ("u1 Q0 a 1 0.5 t\nu2 Q0 a 1 0.5 t\nu1 Q0 a 2 0.1 t\n", 3, "duplicate"),
    ],
)
def test_bad_run_lines_name_file_and_line(tmp_path, text, line, kind):
    p = write(tmp_path, "run.txt", text)
    with pytest.raises(BadInputError, match=rf"run.txt:{line}: {kind}"):
        read_run(p)
    df, rep = read_run(p, strict=False)
    assert rep.counts[kind] == 1 and rep.examples[kind] == [line]
    assert len(df) == rep.lines_read - 1


def test_bad_qrels_lines(tmp_path):
    p = write(tmp_path, "q.txt", "u1 0 a 1\nu1 0 a 1\nu2 0 b x\nu3 a 1\n")
    with pytest.raises(BadInputError, match="q.txt:2: duplicate"):
        read_qrels(p)
    df, rep = read_qrels(p, strict=False)
    assert rep.counts == {"duplicate": 1, "wrong_type": 1, "malformed": 1} and len(df) == 1


def test_exported_run_round_trips_to_same_metrics(tmp_path):
    split = make_split(11)
    res = evaluate(table_model(split, 4), split, ks=(5, 10), progress=False, keep_topk=True)
    run_path = res.to_trec_run(tmp_path / "m.run", tag="m")
    qrels_path = write_qrels(split, "test", tmp_path / "test.qrels")
    run_df, rep = read_run(run_path)
    assert rep.n_problems == 0 and set(run_df["tag"]) == {"m"}
    qrels, _ = read_qrels(qrels_path)
    rel, _ = relevant_from_qrels(qrels)
    back = evaluate_topk(rank_run(run_df, 10), rel, (5, 10))
    assert back.n_missing == 0 and back.n_users == res.n_users
    orig = res.per_user.assign(user_id=split.users["orig_user_id"].to_numpy()[res.per_user["user_id"]])
    merged = orig.merge(back.per_user, on="user_id", suffixes=("", "_trec"))
    assert len(merged) == res.n_users
    for col in res.columns:
        np.testing.assert_allclose(merged[col], merged[f"{col}_trec"], atol=1e-12)


def test_to_trec_run_needs_kept_lists(tmp_path):
    split = make_split(12)
    res = evaluate(table_model(split), split, progress=False)
    with pytest.raises(ValueError, match="keep_topk=True"):
        res.to_trec_run(tmp_path / "x.run")


def test_cold_start_subset_independently():
    split = make_split(13, n_users=60, n_items=40)
    res = evaluate(
        table_model(split, 5), split, ks=(10,), metrics=("recall", "hitrate"), progress=False, keep_topk=True
    )
    cold = set(split.test["item_id"]) - set(split.train["item_id"])
    assert set(cold_items(split, "test").tolist()) == cold
    sub = cold_start_result(res, split)
    users = res.per_user["user_id"].tolist()
    expected = {}
    for row, u in enumerate(users):
        rel = set(split.test.loc[split.test["user_id"] == u, "item_id"]) & cold
        if rel:
            top = set(res.topk[row, :10].tolist())
            expected[u] = len(top & rel) / len(rel)
    assert sub.n_users == len(expected) and sub.n_excluded == len(users) - len(expected)
    got = dict(zip(sub.per_user["user_id"], sub.per_user["recall@10"]))
    assert got == pytest.approx(expected)


def test_activity_buckets_and_subset_table():
    split = make_split(14, n_users=60)
    res = evaluate(table_model(split), split, ks=(5,), metrics=("recall",), progress=False, keep_topk=True)
    users = res.per_user["user_id"].to_numpy()
    counts = split.train.groupby("user_id").size().reindex(users, fill_value=0).to_numpy()
    b = activity_buckets(split, users, edges=[5, 8])
    lo = counts.min()
    assert list(b.categories) == [f"[{lo}, 5)", "[5, 8)", "[8, inf)"]
    assert (np.asarray(b.codes) == np.searchsorted([5, 8], counts, side="right")).all()
    table = subset_metrics(res, split, activity_edges=[5, 8])
    assert table["subset"].tolist()[:2] == ["all", "cold_items"]
    act = table[table["subset"].str.startswith("activity")]
    assert act["n_users"].sum() == res.n_users
    mid = res.per_user["recall@5"][(counts >= 5) & (counts < 8)].mean()
    assert act.loc[act["subset"] == "activity [5, 8)", "recall@5"].item() == pytest.approx(mid)
    q = activity_buckets(split, users, n_buckets=3)
    assert 1 <= len(q.categories) <= 3 and len(q) == len(users)


# --- ties: the project's rule and trec_eval's ------------------------------------------------


def _tied_run(rng, n_users=60, n_items=25):
    """Qrels and a run where most scores tie: a few score levels, plus near-ties closer than
    float32 precision (trec_eval holds scores as C floats, so those tie there too)."""
    qrels, run = {}, {}
    for u in range(n_users):
        items = [f"d{i:02d}" for i in rng.choice(n_items, size=12, replace=False)]
        qrels[f"q{u}"] = {f"d{i:02d}": int(rng.random() < 0.3) for i in range(n_items)}
        levels = rng.choice([0.5, 0.25, 1.0], size=len(items))
        jitter = np.where(rng.random(len(items)) < 0.3, 1e-9, 0.0)  # below float32 resolution
        run[f"q{u}"] = {i: float(s + e) for i, s, e in zip(items, levels, jitter)}
    return qrels, run


def _as_frames(qrels, run):
    q = pd.DataFrame([(u, i, r) for u, d in qrels.items() for i, r in d.items()], columns=["user", "item", "rel"])
    r = pd.DataFrame([(u, i, s) for u, d in run.items() for i, s in d.items()], columns=["user", "item", "score"])
    return q, r.assign(rank=0, tag="t")


def test_trec_eval_ties_match_pytrec_eval():
    # §8 regression: trec_eval breaks score ties by docno *descending* and compares scores as
    # 32-bit floats; ``ties="trec_eval"`` must reproduce its numbers exactly on a run full of ties.
    pytrec_eval = pytest.importorskip("pytrec_eval")
    qrels, run = _tied_run(np.random.default_rng(7))
    k = 5
    measures = {f"P_{k}", f"recall_{k}", f"ndcg_cut_{k}", f"map_cut_{k}", "recip_rank"}
    ref = pytrec_eval.RelevanceEvaluator(qrels, measures).evaluate(run)
    q, r = _as_frames(qrels, run)
    rel, _ = relevant_from_qrels(q)
    ours = {}
    for ties in ("trec_eval", "item-asc"):
        ranked = rank_run(r, ties=ties)
        # MRR over the whole list (12 items) = trec_eval's recip_rank, which has no cut-off
        res = evaluate_topk(ranked, rel, (k, 12), ("precision", "recall", "ndcg", "map", "mrr"))
        ours[ties] = res.per_user.set_index("user_id")
    pairs = {f"P_{k}": f"precision@{k}", f"recall_{k}": f"recall@{k}", f"ndcg_cut_{k}": f"ndcg@{k}"}
    pairs.update({f"map_cut_{k}": f"map@{k}", "recip_rank": "mrr@12"})
    users = [u for u in ref if any(v > 0 for v in qrels[u].values())]
    assert len(users) > 40
    differs = 0
    for theirs, mine in pairs.items():
        expected = np.array([ref[u][theirs] for u in users])
        got = ours["trec_eval"].loc[users, mine].to_numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12, err_msg=theirs)
        differs += int(np.abs(ours["item-asc"].loc[users, mine].to_numpy() - expected).max() > 1e-9)
    assert differs >= 3  # the default rule really ranks ties differently (else this test proves nothing)


def test_tie_rules_order():
    r = pd.DataFrame(
        {"user": ["u"] * 4, "item": ["b", "a", "c", "d"], "score": [0.5, 0.5, 0.5 + 1e-9, 0.7], "rank": 0, "tag": "t"}
    )
    assert rank_run(r)["item"].tolist() == ["d", "c", "a", "b"]  # float64 scores, id ascending
    # trec_eval: 0.5 + 1e-9 is 0.5 as a float32, so c ties with a and b; ids descending
    assert rank_run(r, ties="trec_eval")["item"].tolist() == ["d", "c", "b", "a"]
    assert rank_run(r, ties="trec_eval")["score"].tolist() == [0.7, 0.5 + 1e-9, 0.5, 0.5]  # scores kept as given
    with pytest.raises(ValueError, match="unknown tie rule 'x'; allowed: item-asc, trec_eval"):
        rank_run(r, ties="x")
