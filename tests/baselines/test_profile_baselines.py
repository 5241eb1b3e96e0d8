"""The paper's training-free baselines rank a small synthetic catalogue as cosine profiles say."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import baselines.profile_baselines  # noqa: F401  (registers the models)
from benchmark.features import ItemFeatures
from benchmark.registry import create_model
from benchmark.split import Split, empty_catalogue

# Six items. Image space groups {0,1,2} vs {3,4,5}; text space groups {0,3,4} vs {1,2,5}.
IMAGE = np.array([[1, 0], [0.9, 0.1], [0.8, 0.3], [0, 1], [0.1, 0.9], [0.2, 0.7]], dtype=np.float32)
TEXT = np.array([[0, 3], [2, 0.2], [2, 0.1], [0.1, 2], [0.3, 2], [2, 0.4]], dtype=np.float32)


@pytest.fixture()
def split() -> Split:
    items = [f"i{k}" for k in range(6)]
    train = pd.DataFrame(
        {
            "user": ["u0", "u1", "u1", "u2", "u2"],
            "item": ["i0", "i3", "i1", "i2", "i4"],
            "rating": 5.0,
            "timestamp": [1, 1, 2, 1, 2],
        }
    )
    hold = pd.DataFrame({"user": ["u0", "u1"], "item": ["i5", "i5"], "rating": 5.0, "timestamp": [3, 3]})
    return Split.from_parts({"train": train, "valid": hold, "test": hold}, empty_catalogue(items), "test", {})


def features(image_mask: list[bool] | None = None) -> dict[str, ItemFeatures]:
    return {
        "clip_image": ItemFeatures(
            "clip_image", torch.from_numpy(IMAGE), torch.tensor(image_mask) if image_mask else None
        ),
        "clip_text": ItemFeatures("clip_text", torch.from_numpy(TEXT)),
    }


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def expected(item_vecs: np.ndarray, history: list[int], normalise_history: bool = True) -> np.ndarray:
    """Cosine between the mean of the history's (unit) vectors and every item (independent of the code)."""
    hist = unit(item_vecs[history]) if normalise_history else item_vecs[history]
    profile = hist.mean(axis=0)
    return unit(item_vecs) @ unit(profile)


def test_vision_and_text_only_rank_by_their_own_space(split: Split) -> None:
    feats = features()
    vision = create_model("vision-only").fit(split, feats)
    text = create_model("text-only").fit(split, feats)
    s_v = vision.score(torch.tensor([0, 1])).numpy()
    s_t = text.score(torch.tensor([0, 1])).numpy()
    np.testing.assert_allclose(s_v[0], expected(IMAGE, [0]), rtol=1e-5)
    np.testing.assert_allclose(s_t[0], expected(TEXT, [0]), rtol=1e-5)
    np.testing.assert_allclose(s_v[1], expected(IMAGE, [3, 1]), rtol=1e-5)
    # user 0 bought item 0: image neighbours are 1, 2; text neighbours are 3, 4
    assert list(np.argsort(-s_v[0])[:3]) == [0, 1, 2]
    assert list(np.argsort(-s_t[0])[:3]) == [0, 3, 4]


def test_fusions_follow_the_paper(split: Split) -> None:
    feats = features()
    naive = create_model("naive-fusion").fit(split, feats).score(torch.tensor([0, 1])).numpy()
    concat = create_model("concat-fusion").fit(split, feats).score(torch.tensor([0, 1])).numpy()
    # the paper's naive fusion: 0.5 * unit(image) + 0.5 * unit(text), averaged over the history as is
    avg_vecs = (unit(IMAGE) + unit(TEXT)) / 2
    cat_vecs = np.concatenate([unit(IMAGE), unit(TEXT)], axis=1)
    for u, hist in ((0, [0]), (1, [3, 1])):
        np.testing.assert_allclose(naive[u], expected(avg_vecs, hist, normalise_history=False), rtol=1e-5)
        np.testing.assert_allclose(concat[u], expected(cat_vecs, hist), rtol=1e-5)
    # item 5 is far from item 0 in both spaces: concatenation ranks it last, but averaging the two
    # 2-d spaces folds opposite directions together (item 0 -> [.5, .5], item 5 -> [.63, .58]),
    # so the naive fusion ranks it right after item 0 itself
    assert np.argsort(-concat[0])[-1] == 5
    assert list(np.argsort(-naive[0])[:2]) == [0, 5]


def test_missing_image_scores_minus_inf_only_where_image_is_used(split: Split) -> None:
    feats = features(image_mask=[True, True, False, True, True, True])
    v = create_model("vision-only").fit(split, feats).score(torch.tensor([0]))[0]
    t = create_model("text-only").fit(split, feats).score(torch.tensor([0]))[0]
    c = create_model("concat-fusion").fit(split, feats).score(torch.tensor([0]))[0]
    assert v[2] == float("-inf") and c[2] == float("-inf") and torch.isfinite(t).all()


def test_feature_names_are_parameters(split: Split) -> None:
    feats = {"pixels": ItemFeatures("pixels", torch.from_numpy(IMAGE))}
    model = create_model("vision-only", feature="pixels").fit(split, feats)
    np.testing.assert_allclose(model.score(torch.tensor([0]))[0].numpy(), expected(IMAGE, [0]), rtol=1e-5)
    with pytest.raises(KeyError, match="clip_image"):
        create_model("naive-fusion").fit(split, feats)
    with pytest.raises(TypeError, match="allowed"):
        create_model("concat-fusion", fusion="average")


@pytest.mark.parametrize("name", ["naive-fusion", "concat-fusion", "text-only"])
def test_raw_vectors_as_the_papers_script(split, name):
    """normalize_items=False: the item vector is 0.5 * text + 0.5 * image, [image ; text] or the
    text itself, raw, the profile their mean, the score the cosine (evaluate_all_final.py)."""
    model = create_model(name, normalize_items=False).fit(split, features())
    item = {"naive-fusion": 0.5 * TEXT + 0.5 * IMAGE, "concat-fusion": np.hstack([IMAGE, TEXT]), "text-only": TEXT}[
        name
    ].astype(np.float64)
    history = {0: [0], 1: [3, 1], 2: [2, 4]}
    for u, items in history.items():
        prof = item[items].mean(axis=0)
        cos = item @ prof / (np.linalg.norm(item, axis=1) * np.linalg.norm(prof))
        np.testing.assert_allclose(model.score(torch.tensor([u]))[0].numpy(), cos, rtol=1e-5)
    normalised = create_model(name).fit(split, features())
    assert not torch.allclose(normalised.score(torch.tensor([1])), model.score(torch.tensor([1])))
