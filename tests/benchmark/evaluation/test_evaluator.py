"""The batched evaluator: masking rule, deterministic ranking, exclusions, batch/device invariance."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from fixtures.ranking import make_split, table_model

from benchmark.evaluation import evaluate, mask_seen, seen_parts_for, topk_items
from benchmark.evaluation.evaluator import hits_from_csr, hits_np
from benchmark.evaluation.masking import part_csr
from benchmark.evaluation.ranking import PAD_ITEM
from benchmark.split import Split

ranx = pytest.importorskip("ranx")


def reference(split: Split, table: torch.Tensor, part: str, ks) -> dict[str, np.ndarray]:
    """Brute force: mask with pandas sets, order by lexsort (score desc, id asc), metrics from ranx."""
    seen = pd.concat([split.part(p) for p in seen_parts_for(part)]) if seen_parts_for(part) else split.train.iloc[:0]
    seen_sets = seen.groupby("user_id")["item_id"].agg(set).to_dict()
    rel_sets = split.part(part).groupby("user_id")["item_id"].agg(set).to_dict()
    lists = {}
    for u in rel_sets:
        s = table[u].numpy().astype(np.float64).copy()
        s[list(seen_sets.get(u, ()))] = -np.inf
        order = np.lexsort((np.arange(len(s)), -s))
        lists[u] = [int(i) for i in order if np.isfinite(s[i])][: max(ks)]
    qrels = ranx.Qrels({f"u{u}": {f"i{i}": 1 for i in rel} for u, rel in rel_sets.items()})
    run = ranx.Run(
        {f"u{u}": {f"i{i}": float(len(lst) - r) for r, i in enumerate(lst)} for u, lst in lists.items() if lst}
    )
    names = {
        "recall": "recall",
        "ndcg": "ndcg",
        "hitrate": "hit_rate",
        "precision": "precision",
        "mrr": "mrr",
        "map": "map",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranx.evaluate(
            qrels, run, [f"{names[m]}@{k}" for k in ks for m in names], make_comparable=True, save_results_in_run=True
        )
    users = sorted(rel_sets)
    out = {f"{m}@{k}": np.array([run.scores[f"{names[m]}@{k}"][f"u{u}"] for u in users]) for k in ks for m in names}
    out["user_id"] = np.array(users)
    out["lists"] = lists
    return out


@pytest.mark.parametrize("part", ["valid", "test"])
@pytest.mark.parametrize("levels", [None, 3])
def test_matches_brute_force_reference(part, levels):
    split = make_split(1)
    model = table_model(split, 2, levels=levels)
    ks = (1, 5, 10, 30)  # 30 > catalogue of 25
    res = evaluate(model, split, part=part, ks=ks, batch_size=7, progress=False, keep_topk=True)
    ref = reference(split, model.table, part, ks)
    assert res.per_user["user_id"].tolist() == ref["user_id"].tolist()
    for col in res.columns:
        np.testing.assert_allclose(res.per_user[col].to_numpy(), ref[col], rtol=0, atol=1e-9, err_msg=col)
    for row, u in enumerate(res.per_user["user_id"]):
        lst = ref["lists"][u]
        assert res.topk[row, : len(lst)].tolist() == lst
        assert (res.topk[row, len(lst) :] == PAD_ITEM).all()


def test_masking_rule_valid_vs_test():
    split = make_split(2)
    assert seen_parts_for("valid") == ("train",)
    assert seen_parts_for("test") == ("train", "valid")
    assert seen_parts_for("train") == ()
    users = torch.arange(split.n_users)
    for part in ("valid", "test"):
        scores = torch.zeros(split.n_users, split.n_items)
        mask_seen(scores, users, split, part)
        masked = {(int(u), int(i)) for u, i in torch.nonzero(scores == float("-inf")).tolist()}
        expected = set()
        for p in seen_parts_for(part):
            expected |= set(zip(split.part(p)["user_id"], split.part(p)["item_id"]))
        assert masked == expected
    # the user order of the batch is respected
    sub = torch.tensor([5, 0, 3])
    scores = torch.zeros(3, split.n_items)
    mask_seen(scores, sub, split, "valid")
    for row, u in enumerate(sub.tolist()):
        train_items = set(split.train.loc[split.train["user_id"] == u, "item_id"])
        assert set(torch.nonzero(scores[row] == float("-inf")).flatten().tolist()) == train_items


def test_tie_breaking_is_deterministic_and_exact():
    scores = torch.tensor([[1.0, 2.0, 2.0, 2.0, 0.0, 2.0], [0.0] * 6, [3.0, float("-inf"), 3.0, 1.0, 3.0, 3.0]])
    items, vals = topk_items(scores, 3)
    assert items.tolist() == [[1, 2, 3], [0, 1, 2], [0, 2, 4]]
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = torch.from_numpy(rng.integers(0, 3, size=(17, 50)).astype(np.float32))
        got, _ = topk_items(s, 12)
        ref = np.stack([np.lexsort((np.arange(50), -row))[:12] for row in s.numpy()])
        assert np.array_equal(got.numpy(), ref)


def test_tie_at_the_cut_still_orders_the_list_by_score():
    """Regression: a tie between the K-th and (K+1)-th score rebuilt the top-K set in item-id
    order and, with no equal neighbours left in it, never re-sorted it by score."""
    assert topk_items(torch.tensor([[5.0, 1.0, 7.0, 1.0]]), 3)[0].tolist() == [[2, 0, 1]]
    assert topk_items(torch.tensor([[0.5, 0.1, 0.9, 0.1, 0.3]]), 4)[0].tolist() == [[2, 0, 4, 1]]
    rng = np.random.default_rng(7)
    for k in (1, 2, 5, 9):
        s = rng.permutation(40).astype(np.float32).reshape(1, 40).repeat(8, axis=0)
        for row in s:  # distinct scores except one tie exactly at the cut
            rng.shuffle(row)
            order = np.argsort(-row, kind="stable")
            row[order[k]] = row[order[k - 1]]
        got, _ = topk_items(torch.from_numpy(s), k)
        ref = np.stack([np.lexsort((np.arange(40), -r))[:k] for r in s])
        assert np.array_equal(got.numpy(), ref)


def test_ranking_with_infinities_matches_reference():
    rng = np.random.default_rng(1)
    vals = np.array([-np.inf, 0.0, 1.0, 2.0, np.inf], dtype=np.float32)
    for k in (1, 5, 12, 40, 60):
        s = vals[rng.integers(0, 5, size=(23, 40))]
        got, got_vals = topk_items(torch.from_numpy(s), k)  # rows hold +inf and -inf: no NaN error
        for row, r in enumerate(s):
            ref = [int(i) for i in np.lexsort((np.arange(40), -r)) if r[i] > -np.inf][:k]
            assert got[row, : len(ref)].tolist() == ref
            assert (got[row, len(ref) :] == PAD_ITEM).all()
    ints, _ = topk_items(torch.tensor([[3, 1, 3, 2]]), 2)  # integer scores are ranked too
    assert ints.tolist() == [[0, 2]]


def test_inf_items_never_recommended_and_k_beyond_catalogue():
    ninf = float("-inf")
    scores = torch.tensor([[0.5, ninf, 0.1, ninf], [ninf] * 4, [1.0, 1.0, 1.0, 1.0]])
    items, vals = topk_items(scores, 6)
    assert items.tolist() == [[0, 2, -1, -1, -1, -1], [-1] * 6, [0, 1, 2, 3, -1, -1]]
    assert torch.isinf(vals[0, 2:]).all()


@pytest.mark.parametrize("where", ["first", "middle", "last", "seen"])
def test_nan_scores_raise_naming_model_and_batch(where):
    split = make_split(3, n_items=50)
    table = torch.rand(split.n_users, split.n_items)
    seen_item = int(split.train.loc[split.train["user_id"] == 3, "item_id"].iloc[0])
    pos = {"first": (0, 0), "middle": (3, 17), "last": (4, split.n_items - 1), "seen": (3, seen_item)}[where]
    table[pos] = float("nan")  # "seen": a NaN on an item the mask would hide is still an error

    class NanModel:
        def score(self, user_ids):
            return table[user_ids]

    with pytest.raises(ValueError, match=r"NaN scores \(model NanModel, batch \d"):
        evaluate(NanModel(), split, part="valid", batch_size=4, progress=False)


@pytest.mark.parametrize("row", ["tied", "all_nan", "nan_and_inf"])
def test_nan_found_among_the_candidates_whatever_the_row_holds(row):
    # the NaN check looks at the top-K candidates only (topk orders NaN above every number):
    # rows whose K-th score is tied, rows of NaN only, NaN next to +inf must still raise
    scores = torch.ones(3, 40)
    if row == "tied":
        scores[1, 33] = float("nan")  # every other score equal: the cut at K is ambiguous
    elif row == "all_nan":
        scores[1] = float("nan")
    else:
        scores[1, :5] = float("inf")
        scores[1, 7] = float("nan")
    with pytest.raises(ValueError, match=r"NaN scores \(ctx\): rows \[1\]"):
        topk_items(scores, 10, context="ctx")


def test_hits_np_matches_the_torch_kernel():
    rng = np.random.default_rng(0)
    split = make_split(6, n_items=60)
    rel = part_csr(split, ("test",))
    users = torch.from_numpy(np.sort(rng.choice(split.n_users, 7, replace=False)))
    items = torch.from_numpy(rng.integers(-1, split.n_items, (7, 12)))
    expected = hits_from_csr(items, users, rel, split.n_items).numpy()
    assert np.array_equal(hits_np(items.numpy(), users.numpy(), rel, split.n_items), expected)
    assert expected.any()


def test_excluded_users_are_counted():
    split = make_split(4, no_test_users=5)
    res = evaluate(table_model(split), split, part="test", progress=False)
    assert res.n_excluded == 5
    assert res.n_users == split.n_users - 5 == len(res.per_user)
    assert set(res.per_user["user_id"]) == set(split.test["user_id"])
    # an explicit user subset: excluded counted within it
    res = evaluate(table_model(split), split, part="test", users=[0, 1, split.n_users - 1], progress=False)
    assert (res.n_users, res.n_excluded) == (2, 1)


def test_batch_size_invariance_and_one_call_per_batch():
    split = make_split(5)
    results = []
    for bs in (1, 7, 1000):
        model = table_model(split, 1, levels=4)
        res = evaluate(model, split, ks=(3, 10), batch_size=bs, progress=False, keep_topk=True)
        assert len(model.calls) == -(-res.n_users // bs) and max(model.calls) <= bs
        results.append(res)
    for other in results[1:]:
        pd.testing.assert_frame_equal(results[0].per_user, other.per_user)
        assert np.array_equal(results[0].topk, other.topk)
        assert results[0].coverage == other.coverage


def test_coverage_and_means():
    split = make_split(6)
    res = evaluate(table_model(split), split, ks=(1, 5), progress=False, keep_topk=True)
    for k in (1, 5):
        assert res.coverage[k] == pytest.approx(len(np.unique(res.topk[:, :k][res.topk[:, :k] >= 0])) / split.n_items)
    assert res.means()["recall@5"] == pytest.approx(res.per_user["recall@5"].mean())


def test_recommender_object_and_bad_shape():
    split = make_split(7)

    class Bad:
        def score(self, user_ids):
            return torch.zeros(len(user_ids), split.n_items - 1)

    with pytest.raises(ValueError, match=r"Bad.score returned shape"):
        evaluate(Bad(), split, progress=False)
    with pytest.raises(ValueError, match="unknown metrics"):
        evaluate(table_model(split), split, metrics=("auc",), progress=False)


def test_model_tensor_not_modified():
    split = make_split(8)
    table = torch.rand(split.n_users, split.n_items)
    before = table.clone()
    evaluate(lambda u: table.narrow(0, 0, len(u)), split, batch_size=1000, progress=False)  # a view of model state
    assert torch.equal(table, before)


@pytest.mark.gpu
def test_cuda_matches_cpu():
    split = make_split(9, n_users=300, n_items=200)
    model = table_model(split, 3, levels=5)
    cpu = evaluate(model, split, ks=(5, 20), batch_size=64, progress=False, keep_topk=True)
    gpu = evaluate(model, split, ks=(5, 20), batch_size=64, device="cuda", progress=False, keep_topk=True)
    pd.testing.assert_frame_equal(cpu.per_user, gpu.per_user)
    assert np.array_equal(cpu.topk, gpu.topk)


@pytest.mark.slow
def test_perf_script_small_runs_and_agrees_with_peers(capsys):
    from benchmark.perf.evaluation import main as perf_main

    out = perf_main(["--small", "--users", "300", "--items", "200"])
    printed = capsys.readouterr().out
    assert "ratio RecBole/ours" in printed and "ratio ranx/ours" in printed and "peak RSS" in printed
    assert out["n_users"] > 0
    # same top-K, same numbers: RecBole (MAP aside, see the script) and ranx agree with us
    assert out["diff_recbole"] < 1e-9 and out["diff_ranx"] < 1e-9 and out["diff_self"] < 1e-12


def test_perf_scaling_problem_evaluates_every_user_asked_for():
    """The scaling lines are read as "N users": every generated user has a test item."""
    from benchmark.perf.evaluation import make_problem_ids, run_floor, run_ours

    split, U, V = make_problem_ids(500, 300, 8, seed=3, per_user=4)
    assert split.test["user_id"].nunique() == 500
    t_ours, res = run_ours(split, U, V, (10, 20), 128)
    assert res.n_users == 500 and res.n_excluded == 0
    assert t_ours > 0 and run_floor(split, U, V, 20, 128) > 0
