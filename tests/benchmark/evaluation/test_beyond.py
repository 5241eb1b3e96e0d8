"""Beyond-accuracy metrics against plain per-user references written here (loops, sets) and
Elliot's definitions (its short head / long tail, APLT and Gini), and through ``evaluate``."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.configuration import ConfigError, from_dict
from benchmark.evaluation import evaluate
from benchmark.evaluation.beyond import aplt, gini, ild, long_tail, novelty, tail_coverage
from benchmark.evaluation.metrics import EVALUATION_METRIC_NAMES, parse_metric
from benchmark.features import ItemFeatures
from benchmark.protocols import make_split
from benchmark.runner.config import EvaluationConfig

RNG = np.random.default_rng(7)
N_ITEMS = 40
POP = RNG.integers(1, 60, N_ITEMS)  # every item has training users (Elliot's tail needs that)
TOPK = np.stack([RNG.choice(N_ITEMS, 10, replace=False) for _ in range(25)])
TOPK[3, 7:] = -1  # a short list
FEAT = RNG.normal(size=(N_ITEMS, 6))
MASK = np.ones(N_ITEMS, bool)
MASK[TOPK[0, :9]] = False  # user 0 keeps one featured item: no pair


def elliot_long_tail(pop: np.ndarray, ratio: float = 0.8) -> set[int]:
    """Elliot's Popularity.get_short_head/get_long_tail in words: items by popularity descending,
    added to the head until the head's interactions reach ratio × all; the tail is the rest."""
    order = sorted(range(len(pop)), key=lambda i: (-pop[i], i))
    limit, head = ratio * pop.sum(), []
    for i in order:
        head.append(i)
        limit -= pop[i]
        if limit <= 0:
            break
    return {i for i in order if i not in head}


def lists(k: int) -> list[list[int]]:
    return [[int(i) for i in row[:k] if i >= 0] for row in TOPK]


@pytest.mark.parametrize("k", [5, 10])
def test_per_user_metrics_match_loop_references(k):
    tail = long_tail(POP)
    assert set(np.flatnonzero(tail)) == elliot_long_tail(POP)
    ref_aplt = [len(set(lst) & elliot_long_tail(POP)) / len(lst) for lst in lists(k)]  # Elliot's APLT
    assert np.allclose(aplt(TOPK, tail, k), ref_aplt)
    n_users = 100
    ref_nov = [np.mean([-math.log2((POP[i] + 1) / (n_users + 1)) for i in lst]) for lst in lists(k)]
    assert np.allclose(novelty(TOPK, POP, n_users, k), ref_nov)
    got, undefined = ild(TOPK, FEAT, MASK, k)
    ref_ild = []
    for lst in lists(k):
        featured = [i for i in lst if MASK[i]]
        dists = [
            1 - FEAT[a] @ FEAT[b] / (np.linalg.norm(FEAT[a]) * np.linalg.norm(FEAT[b]))
            for a, b in itertools.permutations(featured, 2)
        ]
        ref_ild.append(np.mean(dists) if dists else 0.0)
    assert np.allclose(got, ref_ild) and undefined == 1 and got[0] == 0.0


@pytest.mark.parametrize("k", [3, 10])
def test_run_metrics_match_references(k):
    counts = np.bincount(np.concatenate(lists(k)), minlength=N_ITEMS).astype(float)
    n = N_ITEMS
    mad = np.abs(counts[:, None] - counts[None, :]).sum() / (2 * n * n * counts.mean())  # textbook Gini
    assert gini(TOPK, N_ITEMS, k) == pytest.approx(mad * n / (n - 1))
    # Elliot's Gini (diversity): the recommended items' sorted counts offset by the unrecommended ones, 1 − G
    rec = sorted(c for c in counts if c > 0)
    elliot = 1 - sum((2 * (j + (n - len(rec)) + 1) - n - 1) * (c / counts.sum()) for j, c in enumerate(rec)) / (n - 1)
    assert gini(TOPK, N_ITEMS, k) == pytest.approx(1 - elliot)
    tail = elliot_long_tail(POP)
    ref_ltc = len(set(itertools.chain(*lists(k))) & tail) / len(tail)
    assert tail_coverage(TOPK, long_tail(POP), k) == pytest.approx(ref_ltc)
    one_item = np.zeros((4, k), int)
    one_item[:, 1:] = -1
    assert gini(one_item, N_ITEMS, k) == pytest.approx(1.0)


def test_tail_includes_items_without_training_users():
    pop = np.array([50, 30, 10, 5, 0, 0])
    assert long_tail(pop).tolist() == [False, False, True, True, True, True]  # head: 50 + 30 ≥ 0.8 · 95


def test_evaluate_adds_beyond_columns_and_run_values():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {"user": rng.integers(0, 40, 900).astype(str), "item": rng.integers(0, 60, 900).astype(str), "rating": 1.0}
    )
    df = df.drop_duplicates(["user", "item"]).assign(timestamp=lambda d: np.arange(len(d)))
    split = make_split(df, None, "mmrec", seed=0)
    scores = torch.tensor(rng.normal(size=(split.n_users, split.n_items)), dtype=torch.float32)
    feat = ItemFeatures(
        "f",
        torch.tensor(rng.normal(size=(split.n_items, 4)), dtype=torch.float32),
        torch.ones(split.n_items, dtype=torch.bool),
        {},
    )
    res = evaluate(
        lambda u: scores[u],
        split,
        ks=(5, 10),
        metrics=("recall", "aplt", "novelty", "ild", "gini", "tail_coverage"),
        progress=False,
        keep_topk=True,
        diversity_feature=feat,
    )
    assert res.columns == ["recall@5", "recall@10", "aplt@5", "novelty@5", "ild@5", "aplt@10", "novelty@10", "ild@10"]
    pairs = split.train[["user_id", "item_id"]].drop_duplicates()
    pop = np.bincount(pairs["item_id"], minlength=split.n_items)
    assert np.allclose(res.per_user["aplt@10"], aplt(res.topk, long_tail(pop), 10))
    assert np.allclose(res.per_user["novelty@5"], novelty(res.topk, pop, pairs["user_id"].nunique(), 5))
    assert res.run_metrics["gini@10"] == pytest.approx(gini(res.topk, split.n_items, 10))
    assert set(res.run_metrics) >= {"gini@5", "tail_coverage@10", "ild_users_without_pair@10"}
    with pytest.raises(ValueError, match="ild.*diversity_feature"):
        evaluate(lambda u: scores[u], split, ks=(5,), metrics=("ild",), progress=False)


def test_names_live_in_one_place_and_configs_check_them():
    assert {"aplt", "novelty", "ild", "gini", "tail_coverage"} <= set(EVALUATION_METRIC_NAMES)
    assert parse_metric("APLT@10").label == "aplt@10"
    with pytest.raises(ConfigError, match="diversity_feature"):
        from_dict(EvaluationConfig, {"metrics": ["recall", "ild"]}, "evaluation")
    with pytest.raises(ConfigError, match="evaluation.metrics"):
        from_dict(EvaluationConfig, {"metrics": ["recall", "diversity"]}, "evaluation")
    ev = from_dict(EvaluationConfig, {"metrics": ["recall", "gini", "ild"], "diversity_feature": "f"}, "evaluation")
    assert ev.diversity_feature == "f"


def test_evaluate_command_computes_them_from_trec_files(tmp_path, capsys):
    from fixtures.trec_files import make_trec_files

    from benchmark.cli import main

    relevant, lists, train_pop, catalogue = make_trec_files(tmp_path)
    frng = np.random.default_rng(5)
    feats = {i: frng.normal(size=3) for i in sorted(catalogue)}
    np.savez(tmp_path / "f.npz", items=np.array(list(feats)), values=np.stack(list(feats.values())))
    base = ["evaluate", "--qrels", str(tmp_path / "qrels.txt"), "--run", str(tmp_path / "A.run")]
    metrics = "recall@5,aplt@5,novelty@5,ild@5,gini@5,tail_coverage@5"
    assert main([*base, "--metrics", metrics, "--format", "json"]) == 2  # no --train: one-line refusal
    capsys.readouterr()
    args = [
        *base,
        "--metrics",
        metrics,
        "--train",
        str(tmp_path / "train.txt"),
        "--item-features",
        str(tmp_path / "f.npz"),
    ]
    assert main([*args, "--format", "json", "--per-user", str(tmp_path / "pu.tsv")]) == 0
    out = json.loads(capsys.readouterr().out)
    index = pd.Index(sorted(catalogue))
    pop = np.array([train_pop.get(i, 0) for i in index])
    users = sorted(relevant)
    topk = np.array([[index.get_loc(i) for i in lists[u][:5]] for u in users])
    n_train_users = 30
    assert out["runs"]["A"]["aplt@5"] == pytest.approx(aplt(topk, long_tail(pop), 5).mean())
    assert out["runs"]["A"]["novelty@5"] == pytest.approx(novelty(topk, pop, n_train_users, 5).mean())
    values = np.stack([feats[i] for i in index])
    assert out["runs"]["A"]["ild@5"] == pytest.approx(ild(topk, values, None, 5)[0].mean())
    assert out["run_metrics"]["A"]["gini@5"] == pytest.approx(gini(topk, len(index), 5))
    assert "gini@5" not in out["runs"]["A"] and "tail_coverage@5" in out["run_metrics"]["A"]
    assert "aplt@5" in (tmp_path / "pu.tsv").read_text().splitlines()[0]
