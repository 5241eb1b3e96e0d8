"""The ``captioned-only`` mode is the paper's ``evaluate_recommender``, and the full-catalogue
mode is not (the audit's case: a reviewer's numbers under the paper's protocol).

The reference below is written from the description of ``scripts/evaluate_all_final.py``
(tyvalencia/enhancing-mm-rec-sys @ 66d74f0): per test user, history = train + valid items among
the model's items (skip if none), profile = their mean embedding, cosine to every one of the
model's items, no masking, test items among the model's items (skip if none), Recall@K =
hits / len(user_test), NDCG@K with IDCG over min(K, len(user_test)). The item vectors have
unequal norms and are averaged raw (``normalize_items=False``), as the script averages them, so
no two items tie (the script's ``np.argsort`` orders ties arbitrarily).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.evaluation import evaluate
from benchmark.evaluation.captioned import (
    evaluate_captioned,
    part_users,
    sample_size,
    sample_users,
    sampling_spread,
)
from benchmark.features import ItemFeatures
from benchmark.profiles import ProfileMatcher
from benchmark.protocols import make_split
from benchmark.runner.stages.units import users_with_feature

K = 10


def paper_reference(split, emb: np.ndarray, items: np.ndarray, users: np.ndarray) -> pd.DataFrame:
    """``evaluate_recommender(item_embeddings=emb[items], valid_items=items, ...)`` re-implemented."""
    train, valid, test = split.train, split.valid, split.test
    idx = {int(i): n for n, i in enumerate(items)}
    mat = emb[items]
    norm = mat / np.linalg.norm(mat, axis=1, keepdims=True)
    rows = []
    for u in users:
        hist = np.concatenate(
            [train.loc[train.user_id == u, "item_id"].to_numpy(), valid.loc[valid.user_id == u, "item_id"].to_numpy()]
        )
        hist = [i for i in hist if int(i) in idx]
        if not hist:
            continue
        prof = mat[[idx[int(i)] for i in hist]].mean(axis=0)
        scores = norm @ (prof / np.linalg.norm(prof))
        ranked = [int(items[j]) for j in np.argsort(-scores, kind="stable")]
        user_test = [int(i) for i in test.loc[test.user_id == u, "item_id"] if int(i) in idx]
        if not user_test:
            continue
        top = ranked[:K]
        recall = len(set(top) & set(user_test)) / len(user_test)
        dcg = sum(1 / np.log2(r + 2) for r in range(K) if ranked[r] in user_test)
        idcg = sum(1 / np.log2(r + 2) for r in range(min(K, len(user_test))))
        rows.append({"user_id": int(u), f"recall@{K}": recall, f"ndcg@{K}": dcg / idcg})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    n_users, n_items, n = 300, 120, 6000
    u = rng.integers(0, n_users, n)
    i = (rng.zipf(1.3, n) - 1) % n_items
    rows = pd.DataFrame(
        {"user": [f"u{x:04d}" for x in u], "item": [f"i{x:04d}" for x in i], "rating": 1.0, "timestamp": np.arange(n)}
    )
    # repeats kept and split row by row, as the paper's data: relevant rows count with repeats
    split = make_split(rows, protocol="paper", seed=3, repeats="per-row")
    # raw vectors of unequal norms, averaged as they are (normalize_items=False), as the script does
    emb = rng.normal(size=(split.n_items, 16)) * rng.uniform(0.5, 2.0, size=(split.n_items, 1))
    captioned = np.zeros(split.n_items, dtype=bool)
    captioned[rng.choice(split.n_items, split.n_items // 4, replace=False)] = True
    mask = torch.from_numpy(captioned)
    feats = {"llava": ItemFeatures("llava", torch.from_numpy(emb).float() * mask[:, None], mask, {})}
    return split, emb, captioned, feats


def test_captioned_only_is_the_papers_evaluate_recommender(data):
    split, emb, captioned, feats = data
    model = ProfileMatcher(feature="llava", normalize_items=False).fit(split, feats)
    model.use_history(split, ("train", "valid"))
    ours = evaluate_captioned(model, split, "test", ks=(K,), metrics=("recall", "ndcg"))
    ref = paper_reference(split, emb, np.flatnonzero(captioned), part_users(split, "test"))
    assert len(ours.per_user) == len(ref) > 50
    pd.testing.assert_frame_equal(ours.per_user.reset_index(drop=True), ref, check_dtype=False, atol=1e-9)
    skipped = ours.info["skipped"]
    assert skipped["no_candidate_in_history"] > 0 and skipped["no_candidate_relevant"] > 0
    assert ours.n_users + sum(skipped.values()) == len(part_users(split, "test"))
    # repeats: some user has a captioned test item twice, and its denominator counts both rows
    test = split.test[captioned[split.test["item_id"].to_numpy()]]
    assert (ours.n_relevant > test.groupby("user_id")["item_id"].nunique().reindex(ours.per_user["user_id"])).any()


def test_the_audits_case_full_catalogue_and_todays_paper_mode_measure_something_else(data):
    """Same model, same data: the full-catalogue numbers (masking seen items, every test item
    relevant, train-only profiles) — with or without today's users-with-feature restriction —
    are not the paper's quantity; only captioned-only reproduces the script."""
    split, emb, captioned, feats = data
    model = ProfileMatcher(feature="llava", normalize_items=False).fit(split, feats)
    users = users_with_feature(split, feats["llava"], "test")
    today = evaluate(model, split, "test", ks=(K,), metrics=("recall",), users=users, progress=False).means()
    model.use_history(split, ("train", "valid"))
    paper = evaluate_captioned(model, split, "test", ks=(K,), metrics=("recall",)).means()
    ref = paper_reference(split, emb, np.flatnonzero(captioned), part_users(split, "test"))[f"recall@{K}"].mean()
    assert paper[f"recall@{K}"] == pytest.approx(ref, abs=1e-12)
    assert abs(today[f"recall@{K}"] - ref) > 0.05  # guaranteed misses (uncaptioned relevant items) pull it down


def test_a_common_candidate_set_and_models_without_a_feature(data):
    split, emb, captioned, feats = data
    scores = torch.from_numpy(np.random.default_rng(0).normal(size=(split.n_users, split.n_items))).float()
    fn = lambda uid: scores[uid]  # noqa: E731 - a model that scores every item
    everything = evaluate_captioned(fn, split, "test", ks=(K,), metrics=("recall",))
    assert everything.info["skipped"] == {"no_candidate_in_history": 0, "no_candidate_relevant": 0}
    common = evaluate_captioned(fn, split, "test", ks=(K,), metrics=("recall",), candidates=captioned)
    assert (
        common.n_users
        == evaluate_captioned(
            ProfileMatcher(feature="llava", normalize_items=False).fit(split, feats),
            split,
            "test",
            ks=(K,),
            metrics=("recall",),
        ).n_users
    )


def test_user_sample_is_the_scripts_choice_seeded_and_its_spread_is_reported(data):
    split, *_ = data
    pop = part_users(split, "test")
    assert sample_size(len(pop), 0.01) == max(1, len(pop) // 100)
    assert sample_size(23318, 0.01) == 233
    chosen = sample_users(pop, 0.1, seed=5)
    expected = np.sort(np.random.default_rng(5).choice(pop, size=len(pop) // 10, replace=False))
    np.testing.assert_array_equal(chosen, expected)
    np.testing.assert_array_equal(sample_users(pop, 1.0, seed=5), pop)
    per_user = pd.DataFrame({"user_id": pop[::2], "recall@10": np.linspace(0, 1, len(pop[::2]))})
    spread = sampling_spread(per_user, pop, 0.1, seed=5, repeats=200)
    m = spread["metrics"]["recall@10"]
    assert m["all_users"] == pytest.approx(per_user["recall@10"].mean())
    in_sample = per_user[per_user["user_id"].isin(chosen)]["recall@10"].mean()
    assert m["recorded_sample"] == pytest.approx(in_sample)
    assert m["p2.5"] < m["all_users"] < m["p97.5"] and m["sd"] > 0
    assert spread["sample_size"] == len(pop) // 10 and spread["repeats"] == 200
