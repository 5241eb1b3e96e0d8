"""Item features: CLIP (tiny random-init open_clip model), pixels, imports, and the CLI."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from benchmark.features import ItemFeatures
from benchmark.split import Split, empty_catalogue

TINY_CLIP = "vlm4rec-test-tiny-clip"
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (250, 250, 0), (0, 0, 0)]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Register a tiny CLIP architecture with open_clip (random weights, runs in milliseconds)."""
    import open_clip

    d = tmp_path_factory.mktemp("clipcfg")
    cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    (d / f"{TINY_CLIP}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(d / f"{TINY_CLIP}.json")
    return TINY_CLIP


@pytest.fixture()
def image_split(tmp_path: Path) -> tuple[Split, Path]:
    """8 items: 5 local PNGs (one via file://, one via an index for its http URL), one broken file,
    one http URL nobody fetched, one item without any image; item i5 has no title."""
    img = tmp_path / "images"
    img.mkdir()
    ids = [f"i{k}" for k in range(8)]
    for k, colour in enumerate(COLOURS):
        Image.new("RGB", (40 + 4 * k, 30), colour).save(img / f"pic{k}.png")
    (img / "broken.png").write_bytes(b"not a png at all")
    pd.DataFrame({"url": ["http://img.example/4.jpg"], "path": ["pic4.png"]}).to_csv(img / "index.csv", index=False)
    cat = empty_catalogue(ids)
    cat["image_url"] = [
        str(img / "pic0.png"),
        (img / "pic1.png").as_uri(),
        "pic2.png",
        str(img / "pic3.png"),
        "http://img.example/4.jpg",
        str(img / "broken.png"),
        "http://img.example/6.jpg",
        None,
    ]
    cat["title"] = ["red", "green", "blue", "yellow", "black", "", "seven", "eight"]
    cat["description"] = ["a red thing", "", "", "", "", "", "", ""]
    train = pd.DataFrame({"user": ["u0"] * 8, "item": ids, "rating": 5.0, "timestamp": range(8)})
    one = pd.DataFrame({"user": ["u0"], "item": ["i0"], "rating": 5.0, "timestamp": [9]})
    split = Split.from_parts({"train": train, "valid": one, "test": one}, cat, "test", {})
    return split, img


# ------------------------------------------------------------------------------------------ CLIP
def _cfg(kind: str, **settings: object):
    """The tiny random-init CLIP on the CPU unless ``settings`` say otherwise."""
    from baselines.features.clip import ClipConfig

    return ClipConfig(**{"kind": kind, "clip_model": TINY_CLIP, "pretrained": None, "accelerator": "cpu", **settings})


def test_clip_image_features_match_direct_encoding(tiny_clip: str, image_split: tuple[Split, Path]) -> None:
    import open_clip

    from baselines.features.clip import clip_features, load_clip

    split, img = image_split
    torch.manual_seed(0)
    model = load_clip(tiny_clip, None)
    feats = clip_features(split, _cfg("image", batch_size=3), images=img, model=model, progress=False)
    assert feats.name == "clip_image" and feats.values.shape == (8, 16)
    assert feats.mask.tolist() == [True, True, True, True, True, False, False, False]
    assert feats.provenance["missing"] == {"undecodable": 1, "remote_not_fetched": 1, "no_image": 1}
    assert feats.provenance["open_clip_version"] == open_clip.__version__
    assert feats.provenance["split_fingerprint"] == split.fingerprint
    clip_model, preprocess, _ = model
    with torch.no_grad():
        x = torch.stack([preprocess(Image.open(img / f"pic{k}.png").convert("RGB")) for k in range(5)])
        direct = torch.nn.functional.normalize(clip_model.encode_image(x), dim=-1)
    torch.testing.assert_close(feats.values[:5], direct, atol=1e-5, rtol=1e-4)
    assert torch.all(feats.values[~feats.mask] == 0)


def test_clip_text_and_raw_option(tiny_clip: str, image_split: tuple[Split, Path]) -> None:
    from baselines.features.clip import clip_features, load_clip

    split, _ = image_split
    model = load_clip(tiny_clip, None)
    feats = clip_features(
        split, _cfg("text", text_fields=("title", "description"), normalize=False), model=model, progress=False
    )
    assert feats.mask.tolist() == [True] * 5 + [False] + [True] * 2
    assert feats.provenance["missing"] == {"no_text": 1}
    clip_model, _, tokenizer = model
    with torch.no_grad():
        direct = clip_model.encode_text(tokenizer(["red. a red thing", "green"]))
    torch.testing.assert_close(feats.values[:2], direct, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(feats.values[0].norm(), torch.tensor(1.0))  # raw, not normalised
    # a title far past the context length is truncated by the tokenizer, not an error
    split.items.loc[0, "title"] = "word " * 500
    long = clip_features(split, _cfg("text"), model=model, progress=False)
    assert bool(long.mask[0]) and torch.isfinite(long.values[0]).all()


def test_clip_cache_reused_and_keyed_by_input(
    tiny_clip: str, image_split: tuple[Split, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import baselines.features.clip as clip_mod

    split, img = image_split
    cache = tmp_path / "cache"
    first = clip_mod.clip_features(split, _cfg("image"), images=img, cache_dir=cache, progress=False)
    assert list(cache.rglob("clip_image.safetensors"))

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("model must not be rebuilt on a cache hit")

    monkeypatch.setattr(clip_mod, "load_clip", boom)
    again = clip_mod.clip_features(split, _cfg("image"), images=img, cache_dir=cache, progress=False)
    torch.testing.assert_close(again.values, first.values)
    # a changed image changes the input hash, so the cache must not be used
    Image.new("RGB", (20, 20), (9, 9, 9)).save(img / "pic0.png")
    with pytest.raises(AssertionError, match="must not be rebuilt"):
        clip_mod.clip_features(split, _cfg("image"), images=img, cache_dir=cache, progress=False)


def test_clip_producer_takes_clip_model_and_names_it_when_the_old_key_is_used(
    tiny_clip: str, image_split: tuple[Split, Path], tmp_path: Path
) -> None:
    from benchmark.errors import ConfigError
    from benchmark.producers import PRODUCERS, FeatureContext, produce

    split, img = image_split
    ctx = FeatureContext(split=split, split_dir=tmp_path, cache_dir=tmp_path / "cache", progress=False)
    params = {"clip_model": tiny_clip, "pretrained": None, "images": str(img), "accelerator": "cpu"}
    feats = produce("clip-image", ctx, params, output_name="clip_image")
    assert feats.provenance["model"] == tiny_clip and int(feats.mask.sum()) == 5
    # `model` meant a registry name, a CLIP architecture or an LVLM depending on where it stood
    for producer in ("clip-image", "clip-text"):
        with pytest.raises(ConfigError, match=r"features\[0\]\.params\.model: unknown parameter.*clip_model"):
            PRODUCERS.check_params(producer, {"model": "ViT-L-14"}, "features[0].params")


def test_clip_config_names_the_allowed_values() -> None:
    from baselines.features.clip import ClipConfig
    from benchmark.errors import ConfigError

    with pytest.raises(ConfigError, match="precision: 'fp8' is not allowed; allowed values: fp32, fp16, bf16"):
        ClipConfig(precision="fp8").validate()
    with pytest.raises(ConfigError, match="kind: 'video'"):
        ClipConfig(kind="video").validate()


# ------------------------------------------------------------------------------------------ pixels
def test_pixel_vector_is_histogram_plus_thumbnail() -> None:
    from baselines.features.pixels import pixel_vector

    im = Image.new("RGB", (10, 10), (255, 0, 0))
    im.paste((0, 0, 255), (0, 0, 10, 5))  # top half blue
    v = pixel_vector(im, bins=4, thumb=2)
    assert v.shape == (4**3 + 2 * 2 * 3,)
    hist, thumb = v[:64], v[64:].reshape(2, 2, 3)
    assert hist.sum() == pytest.approx(1.0)
    assert hist[(3 * 4 + 0) * 4 + 0] == pytest.approx(0.5)  # red cell
    assert hist[(0 * 4 + 0) * 4 + 3] == pytest.approx(0.5)  # blue cell
    np.testing.assert_allclose(thumb[0, :], [[0, 0, 1], [0, 0, 1]])
    np.testing.assert_allclose(thumb[1, :], [[1, 0, 0], [1, 0, 0]])
    np.testing.assert_array_equal(v, pixel_vector(im, bins=4, thumb=2))


def test_pixel_features_mask_and_counts(image_split: tuple[Split, Path]) -> None:
    from baselines.features.pixels import pixel_features

    split, img = image_split
    feats = pixel_features(split, img, progress=False)
    assert feats.values.shape == (8, 8**3 + 8 * 8 * 3)
    assert feats.mask.tolist() == [True] * 5 + [False] * 3
    assert feats.provenance["missing"] == {"undecodable": 1, "remote_not_fetched": 1, "no_image": 1}
    red_cell = (7 * 8 + 0) * 8 + 0
    assert feats.values[0, red_cell] == pytest.approx(1.0)


# ------------------------------------------------------------------------------------------ imports
def test_import_npy_aligns_by_original_id(image_split: tuple[Split, Path], tmp_path: Path) -> None:
    from baselines.features.imported import import_npy

    split, _ = image_split
    file_ids = ["i3", "zz-not-in-split", "i0", "i7", "i5", "i1", "i2"]  # i4 and i6 absent
    mat = np.array([[float(s[1:]) if s.startswith("i") else -1.0, 1.0] for s in file_ids], dtype=np.float32)
    mat[file_ids.index("i5")] = np.nan
    np.save(tmp_path / "f.npy", mat)
    (tmp_path / "ids.txt").write_text("\n".join(file_ids) + "\n")
    feats = import_npy(split, tmp_path / "f.npy", tmp_path / "ids.txt", "imp")
    assert feats.mask.tolist() == [True, True, True, True, False, False, False, True]
    present = feats.mask.numpy()
    np.testing.assert_array_equal(feats.values[present, 0].numpy(), np.arange(8)[present])
    assert feats.provenance["counts"] == {"not_in_file": 2, "non_finite": 1, "not_in_split": 1}
    np.save(tmp_path / "short.npy", mat[:-1])
    with pytest.raises(ValueError, match="not aligned"):
        import_npy(split, tmp_path / "short.npy", tmp_path / "ids.txt", "imp")
    (tmp_path / "dup.csv").write_text("asin,x\n" + "\n".join(["i0,1"] * 7) + "\n")
    with pytest.raises(ValueError, match="repeats"):
        import_npy(split, tmp_path / "f.npy", tmp_path / "dup.csv", "imp")


def test_import_mmrec_map(image_split: tuple[Split, Path], tmp_path: Path) -> None:
    from baselines.features.imported import import_mmrec

    split, _ = image_split
    pd.DataFrame({"asin": ["i7", "i0", "i2"], "itemID": [2, 0, 1]}).to_csv(tmp_path / "map.csv", sep="\t", index=False)
    np.save(tmp_path / "image_feat.npy", np.array([[0.0], [2.0], [7.0]]))
    feats = import_mmrec(split, tmp_path / "image_feat.npy", tmp_path / "map.csv", "clip_image")
    assert feats.mask.nonzero().flatten().tolist() == [0, 2, 7]
    assert feats.values[[0, 2, 7], 0].tolist() == [0.0, 2.0, 7.0]


@pytest.mark.realdata
def test_import_mmrec_real_baby_map(shared_data: Path, tmp_path: Path) -> None:
    """MMRec's real baby i_id_mapping.csv: rows land on the right asins (checked with plain csv)."""
    import csv

    from baselines.features.imported import import_mmrec

    map_path = shared_data / "mmrec-baby-2014" / "i_id_mapping.csv"
    with open(map_path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    by_id = {int(r["itemID"]): r["asin"] for r in rows}
    mat = np.arange(len(rows), dtype=np.float32)[:, None]  # row k holds k
    np.save(tmp_path / "image_feat.npy", mat)
    chosen = [by_id[k] for k in (5, 17, 4000)] + ["NOT_AN_ASIN"]
    inter = pd.DataFrame({"user": "u", "item": chosen, "rating": 1.0, "timestamp": range(4)})
    split = Split.from_parts({"train": inter, "valid": inter[:1], "test": inter[:1]}, empty_catalogue(chosen), "t", {})
    feats = import_mmrec(split, tmp_path / "image_feat.npy", map_path, "clip_image")
    got = {split.items["orig_item_id"][i]: feats.values[i, 0].item() for i in range(4) if feats.mask[i]}
    assert got == {by_id[5]: 5.0, by_id[17]: 17.0, by_id[4000]: 4000.0}
    assert feats.provenance["counts"]["not_in_split"] == len(rows) - 3


# ------------------------------------------------------------------------------------------ CLI
def _run_cli(argv: list[str]) -> int:
    from baselines.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_pixels_and_clip(
    tiny_clip: str, image_split: tuple[Split, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    split, img = image_split
    split.save(tmp_path / "split")
    assert (
        _run_cli(
            [
                "features",
                str(tmp_path / "split"),
                "--kind",
                "pixels",
                "--out",
                str(tmp_path / "f"),
                "--images",
                str(img),
                "--bins",
                "4",
                "--thumb",
                "2",
            ]
        )
        == 0
    )
    feats = ItemFeatures.load(tmp_path / "f", "pixels")
    assert feats.values.shape == (8, 64 + 12) and int(feats.mask.sum()) == 5
    assert "3 without" in capsys.readouterr().out
    assert (
        _run_cli(
            [
                "features",
                str(tmp_path / "split"),
                "--kind",
                "clip-text",
                "--out",
                str(tmp_path / "f"),
                "--clip-model",
                tiny_clip,
                "--pretrained",
                "none",
                "--accelerator",
                "cpu",
            ]
        )
        == 0
    )
    assert ItemFeatures.load(tmp_path / "f", "clip_text").dim == 16


def test_cli_import_needs_ids(image_split: tuple[Split, Path], tmp_path: Path) -> None:
    from benchmark.errors import CliError

    split, _ = image_split
    split.save(tmp_path / "split")
    np.save(tmp_path / "f.npy", np.zeros((2, 2)))
    with pytest.raises(CliError, match="--ids or --mmrec-map"):
        _run_cli(
            [
                "features",
                str(tmp_path / "split"),
                "--kind",
                "import",
                "--out",
                str(tmp_path / "o"),
                "--npy",
                str(tmp_path / "f.npy"),
            ]
        )


def test_images_found_through_the_fetchers_index(image_split: tuple[Split, Path]) -> None:
    """``index.parquet`` as benchmark.data.images writes it: looked up by URL, then by item id."""
    from baselines.features.sources import resolve_images

    split, img = image_split
    (img / "index.csv").unlink()
    pd.DataFrame(
        {
            "item": ["i4", "i6"],
            "path": ["pic4.png", "pic3.png"],
            "sha256": ["-", "-"],
            "url": ["http://img.example/4.jpg", "http://elsewhere/6.jpg"],
        }
    ).to_parquet(img / "index.parquet")
    src = resolve_images(split.items, img)
    assert src.paths[4] == img / "pic4.png"  # by URL
    assert src.paths[6] == img / "pic3.png"  # the catalogue's URL differs; found by item id
    assert src.paths[7] is None and src.reasons[7] == "no_image"


@pytest.mark.gpu
def test_clip_on_gpu_matches_cpu(tiny_clip: str, image_split: tuple[Split, Path]) -> None:
    from baselines.features.clip import clip_features, load_clip

    split, img = image_split
    torch.manual_seed(0)
    model = load_clip(tiny_clip, None)
    cpu = clip_features(split, _cfg("image"), images=img, model=model, progress=False)
    gpu = clip_features(split, _cfg("image", accelerator="gpu", devices=1), images=img, model=model, progress=False)
    assert torch.equal(cpu.mask, gpu.mask)
    torch.testing.assert_close(gpu.values, cpu.values, atol=1e-3, rtol=1e-3)
    text = clip_features(split, _cfg("text", accelerator="gpu"), model=model, progress=False)
    assert int(text.mask.sum()) == 7


def test_cli_unknown_clip_model_is_a_user_error(image_split: tuple[Split, Path], tmp_path: Path) -> None:
    from benchmark.errors import CliError

    split, _ = image_split
    split.save(tmp_path / "split")
    with pytest.raises(CliError, match="could not build CLIP model 'no-such-arch'"):
        _run_cli(
            [
                "features",
                str(tmp_path / "split"),
                "--kind",
                "clip-text",
                "--out",
                str(tmp_path / "o"),
                "--model",
                "no-such-arch",
                "--pretrained",
                "none",
            ]
        )


def test_images_named_after_items_in_a_relative_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's layout: a relative image folder (``datasets/demo/raw/images`` from the working
    directory), files named after the items, catalogue URLs relative to another folder. The file
    found under the folder is that file, not the folder joined to it a second time."""
    from baselines.features.pixels import pixel_features
    from baselines.features.sources import resolve_images

    monkeypatch.chdir(tmp_path)
    img = Path("data") / "raw" / "images"
    img.mkdir(parents=True)
    ids = ["D0", "D1"]
    for k, item in enumerate(ids):
        Image.new("RGB", (20, 20), COLOURS[k]).save(img / f"{item}.png")
    cat = empty_catalogue(ids)
    cat["image_url"] = [f"images/{item}.png" for item in ids]  # relative to data/raw, not to the images
    train = pd.DataFrame({"user": ["u0", "u0"], "item": ids, "rating": 5.0, "timestamp": [0, 1]})
    one = pd.DataFrame({"user": ["u0"], "item": ["D0"], "rating": 5.0, "timestamp": [9]})
    split = Split.from_parts({"train": train, "valid": one, "test": one}, cat, "test", {})
    src = resolve_images(split.items, img, roots=[Path("data") / "raw"])
    assert src.paths == [(img / "D0.png").resolve(), (img / "D1.png").resolve()] and not src.missing
    feats = pixel_features(split, img, progress=False, roots=[Path("data") / "raw"])
    assert feats.mask.all()
