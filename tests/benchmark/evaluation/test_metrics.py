"""Every metric against ranx (the reference implementation) on random and edge-case inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from benchmark.evaluation import metrics as M
from benchmark.evaluation.evaluator import evaluate_topk
from benchmark.evaluation.ranking import topk_items

ranx = pytest.importorskip("ranx")

RANX_NAMES = {
    "recall": "recall",
    "ndcg": "ndcg",
    "hitrate": "hit_rate",
    "precision": "precision",
    "mrr": "mrr",
    "map": "map",
}


def ranx_per_user(lists: dict, relevant: dict, ks) -> dict[str, np.ndarray]:
    """ranx's per-user values (users = sorted keys of ``relevant``); lists get distinct descending scores."""
    qrels = ranx.Qrels({f"u{u}": {f"i{i}": 1 for i in rel} for u, rel in relevant.items()})
    run = ranx.Run(
        {f"u{u}": {f"i{i}": float(len(lst) - r) for r, i in enumerate(lst)} for u, lst in lists.items() if len(lst)}
    )
    names = [f"{RANX_NAMES[m]}@{k}" for k in ks for m in M.METRICS]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranx.evaluate(qrels, run, names, make_comparable=True, save_results_in_run=True)
    users = sorted(relevant)
    out = {}
    for k in ks:
        for m in M.METRICS:
            per = run.scores[f"{RANX_NAMES[m]}@{k}"]
            out[f"{m}@{k}"] = np.array([per[f"u{u}"] for u in users], dtype=np.float64)
    return out


def hits_matrix(lists: dict, relevant: dict, width: int) -> tuple[np.ndarray, np.ndarray]:
    users = sorted(relevant)
    hits = np.zeros((len(users), width), dtype=bool)
    for row, u in enumerate(users):
        for r, i in enumerate(lists.get(u, [])[:width]):
            hits[row, r] = i in relevant[u]
    return hits, np.array([len(relevant[u]) for u in users])


def random_case(rng, n_users=150, n_items=40, max_len=30, max_rel=25, missing_frac=0.0):
    lists, relevant = {}, {}
    for u in range(n_users):
        n_rel = int(rng.integers(1, max_rel + 1))
        relevant[u] = set(rng.choice(n_items, size=min(n_rel, n_items), replace=False).tolist())
        if rng.random() < missing_frac:
            continue
        length = int(rng.integers(0, max_len + 1))
        lists[u] = rng.permutation(n_items)[:length].tolist()
    return lists, relevant


def assert_match(ours: dict, ref: dict) -> None:
    for key, ref_vals in ref.items():
        np.testing.assert_allclose(ours[key], ref_vals, rtol=0, atol=1e-9, err_msg=key)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_inputs_match_ranx(seed):
    rng = np.random.default_rng(seed)
    lists, relevant = random_case(rng)
    ks = (1, 3, 10, 20, 30)
    hits, n_rel = hits_matrix(lists, relevant, 30)
    assert_match(M.compute(hits, n_rel, M.METRICS, ks), ranx_per_user(lists, relevant, ks))


def test_edge_cases_match_ranx():
    # one relevant item; more relevant than K; relevant item just past K; empty list; K > catalogue
    relevant = {0: {3}, 1: set(range(20)), 2: {7}, 3: {1, 2}, 4: {0, 1, 2, 3, 4}, 5: {9}}
    lists = {
        0: [5, 3, 1],
        1: list(range(19, -1, -1)),  # every item relevant, 20 > K
        2: [0, 1, 2, 3, 4, 5, 6, 7],  # hit at rank 8 only
        3: [],
        4: [4, 9, 3],  # catalogue of 10 items, K = 50 below
        5: [9],
    }
    ks = (1, 5, 10, 50)
    hits, n_rel = hits_matrix(lists, relevant, 50)
    ours = M.compute(hits, n_rel, M.METRICS, ks)
    assert_match(ours, ranx_per_user(lists, relevant, ks))
    # hand-checked values
    assert ours["precision@50"][4] == pytest.approx(2 / 50)  # K as asked, not the list length
    assert ours["map@5"][1] == pytest.approx(5 / 20)  # AP divides by all relevant items
    assert ours["ndcg@5"][1] == pytest.approx(1.0)  # IDCG over min(K, |rel|)
    assert ours["mrr@10"][2] == pytest.approx(1 / 8)


def test_hit_matrix_narrower_than_k_pads_with_misses():
    hits = np.array([[True, False, True]])
    for name, fn in M.METRICS.items():
        wide = np.zeros((1, 10), dtype=bool)
        wide[0, :3] = hits[0]
        np.testing.assert_allclose(fn(hits, [4], 10), fn(wide, [4], 10), err_msg=name)


def test_users_missing_from_run_score_zero_and_are_counted():
    rng = np.random.default_rng(5)
    lists, relevant = random_case(rng, n_users=80, missing_frac=0.3)
    ks = (5, 10)
    res = evaluate_topk(lists, relevant, ks, n_items=40)
    no_list = [u for u in relevant if not lists.get(u)]  # absent, or an empty list
    assert res.n_missing == len(no_list) > 0
    assert res.n_users == len(relevant)
    ref = ranx_per_user(lists, relevant, ks)
    assert_match({c: res.per_user[c].to_numpy() for c in res.columns}, ref)
    missing_rows = res.per_user["user_id"].isin(no_list).to_numpy()
    assert (res.per_user.loc[missing_rows, res.columns].to_numpy() == 0).all()


def test_ties_resolved_by_item_id_then_match_ranx():
    rng = np.random.default_rng(3)
    scores = torch.from_numpy(rng.integers(0, 4, size=(60, 30)).astype(np.float32))  # heavy ties
    items, _ = topk_items(scores, 10)
    s = scores.numpy()
    lists, relevant = {}, {}
    for u in range(len(s)):
        ref = np.lexsort((np.arange(s.shape[1]), -s[u]))[:10]  # score desc, item id asc
        assert items[u].tolist() == ref.tolist()
        lists[u] = ref.tolist()
        relevant[u] = set(rng.choice(30, size=int(rng.integers(1, 12)), replace=False).tolist())
    hits, n_rel = hits_matrix(lists, relevant, 10)
    assert_match(M.compute(hits, n_rel, M.METRICS, (5, 10)), ranx_per_user(lists, relevant, (5, 10)))


def test_zero_relevant_gives_zero():
    hits = np.zeros((2, 3), dtype=bool)
    for fn in M.METRICS.values():
        assert fn(hits, [0, 0], 3).tolist() == [0.0, 0.0]


def test_item_coverage():
    topk = np.array([[0, 1, -1], [1, 2, 3]])
    assert M.item_coverage(topk, 10) == pytest.approx(4 / 10)
    assert M.item_coverage(topk, 10, k=1) == pytest.approx(2 / 10)
    with pytest.raises(ValueError, match="out of range"):
        M.item_coverage(topk, 3)


def test_parse_metric():
    assert M.parse_metric("recall@10") == ("recall", 10)
    assert M.parse_metric(" NDCG@20 ").label == "ndcg@20"
    assert M.parse_metric("hit_rate@5").name == "hitrate"
    assert [s.label for s in M.parse_metrics("recall@10,ndcg@10,recall@10")] == ["recall@10", "ndcg@10"]
    with pytest.raises(ValueError, match="allowed: recall@K, ndcg@K"):
        M.parse_metric("auc@10")
    with pytest.raises(ValueError, match="expected NAME@K"):
        M.parse_metric("recall")
    with pytest.raises(ValueError, match="cut-off"):
        M.parse_metric("recall@0")
