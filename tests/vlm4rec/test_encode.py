"""Text encoders (real MiniLM, tiny random CLIP text tower), text choices, the VLM4Rec recommender."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.features import ItemFeatures
from benchmark.registry import create_model
from benchmark.split import Split
from vlm4rec.encoders import ClipTextEncoder, SentenceTransformerEncoder, encode_items, item_texts
from vlm4rec.texts import compose_text


@pytest.fixture(scope="module")
def minilm():
    return SentenceTransformerEncoder()


def _cos(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def test_minilm_offline_real_embeddings(minilm):
    assert minilm.identity()["dim"] == 384
    assert minilm.loaded_from.endswith("model")  # HF_HUB_OFFLINE in tests: the package copy is used
    v = minilm.encode(
        [
            "A red cotton t-shirt with a round neck.",
            "A red cotton T-shirt with a crew neck.",
            "Stainless steel chef's knife with a wooden handle.",
        ],
        progress=False,
    )
    assert v.shape == (3, 384)
    assert _cos(v[0], v[1]) > 0.8 > _cos(v[0], v[2]) + 0.3


def test_text_choices():
    assert compose_text("Mug", "A blue mug.", ["Home", "Kitchen"], "title+description") == "Mug. A blue mug."
    assert compose_text("Mug", "A blue mug.", None, "description") == "A blue mug."
    assert compose_text("Mug", "A blue mug.", None, "title") == "Mug"
    assert compose_text("Mug", "A blue mug.", ["Home", "Kitchen"], "metadata") == "Mug. Home > Kitchen. A blue mug."
    assert compose_text("Mug", None, None, "title+description", action="fallback_title") == "Mug"
    assert compose_text("Mug", None, None, "description", action="drop") is None
    with pytest.raises(ValueError, match="allowed"):
        compose_text("Mug", "x", None, "captions")


def _semantic_split(n_per_group: int = 10, n_users: int = 30, seed: int = 0) -> tuple[Split, pd.DataFrame]:
    """Two item groups with distinct captions; each user only ever interacts within one group."""
    rng = np.random.default_rng(seed)
    kinds = [
        ("shirt", "a soft cotton t-shirt in {c} with short sleeves"),
        ("knife", "a sharp stainless steel kitchen knife with a {c} handle"),
    ]
    colours = ["red", "blue", "green", "black", "white", "grey", "navy", "pink", "brown", "beige", "olive", "teal"]
    cat, caps = [], []
    for g, (_kind, tmpl) in enumerate(kinds):
        for j in range(n_per_group):
            item = f"G{g}-{j:02d}"
            cat.append(
                {
                    "item": item,
                    "title": f"Item {item}",
                    "description": "",
                    "brand": "",
                    "categories": [],
                    "image_url": None,
                    "image_urls": [],
                }
            )
            caps.append({"item": item, "description": tmpl.format(c=colours[j % len(colours)])})
    rows = []
    for u in range(n_users):
        g = u % 2
        items = rng.choice(n_per_group, size=5, replace=False)
        for t, j in enumerate(items):
            rows.append({"user": f"U{u:02d}", "item": f"G{g}-{j:02d}", "rating": 5.0, "timestamp": t})
    df = pd.DataFrame(rows)
    parts = {"train": df[df.timestamp < 3], "valid": df[df.timestamp == 3], "test": df[df.timestamp == 4]}
    return Split.from_parts(parts, pd.DataFrame(cat), "semantic-test", {"seed": seed}), pd.DataFrame(caps)


def _hit_rate(scores: torch.Tensor, split: Split, k: int = 5) -> float:
    seen = split.train.groupby("user_id")["item_id"].apply(set).to_dict()
    seen_v = split.valid.groupby("user_id")["item_id"].apply(set).to_dict()
    target = split.test.groupby("user_id")["item_id"].apply(set).to_dict()
    hits = []
    for u, tgt in target.items():
        s = scores[u].clone()
        for i in seen.get(u, set()) | seen_v.get(u, set()):
            s[i] = float("-inf")
        top = set(torch.topk(s, k).indices.tolist())
        hits.append(len(top & tgt) > 0)
    return float(np.mean(hits))


def _group_precision(scores: torch.Tensor, split: Split, k: int = 5) -> float:
    group = split.items["orig_item_id"].str[1].astype(int).to_numpy()
    user_group = split.users["orig_user_id"].str[1:].astype(int).to_numpy() % 2
    top = torch.topk(scores, k, dim=1).indices.numpy()
    return float((group[top] == user_group[:, None]).mean())


def test_vlm4rec_beats_random_on_semantic_signal(minilm, tmp_path):
    split, caps = _semantic_split()
    feats = encode_items(split.items, caps, minilm, text="description", cache_dir=tmp_path, progress=False)
    assert feats.name == "text" and feats.mask.all() and feats.provenance["text_choice"] == "description"
    model = create_model("vlm4rec", text="description")
    model.fit(split, {"text": feats})
    users = torch.arange(split.n_users)
    ours = _hit_rate(model.score(users), split)
    g = torch.Generator().manual_seed(0)
    rand = np.mean([_hit_rate(torch.rand(split.n_users, split.n_items, generator=g), split) for _ in range(5)])
    assert ours > rand + 0.3
    # the semantic signal itself: every top-5 item comes from the user's own group
    assert _group_precision(model.score(users), split) == 1.0
    for agg in ("last_n", "exp_recency"):
        m = create_model("vlm4rec", aggregation=agg, last_n=2).fit(split, {"text": feats})
        assert _group_precision(m.score(users), split) == 1.0
    with pytest.raises(ValueError, match="made from text 'description'"):
        create_model("vlm4rec", text="title+description").fit(split, {"text": feats})
    with pytest.raises(TypeError, match="allowed"):
        create_model("vlm4rec", temperature=0.1)


def test_encode_cache_fallback_and_drop(minilm, tmp_path):
    split, caps = _semantic_split(n_per_group=5, n_users=4)
    caps = caps.iloc[1:].copy()  # first item has no description
    caps["action"] = "use"

    class Counting:
        def __init__(self, inner):
            self.inner, self.calls = inner, 0

        def identity(self):
            return self.inner.identity()

        def encode(self, texts, batch_size=64, progress=True):
            self.calls += 1
            return self.inner.encode(texts, batch_size, progress)

    enc = Counting(minilm)
    f1 = encode_items(
        split.items, caps, enc, text="title+description", fallback="title", cache_dir=tmp_path, progress=False
    )
    f2 = encode_items(
        split.items, caps, enc, text="title+description", fallback="title", cache_dir=tmp_path, progress=False
    )
    assert enc.calls == 1 and f1.checksum() == f2.checksum()
    assert f1.provenance["counts"]["not_in_descriptions"] == 1 and f1.mask.all()
    f3 = encode_items(
        split.items, caps, enc, text="title+description", fallback="drop", cache_dir=tmp_path, progress=False
    )
    assert enc.calls == 2 and not f3.mask[0] and f3.mask[1:].all()
    # the title fallback embeds the title alone
    texts, _ = item_texts(split.items, caps, "title+description", "title")
    assert texts[0] == "Item G0-00"
    f1.save(tmp_path / "out")
    assert ItemFeatures.load(tmp_path / "out", "text").provenance["encoder"]["model"].endswith("all-MiniLM-L6-v2")


def test_clip_text_tower_tiny(tmp_path):
    import open_clip

    cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    (tmp_path / "tiny-clip-test.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "tiny-clip-test.json")
    enc = ClipTextEncoder("tiny-clip-test", pretrained=None, device="cpu")
    v = enc.encode(["a red shirt", "a steel knife", "a red shirt"], batch_size=2, progress=False)
    assert v.shape == (3, 16) and np.allclose(v[0], v[2], atol=1e-5) and not np.allclose(v[0], v[1])
    assert enc.identity()["pretrained"] is None


def test_catalogue_text_uses_the_items_own_description_and_needs_no_describer():
    import pandas as pd

    from vlm4rec.encoders import item_texts

    items = pd.DataFrame(
        {
            "item_id": [0, 1],
            "orig_item_id": ["a", "b"],
            "title": ["Red hat", "Mug"],
            "categories": [["Hats", "Women"], []],
            "description": ["Wool, warm.", ""],
        }
    )
    texts, counts = item_texts(items, None, "catalogue")
    assert texts == ["Red hat. Hats > Women. Wool, warm.", "Mug"]
    assert counts["not_in_descriptions"] == 0 and counts["dropped"] == 0
    # the generated-description choices cannot silently become title-only without descriptions
    from benchmark.producers import FeatureContext
    from vlm4rec.producers import vlm4rec_text

    with pytest.raises(ValueError, match="needs descriptions"):
        vlm4rec_text(FeatureContext(split=None, split_dir=None, cache_dir=None), text="metadata")
