"""The offline demo catalogue: deterministic, complete, 5-core, and semantically structured.

Everything is checked by reading the files with plain json/gzip/PIL, not with the generator's code.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import json
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

import pandas as pd
import pytest
from PIL import Image

from benchmark.cli import main
from benchmark.demo import generate_demo

SMALL = dict(n_items=160, n_users=120, min_interactions=10, max_interactions=16)
TINY = dict(n_items=60, n_users=40, min_interactions=10, max_interactions=12)


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    return generate_demo(tmp_path_factory.mktemp("demo"), seed=3, **SMALL)


def test_same_seed_gives_identical_files(demo, tmp_path: Path) -> None:
    again = generate_demo(tmp_path / "again", seed=3, **SMALL)
    a, b = tree_hashes(demo.root), tree_hashes(again.root)
    assert a.keys() == b.keys()
    differing = {k for k in a if a[k] != b[k]}
    # Only the meta file differs: it holds absolute file:// URLs of its own folder (and demo.json its hash).
    assert differing == {"meta_Demo.jsonl.gz", "demo.json"}
    meta_a = gzip.decompress(demo.meta.read_bytes()).decode().replace(demo.root.as_uri(), "ROOT")
    meta_b = gzip.decompress(again.meta.read_bytes()).decode().replace(again.root.as_uri(), "ROOT")
    assert meta_a == meta_b


def test_relative_urls_make_the_folder_byte_identical(tmp_path: Path) -> None:
    a = generate_demo(tmp_path / "a", seed=5, image_urls="relative", **TINY)
    b = generate_demo(tmp_path / "b", seed=5, image_urls="relative", **TINY)
    assert tree_hashes(a.root) == tree_hashes(b.root)
    c = generate_demo(tmp_path / "c", seed=6, image_urls="relative", **TINY)
    assert tree_hashes(c.root)["Demo.jsonl.gz"] != tree_hashes(a.root)["Demo.jsonl.gz"]
    row = read_jsonl(a.meta)[0]
    assert row["images"][0]["hi_res"] == f"images/{row['parent_asin']}.png"
    assert (a.root / row["images"][0]["hi_res"]).exists()


def test_reviews_are_2023_layout_with_millisecond_timestamps(demo) -> None:
    rows = read_jsonl(demo.reviews)
    keys = {
        "user_id",
        "parent_asin",
        "asin",
        "rating",
        "timestamp",
        "title",
        "text",
        "verified_purchase",
        "helpful_vote",
    }
    assert all(keys <= r.keys() for r in rows)
    ts = pd.Series([r["timestamp"] for r in rows])
    # Milliseconds: 2018..2024 in ms is 1.5e12..1.8e12.
    assert ts.min() > 1_500_000_000_000 and ts.max() < 1_800_000_000_000
    assert {r["rating"] for r in rows} <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert len({r["rating"] for r in rows}) >= 4
    assert all(isinstance(r["verified_purchase"], bool) for r in rows)


def test_counts_and_5core(demo) -> None:
    df = pd.DataFrame(read_jsonl(demo.reviews))[["user_id", "parent_asin"]]
    assert df["user_id"].nunique() == SMALL["n_users"]
    assert df["parent_asin"].nunique() == SMALL["n_items"]
    assert not df.duplicated().any()
    assert df.groupby("user_id").size().min() >= 10
    assert df.groupby("parent_asin").size().min() >= 5
    # An independent iterative 5-core keeps everything.
    kept = df
    while True:
        u = kept.groupby("user_id")["parent_asin"].transform("size")
        i = kept.groupby("parent_asin")["user_id"].transform("size")
        nxt = kept[(u >= 5) & (i >= 5)]
        if len(nxt) == len(kept):
            break
        kept = nxt
    assert len(kept) == len(df)
    manifest = json.loads(demo.manifest.read_text())
    assert manifest["counts"] == {"items": SMALL["n_items"], "users": SMALL["n_users"], "interactions": len(df)}


def test_every_item_has_meta_image_and_caption(demo) -> None:
    meta = read_jsonl(demo.meta)
    caps = {c["parent_asin"]: c for c in read_jsonl(demo.captions)}
    attrs = {a["parent_asin"]: a for a in read_jsonl(demo.attributes)}
    assert len(meta) == SMALL["n_items"] and set(caps) == {m["parent_asin"] for m in meta} == set(attrs)
    for m in meta:
        assert isinstance(m["description"], list) and isinstance(m["title"], str) and m["title"]
        main_img = [i for i in m["images"] if i["variant"] == "MAIN"][0]
        url = urlparse(main_img["hi_res"])
        assert url.scheme == "file"
        path = Path(url2pathname(url.path))
        with Image.open(path) as im:
            im.load()
            assert im.format == "PNG" and im.size == (64, 64) and im.mode == "RGB"
        cap = caps[m["parent_asin"]]
        assert cap["source"] == "demo-generator"
        a = attrs[m["parent_asin"]]
        # The caption states what was drawn; the title does not.
        for key in ("colour", "material", "style"):
            assert a[key] in cap["caption"]
            assert a[key] not in m["title"].lower()


def test_pictures_differ_by_attribute(demo) -> None:
    """Same category pictures share a silhouette more than different ones (images carry the semantics)."""
    import numpy as np

    attrs = read_jsonl(demo.attributes)
    masks = {}
    for a in attrs:
        arr = np.asarray(Image.open(demo.images_dir / f"{a['parent_asin']}.png").convert("L"), dtype=float)
        masks[a["parent_asin"]] = (arr < 200)[12:56, 4:60]  # the object, away from the icon and border marks
    by_cat = collections.defaultdict(list)
    for a in attrs:
        by_cat[a["category"]].append(masks[a["parent_asin"]])
    cats = sorted(by_cat)
    iou = lambda x, y: (x & y).sum() / max(1, (x | y).sum())  # noqa: E731
    same = np.mean([iou(v[0], v[1]) for v in by_cat.values() if len(v) > 1])
    diff = np.mean([iou(by_cat[c][0], by_cat[d][0]) for c in cats for d in cats if c < d])
    assert same > diff + 0.15


def test_users_follow_semantics_not_colour(demo) -> None:
    attrs = {a["parent_asin"]: a for a in read_jsonl(demo.attributes)}
    by_user = collections.defaultdict(list)
    for r in read_jsonl(demo.reviews):
        by_user[r["user_id"]].append(attrs[r["parent_asin"]])

    def share(key: str) -> tuple[float, float]:
        same = total = 0
        for items in by_user.values():
            c = collections.Counter(a[key] for a in items)
            n = len(items)
            same += sum(k * (k - 1) for k in c.values())
            total += n * (n - 1)
        overall = collections.Counter(a[key] for a in attrs.values())
        chance = sum((k / len(attrs)) ** 2 for k in overall.values())
        return same / total, chance

    cat, cat_chance = share("category")
    style, style_chance = share("style")
    colour, colour_chance = share("colour")
    assert cat > 2.0 * cat_chance
    assert style > 1.3 * style_chance
    assert colour < 1.3 * colour_chance


def test_complete_folder_is_reused_and_damage_is_repaired(tmp_path: Path) -> None:
    first = generate_demo(tmp_path, seed=1, **TINY)
    assert not first.reused
    before = tree_hashes(tmp_path)
    assert generate_demo(tmp_path, seed=1, **TINY).reused
    victim = tmp_path / "images" / "DEMO000007.png"
    victim.write_bytes(b"damaged")
    again = generate_demo(tmp_path, seed=1, **TINY)
    assert not again.reused and tree_hashes(tmp_path) == before
    assert not generate_demo(tmp_path, seed=2, **TINY).reused  # other parameters: regenerated
    assert not list(tmp_path.glob(".demo-staging-*"))


def test_bad_sizes_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="min_user"):
        generate_demo(tmp_path, n_items=50, n_users=40, min_interactions=5, max_interactions=8)
    with pytest.raises(ValueError, match="image_urls"):
        generate_demo(tmp_path, image_urls="http")  # type: ignore[arg-type]


def test_cli_demo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["-q", "data", "demo", "--out", str(tmp_path), "--seed", "4", "--items", "60", "--users", "40"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "60 items, 40 users" in out
    assert len(list((tmp_path / "images").glob("*.png"))) == 60


def test_reader_reads_the_demo(demo) -> None:
    """The project's 2023 reader takes the MAIN image and timestamps in seconds."""
    readers = pytest.importorskip("benchmark.data.readers")
    inter, _ = readers.read_reviews(demo.reviews, "2023")
    cat, _ = readers.read_meta(demo.meta, "2023")
    raw = read_jsonl(demo.reviews)
    assert len(inter) == len(raw)
    assert inter["timestamp"].max() == max(r["timestamp"] for r in raw) // 1000
    assert cat["image_url"].notna().all() and len(cat) == SMALL["n_items"]


@pytest.mark.slow
def test_default_size(tmp_path: Path) -> None:
    paths = generate_demo(tmp_path)
    manifest = json.loads(paths.manifest.read_text())
    assert manifest["counts"]["items"] == 800 and manifest["counts"]["users"] == 600
    df = pd.DataFrame(read_jsonl(paths.reviews))
    per_user = df.groupby("user_id").size()
    assert per_user.min() >= 15 and 15 <= per_user.mean() <= 25
    assert df.groupby("parent_asin").size().min() >= 5
