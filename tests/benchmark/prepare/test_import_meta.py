"""The Align-MacridVAE import keeps the catalogue: ``dataset.meta`` is joined onto the imported
items (matched and unmatched counted), and a model on a feature that no item has is refused
naming the feature, the model and the coverage."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from fixtures.amazon_files import make_items, make_rows, meta_2018, write_align_folder, write_lines

from benchmark.cli import main
from benchmark.features import ItemFeatures
from benchmark.prepare import dataset_from_mapping, load_dataset
from benchmark.runner.config import ModelConfig
from benchmark.runner.stages.features import FeatureCoverageError, check_feature_coverage, model_features

ROWS = make_rows(n_users=15, n_items=12, per_user=6, seed=11)


def write_meta(path: Path, items: list[str]) -> Path:
    return write_lines(path, [meta_2018(it) for it in make_items(items)])


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_align_folder(tmp_path / "src", ROWS, category="Clothing_Shoes_and_Jewelry")


def test_meta_is_joined_onto_the_imported_items_and_unmatched_items_are_counted(folder, tmp_path):
    items = sorted({r.item for r in ROWS})
    # metadata for all but two items, plus lines for items the import does not have
    meta = write_meta(tmp_path / "meta_Clothing_Shoes_and_Jewelry.json.gz", items[2:] + ["B0ZZZZZZZ1", "B0ZZZZZZZ2"])
    ds = dataset_from_mapping({"source": "align-macridvae", "path": str(folder), "meta": str(meta)})
    split = load_dataset(ds, tmp_path / "imp").split
    by_id = split.items.set_index("orig_item_id")
    assert by_id.loc[items[5], "title"] == f"Item {items[2:].index(items[5])} title"
    assert not by_id.loc[items[0], "has_meta"] and by_id.loc[items[0], "title"] == ""
    summary = json.loads((tmp_path / "imp" / "summary.json").read_text())
    assert summary["catalogue"] == {
        "items": 12,
        "with_meta": 10,
        "without_meta": 2,
        "with_image_url": int(by_id["image_url"].notna().sum()),
    }
    # only the imported items' lines are kept from the metadata (a release has millions)
    assert summary["read_reports"]["meta"]["filters"]["items"] == {"wanted": 12, "lines_for_other_items": 2}


def test_a_join_that_matches_nothing_is_reported(folder, tmp_path, caplog):
    meta = write_meta(tmp_path / "meta.json", ["B0ZZZZZZZ1"])
    with caplog.at_level(logging.ERROR):
        load_dataset(
            dataset_from_mapping({"source": "align-macridvae", "path": str(folder), "meta": str(meta)}), tmp_path / "x"
        )
    assert "none of the 12 imported items has a line in" in caplog.text


def test_cli_import_with_meta_says_how_many_items_matched(folder, tmp_path, capsys):
    meta = write_meta(tmp_path / "meta.json.gz", sorted({r.item for r in ROWS})[:9])
    assert (
        main(["data", "import", "align-macridvae", str(folder), "--out", str(tmp_path / "o"), "--meta", str(meta)]) == 0
    )
    assert "metadata for 9 of 12 items (3 unmatched)" in capsys.readouterr().out


def features(name: str, n: int, covered: int) -> ItemFeatures:
    mask = torch.zeros(n, dtype=torch.bool)
    mask[:covered] = True
    values = torch.where(mask[:, None], torch.ones(n, 4), torch.zeros(n, 4))
    return ItemFeatures(name, values, mask, {})


def test_a_feature_no_item_has_is_an_error_naming_feature_model_and_coverage():
    feats = {"bert_text": features("bert_text", 40, 0), "clip_image": features("clip_image", 40, 40)}
    bert = ModelConfig(name="BERT text-only", model="text-only", params={"feature": "bert_text"})
    with pytest.raises(
        FeatureCoverageError, match=r"model 'BERT text-only': feature 'bert_text' covers 0.00% of the 40"
    ):
        check_feature_coverage([bert], feats)
    fusion = ModelConfig(name="fusion", model="naive-fusion", params={"text_feature": "bert_text"})
    assert model_features(fusion) == ["bert_text", "clip_image"]  # the image feature is the model's default
    with pytest.raises(FeatureCoverageError, match="feature 'bert_text'"):
        check_feature_coverage([fusion], feats)
    feats["bert_text"] = features("bert_text", 40, 3)
    check_feature_coverage([bert], feats)  # 7.5%: above the default floor (nothing but zero)
    with pytest.raises(
        FeatureCoverageError, match=r"covers 7.50% .*below the floor evaluation.min_feature_coverage=0.1"
    ):
        check_feature_coverage([bert], feats, floor=0.1)


def test_the_folders_images_named_by_dense_id_become_image_paths(folder, tmp_path):
    from PIL import Image

    from benchmark.split import Split

    (folder / "images").mkdir()
    for k in (0, 3):
        Image.new("RGB", (4, 4)).save(folder / "images" / f"{k}.png")
    split = load_dataset(dataset_from_mapping({"source": "align-macridvae", "path": str(folder)}), tmp_path / "i").split
    paths = split.items["image_path"]
    assert paths.notna().sum() == 2 and Path(paths[3]).is_file() and paths[3].endswith("/images/3.png")
    assert Split.load(tmp_path / "i").items["image_path"][0] == paths[0]  # saved with the split
    summary = json.loads((tmp_path / "i" / "summary.json").read_text())
    assert summary["catalogue"]["with_image_file"] == 2


@pytest.mark.slow
def test_bert_text_only_on_an_import_without_meta_stops_the_run(folder, tmp_path):
    """The audit's case: an Align-MacridVAE import without `dataset.meta` has empty titles, so a
    text feature of the catalogue covers no item; the run stops naming it instead of reporting 0."""
    import yaml

    from benchmark.runner.config import load_config
    from benchmark.runner.pipeline import run_experiment

    cfg = {
        "experiment": "no-meta",
        "dataset": {"name": "imp", "source": "align-macridvae", "path": str(folder)},
        "features": [{"name": "minilm_catalogue", "producer": "vlm4rec-text", "params": {"text": "catalogue"}}],
        "models": [{"name": "BERT text-only", "model": "text-only", "params": {"feature": "minilm_catalogue"}}],
        "results_dir": str(tmp_path / "results"),
        "cache_dir": str(tmp_path / "cache"),
        "logging": {"logger": "csv"},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(
        FeatureCoverageError, match=r"'BERT text-only': feature 'minilm_catalogue' covers 0.00% of the 12"
    ):
        run_experiment(load_config(path))
    # with the metadata joined, the same run has titles to embed and gets past the check
    meta = write_meta(tmp_path / "meta.json.gz", sorted({r.item for r in ROWS}))
    cfg["dataset"]["meta"] = str(meta)
    path.write_text(yaml.safe_dump(cfg))
    result = run_experiment(load_config(path))
    assert result.means["BERT text-only"]["recall@10"] > 0
