"""The shipped paper-clothing configs are the paper's experiment: its data recipe, its baselines
("BERT" = CLIP ViT-L/14 text of the title), paper-loss fusion rows standing for the paper's, extra
rows clearly named, and no difference from the published methods left but the notes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from benchmark.runner.claims import load_published
from benchmark.runner.claims_paper import method_differences
from benchmark.runner.config import load_config

PAPER_CONFIGS = ("paper-clothing", "paper-clothing-import", "paper-clothing-fair")
FUSIONS = ("attention-fusion", "gating-fusion", "crossmodal-fusion")


@pytest.mark.parametrize("name", PAPER_CONFIGS)
def test_paper_rows_use_the_papers_representations(name):
    cfg = load_config(name)
    pub = load_published(cfg.published)
    producers = {f.name: f for f in cfg.features}
    by_paper = {m.paper_name: m for m in cfg.models if m.paper_name}
    assert set(by_paper) <= set(pub["methods"])
    bert = by_paper["BERT text-only"]
    clip_title = producers[bert.params["feature"]]
    assert clip_title.producer == "clip-text" and clip_title.params["clip_model"] == "ViT-L-14"
    assert clip_title.params["text_fields"] == ["title", "description"]  # f"{title}. {description}"
    for m in cfg.models:
        if m.model in FUSIONS and m.paper_name:
            assert m.params.get("loss") == "paper", m.name  # rows standing for the paper's fusion results
        if "user-aware" in m.name or "(extra)" in m.name:
            assert m.paper_name is None, m.name  # extra rows never stand for a published number
    extra = next(m for m in cfg.models if producers.get(m.params.get("feature", "")) is producers["minilm_catalogue"])
    assert "MiniLM" in extra.name and extra.paper_name is None


@pytest.mark.parametrize("name", ("paper-clothing", "paper-clothing-import"))
def test_the_paper_configs_leave_only_notes_as_differences(name):
    cfg = load_config(name)
    pub = load_published(cfg.published)
    results = SimpleNamespace(config=cfg)
    for m in cfg.models:
        if not m.paper_name:
            continue
        diffs = method_differences(results, m.name, pub["method_provenance"][m.paper_name])  # type: ignore[arg-type]
        assert all(d.startswith("note:") for d in diffs), (m.name, diffs)
    if name == "paper-clothing":
        ds = cfg.dataset
        assert ds.recipe == "align-macridvae" and ds.reviews.endswith("Clothing_Shoes_and_Jewelry.json.gz")
        assert (ds.date_from, ds.date_before, ds.kcore_passes, ds.kcore_order) == (
            "2018-03-01",
            "2018-10-01",
            1,
            "items-first",
        )
        llava = next(f for f in cfg.features if f.name == "llava_desc").params["describer"]
        assert (llava["select"], llava["max_items"], llava["prompt"]) == ("paper-priority", 4708, "paper-v1")
    assert cfg.evaluation.modes == ["full-catalogue", "captioned-only"]
    assert cfg.evaluation.captioned.user_fraction == 0.01


def test_the_fair_config_says_what_still_differs():
    cfg = load_config("paper-clothing-fair")
    pub = load_published(cfg.published)
    bert = next(m for m in cfg.models if m.paper_name == "BERT text-only")
    diffs = method_differences(SimpleNamespace(config=cfg), bert.name, pub["method_provenance"]["BERT text-only"])  # type: ignore[arg-type]
    assert any(d.startswith("aggregation: ours averages L2-normalised item vectors") for d in diffs)
