"""Untrusted catalogue images in the feature extractors (issue 12): local paths confined to the
allowed folders (defect 2), the fetcher's pixel limit (defect 7), cache entries that survive a
kill (defect 6), CLIP's private work directory (defect 14), an .npz given as .npy (defect 12)."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from benchmark.features import ItemFeatures
from benchmark.split import Split, empty_catalogue

TINY_CLIP = "vlm4rec-test-tiny-clip-2"


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    import open_clip

    d = tmp_path_factory.mktemp("clipcfg")
    cfg = {
        "embed_dim": 8,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 16, "head_width": 8, "patch_size": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
    }
    (d / f"{TINY_CLIP}.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(d / f"{TINY_CLIP}.json")
    return TINY_CLIP


def bomb_png(w: int = 20_000, h: int = 20_000) -> bytes:
    """A tiny PNG whose header claims w×h pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


@pytest.fixture()
def hostile(tmp_path: Path) -> tuple[Split, Path, Path]:
    """A dataset folder whose catalogue points at a private file in five ways, plus one bomb."""
    dataset = tmp_path / "dataset"
    images = dataset / "images"
    images.mkdir(parents=True)
    Image.new("RGB", (20, 20), (255, 0, 0)).save(images / "ok.png")
    (images / "bomb.png").write_bytes(bomb_png())
    private = tmp_path / "home" / "private.png"
    private.parent.mkdir()
    Image.new("RGB", (20, 20), (1, 2, 3)).save(private)
    (images / "link.png").symlink_to(private)
    pd.DataFrame({"url": ["http://x/7.jpg"], "path": [str(private)]}).to_csv(images / "index.csv", index=False)
    ids = [f"i{k}" for k in range(8)]
    cat = empty_catalogue(ids)
    cat["title"] = [f"t{k}" for k in range(8)]
    cat["image_url"] = [
        "ok.png",
        private.as_uri(),
        str(private),
        "../../home/private.png",
        "link.png",
        "bomb.png",
        float("nan"),
        "http://x/7.jpg",
    ]
    train = pd.DataFrame({"user": ["u0"] * 8, "item": ids, "rating": 5.0, "timestamp": range(8)})
    one = pd.DataFrame({"user": ["u0"], "item": ["i0"], "rating": 5.0, "timestamp": [9]})
    return Split.from_parts({"train": train, "valid": one, "test": one}, cat, "test", {}), images, private


def test_local_paths_outside_the_allowed_folders_are_refused_and_counted(hostile) -> None:
    from baselines.features.sources import resolve_images

    split, images, private = hostile
    src = resolve_images(split.items, images, roots=[images.parent])
    assert src.paths[0] == (images / "ok.png").resolve() and src.paths[5] == (images / "bomb.png").resolve()
    assert all(src.paths[k] is None for k in (1, 2, 3, 4, 6, 7))
    assert {src.reasons[k] for k in (1, 2, 3, 4, 7)} == {"outside_root"} and src.reasons[6] == "no_image"
    assert src.missing["outside_root"] == 5


def test_pixels_never_read_a_refused_file_and_never_decode_a_bomb(hostile) -> None:
    from baselines.features.pixels import pixel_features

    split, images, _ = hostile
    feats = pixel_features(split, images, progress=False, roots=[images.parent])
    assert feats.mask.tolist() == [True] + [False] * 7
    assert feats.provenance["missing"] == {"outside_root": 5, "too_many_pixels": 1, "no_image": 1}


def test_clip_uses_a_private_work_directory_and_the_pixel_limit(
    tiny_clip: str, hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    import baselines.features.clip as clip_mod
    from baselines.features.clip import ClipConfig, clip_features, load_clip

    split, images, _ = hostile
    shared = tmp_path / "shared-tmp"
    shared.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(shared))
    # someone else's files at the old predictable location must be neither used nor deleted
    planted = shared / "vlm4rec-clip-planted"
    planted.mkdir()
    (planted / "rank-0.safetensors").write_bytes(b"not mine")
    seen: list[tuple[Path, int]] = []
    gather = clip_mod.gather_rank_files

    def spy(work: Path, n: int):
        seen.append((work, work.stat().st_mode & 0o777))
        return gather(work, n)

    monkeypatch.setattr(clip_mod, "gather_rank_files", spy)
    cfg = ClipConfig(kind="image", clip_model=tiny_clip, pretrained=None, accelerator="cpu")
    feats = clip_features(split, cfg, images=images, model=load_clip(tiny_clip, None), progress=False, roots=[images])
    ((work, mode),) = seen
    assert work.parent == shared and work.name.startswith("vlm4rec-clip-") and work != planted and mode == 0o700
    assert not work.exists() and (planted / "rank-0.safetensors").read_bytes() == b"not mine"
    assert feats.mask.tolist() == [True] + [False] * 7
    assert feats.provenance["missing"]["undecodable"] == 1  # the bomb, refused before decoding
    assert feats.provenance["missing"]["outside_root"] == 5


def test_torn_clip_and_encoder_cache_entries_are_misses(tiny_clip: str, hostile, tmp_path: Path) -> None:
    from baselines.features.clip import ClipConfig, clip_features, load_clip

    split, images, _ = hostile
    cache = tmp_path / "cache"
    cfg = ClipConfig(kind="text", clip_model=tiny_clip, pretrained=None, accelerator="cpu")
    model = load_clip(tiny_clip, None)
    first = clip_features(split, cfg, cache_dir=cache, model=model, progress=False)
    (meta,) = cache.rglob("clip_text.json")
    meta.unlink()  # killed between the .safetensors and the .json
    again = clip_features(split, cfg, cache_dir=cache, model=model, progress=False)
    torch.testing.assert_close(again.values, first.values)
    assert meta.exists()

    from vlm4rec.encoders import encode_items

    class Counting:
        calls = 0

        def identity(self):
            return {"encoder": "counting", "dim": 3}

        def encode(self, texts, batch_size=64, progress=True):
            Counting.calls += 1
            return np.ones((len(texts), 3), dtype=np.float32)

    enc = Counting()
    kw = {"text": "title", "cache_dir": tmp_path / "emb", "progress": False}
    encode_items(split.items, None, enc, **kw)
    (entry,) = (tmp_path / "emb").rglob("text.safetensors")
    entry.write_bytes(b"torn")  # a damaged values file
    encode_items(split.items, None, enc, **kw)
    assert Counting.calls == 2  # recomputed, not an error, not a stale hit
    encode_items(split.items, None, enc, **kw)
    assert Counting.calls == 2


def test_npz_given_as_npy_is_one_clear_line(tmp_path: Path) -> None:
    ids = ["a", "b", "c"]
    train = pd.DataFrame({"user": ["u"] * 3, "item": ids, "rating": 1.0, "timestamp": [1, 2, 3]})
    one = pd.DataFrame({"user": ["u"], "item": ["a"], "rating": 1.0, "timestamp": [4]})
    Split.from_parts({"train": train, "valid": one, "test": one}, None, "t", {}).save(tmp_path / "s")
    np.savez(tmp_path / "f.npz", feats=np.zeros((3, 2)))
    (tmp_path / "ids.txt").write_text("a\nb\nc\n")
    args = ["features", str(tmp_path / "s"), "--kind", "import", "--npy", str(tmp_path / "f.npz")]
    args += ["--ids", str(tmp_path / "ids.txt"), "--out", str(tmp_path / "o")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmark.cli", *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ".npz archive (arrays: feats)" in proc.stderr


def test_private_file_bytes_never_reach_the_feature_values(hostile) -> None:
    # the refused items have no feature at all: nothing derived from the private file
    from baselines.features.pixels import pixel_features

    split, images, private = hostile
    feats = pixel_features(split, images, progress=False, roots=[images.parent])
    digest = hashlib.sha256(private.read_bytes()).hexdigest()
    assert digest not in json.dumps(feats.provenance)
    assert isinstance(feats, ItemFeatures) and not feats.mask[1:5].any()
