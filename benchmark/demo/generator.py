"""The offline demo catalogue: a small synthetic dataset in the Amazon 2023 file layout.

``generate_demo(out_dir, seed=0)`` writes (``C`` = ``category``, default ``Demo``):

- ``C.jsonl.gz`` — reviews: ``user_id``, ``parent_asin``, ``asin``, ``rating`` (1–5),
  ``timestamp`` (**milliseconds**), ``title``, ``text``, ``images``, ``helpful_vote``,
  ``verified_purchase``;
- ``meta_C.jsonl.gz`` — one line per item: ``parent_asin``, ``title`` (short, ambiguous:
  "Signature item 123"), ``main_category``, ``categories`` (``["Demo"]``: the real category is
  hidden), ``description`` / ``features`` (neutral sentences), ``details``, ``store``, ``price``,
  ``average_rating``, ``rating_number``, ``images`` = ``[{thumb, large, hi_res, variant: "MAIN"}]``;
- ``images/<parent_asin>.png`` — the picture (RGB PNG, ``image_size`` px) that draws the item's
  hidden attributes (see :mod:`benchmark.demo.render`);
- ``reference_captions.jsonl`` — ``{parent_asin, caption, source: "demo-generator"}``: a sentence
  stated from the attributes the generator drew. Generator output, **not** model output; it lets
  the demo run VLM4Rec's text path without LVLM weights;
- ``hidden_attributes.jsonl`` — the ground truth (category, style, occasion, material, colour)
  for analysis and tests; no model may read it;
- ``demo.json`` — parameters, counts and the sha256 of every file, written last: a folder with a
  matching ``demo.json`` is complete and is reused instead of regenerated.

Image URLs in the meta file are absolute ``file://`` URIs by default (any consumer can open them
without knowing the folder); ``image_urls="relative"`` writes ``images/<asin>.png`` relative to
the meta file's folder instead, which keeps the meta bytes independent of where the folder lives.

Users have latent tastes over (category, style, occasion) drawn from a few shared archetypes
(which gives collaborative signal) and only a weak colour preference, so the semantics in the
captions predict interactions far better than colour does. Every user has ≥ ``min_user``
interactions and every item ≥ ``min_item``, so 5-core filtering keeps everything.
Same arguments → byte-identical files (gzip headers carry no time or name).
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np

from benchmark.demo.attributes import CATEGORIES, COLOURS, OCCASIONS, STYLES, ItemAttributes
from benchmark.demo.render import render_item
from benchmark.io import read_json, write_json

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
CAPTION_SOURCE = "demo-generator"
MANIFEST_NAME = "demo.json"
_T0 = int(datetime(2019, 1, 1, tzinfo=timezone.utc).timestamp())
_T1 = int(datetime(2022, 12, 31, tzinfo=timezone.utc).timestamp())
_DAY = 86_400

# Preference weights: semantics dominate, colour barely matters (the point of the demo).
W_CATEGORY, W_STYLE, W_OCCASION, W_COLOUR, W_POPULARITY = 3.0, 2.0, 1.5, 0.3, 0.4

# Deliberately uninformative: no word is an attribute value or part of a caption phrase.
_TITLE_WORDS = ("Essential", "Signature", "Favourite", "Premium", "Select", "Original", "Studio", "Trusted")
_TITLE_NOUNS = ("item", "piece", "pick", "find")
_DESCRIPTIONS = (
    "Ships in recyclable packaging.",
    "Easy returns within 30 days.",
    "A favourite of many customers.",
    "Part of our seasonal collection.",
    "Carefully checked before shipping.",
    "Limited stock available.",
)
_FEATURES = ("Gift ready", "Quality checked", "Imported", "Made to last")
_REVIEW_TEXT = {
    1: ("Not for me.", "Disappointed, sending it back.", "Did not like it at all."),
    2: ("Not quite what I hoped.", "It is okay, but I expected more.", "Meh."),
    3: ("Fine for the price.", "Average, does the job.", "It is alright."),
    4: ("Really nice, would buy again.", "Good quality, happy with it.", "Pretty much what I wanted."),
    5: ("Love it!", "Exactly my taste, perfect.", "Absolutely great, highly recommend."),
}
_REVIEW_TITLE = {1: "One star", 2: "Two stars", 3: "Three stars", 4: "Four stars", 5: "Five stars"}


@dataclass(frozen=True)
class DemoPaths:
    """Where :func:`generate_demo` put each file."""

    root: Path
    reviews: Path
    meta: Path
    images_dir: Path
    captions: Path
    attributes: Path
    manifest: Path
    category: str
    reused: bool = False
    """True when a complete, matching demo was already there and nothing was written."""


@dataclass(frozen=True)
class _User:
    categories: tuple[str, ...]
    styles: tuple[str, ...]
    occasions: tuple[str, ...]
    colour: str


def generate_demo(
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    n_items: int = 800,
    n_users: int = 600,
    min_interactions: int = 15,
    max_interactions: int = 25,
    min_user: int = 10,
    min_item: int = 5,
    category: str = "Demo",
    image_size: int = 64,
    image_urls: Literal["file", "relative"] = "file",
    force: bool = False,
) -> DemoPaths:
    """Write the demo catalogue to ``out_dir`` (see the module docstring); deterministic by ``seed``.

    Each user gets ``min_interactions``–``max_interactions`` interactions (then items below
    ``min_item`` get extra interactions from the users who like them most). A folder that already
    holds a complete demo with the same parameters is reused unless ``force``.
    """
    if image_urls not in ("file", "relative"):
        raise ValueError(f"image_urls must be 'file' or 'relative', got {image_urls!r}")
    if not (min_user <= min_interactions <= max_interactions <= n_items):
        raise ValueError(
            f"need min_user ({min_user}) <= min_interactions ({min_interactions}) <= "
            f"max_interactions ({max_interactions}) <= n_items ({n_items})"
        )
    if n_users < min_item:
        raise ValueError(f"n_users ({n_users}) must be at least min_item ({min_item})")
    root = Path(out_dir).resolve()
    params = {
        "generator_version": GENERATOR_VERSION,
        "seed": int(seed),
        "n_items": int(n_items),
        "n_users": int(n_users),
        "min_interactions": int(min_interactions),
        "max_interactions": int(max_interactions),
        "min_user": int(min_user),
        "min_item": int(min_item),
        "category": category,
        "image_size": int(image_size),
        "image_urls": image_urls,
    }
    paths = _paths(root, category)
    if not force and _is_complete(paths, params):
        log.info("demo catalogue in %s is complete and matches; reusing it", root)
        return dataclasses.replace(paths, reused=True)

    rng = np.random.default_rng(seed)
    items = _sample_items(rng, n_items)
    users = _sample_users(rng, n_users)
    inter = _sample_interactions(rng, items, users, min_interactions, max_interactions, min_item)

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".demo-staging-", dir=root))
    try:
        (staging / "images").mkdir()
        image_rng = np.random.default_rng([seed, 1])
        for idx, attrs in enumerate(items):
            img = render_item(attrs, image_rng, size=image_size)
            img.save(staging / "images" / f"{_item_id(idx)}.png", format="PNG", optimize=False)
        caption_rng = np.random.default_rng([seed, 2])
        captions = [
            {
                "parent_asin": _item_id(i),
                "caption": a.caption(int(caption_rng.integers(0, 3))),
                "source": CAPTION_SOURCE,
            }
            for i, a in enumerate(items)
        ]
        _write_jsonl(staging / "reference_captions.jsonl", captions)
        _write_jsonl(
            staging / "hidden_attributes.jsonl",
            [{"parent_asin": _item_id(i), **a.as_dict()} for i, a in enumerate(items)],
        )
        text_rng = np.random.default_rng([seed, 3])
        _write_jsonl(staging / paths.reviews.name, _review_rows(inter, text_rng), gz=True)
        meta_rng = np.random.default_rng([seed, 4])
        _write_jsonl(staging / paths.meta.name, _meta_rows(items, inter, meta_rng, root, image_urls, category), gz=True)

        # Move into place file by file (each rename atomic); demo.json last marks completion.
        paths.manifest.unlink(missing_ok=True)
        paths.images_dir.mkdir(exist_ok=True)
        for f in sorted((staging / "images").iterdir()):
            os.replace(f, paths.images_dir / f.name)
        for name in (paths.captions.name, paths.attributes.name, paths.reviews.name, paths.meta.name):
            os.replace(staging / name, root / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    files = _file_hashes(paths, n_items)
    n_users_out = len({u for u, _, _, _ in inter})
    manifest = {
        "params": params,
        "counts": {"items": n_items, "users": n_users_out, "interactions": len(inter)},
        "files": files,
        "note": "Synthetic demo data generated by vlm4rec-bench; reference captions are generator output, "
        "not model output. Results on it say nothing about real data (see datasets/demo.md).",
    }
    write_json(paths.manifest, manifest)
    log.info("demo catalogue: %d items, %d users, %d interactions in %s", n_items, n_users_out, len(inter), root)
    return paths


# ------------------------------------------------------------------------------------- sampling
def _item_id(idx: int) -> str:
    return f"DEMO{idx:06d}"


def _user_id(idx: int) -> str:
    return f"DU{idx:06d}"


def _sample_items(rng: np.random.Generator, n: int) -> list[ItemAttributes]:
    cats, colours, occasions = list(CATEGORIES), list(COLOURS), list(OCCASIONS)
    out = []
    for _ in range(n):
        cat = cats[rng.integers(len(cats))]
        materials = CATEGORIES[cat][1]
        out.append(
            ItemAttributes(
                category=cat,
                style=STYLES[rng.integers(len(STYLES))],
                occasion=occasions[rng.integers(len(occasions))],
                material=materials[rng.integers(len(materials))],
                colour=colours[rng.integers(len(colours))],
            )
        )
    return out


def _pick(rng: np.random.Generator, values: list[str], p_two: float) -> tuple[str, ...]:
    k = 2 if rng.random() < p_two else 1
    return tuple(sorted(values[i] for i in rng.choice(len(values), size=k, replace=False)))


def _sample_users(rng: np.random.Generator, n: int) -> list[_User]:
    """Users copy one of a few shared archetypes, a third with one category swapped."""
    cats, occasions, colours = list(CATEGORIES), list(OCCASIONS), list(COLOURS)
    n_arch = max(4, n // 20)
    archetypes = [
        (_pick(rng, cats, 0.5), _pick(rng, list(STYLES), 0.5), _pick(rng, occasions, 0.3)) for _ in range(n_arch)
    ]
    users = []
    for _ in range(n):
        c, s, o = archetypes[rng.integers(n_arch)]
        if rng.random() < 0.3:
            swapped = list(c)
            swapped[rng.integers(len(swapped))] = cats[rng.integers(len(cats))]
            c = tuple(sorted(set(swapped)))
        users.append(_User(c, s, o, colours[rng.integers(len(colours))]))
    return users


def _affinity(items: list[ItemAttributes], users: list[_User], popularity: np.ndarray) -> np.ndarray:
    def onehot(values: Iterable[str], vocab: list[str]) -> np.ndarray:
        v = np.zeros(len(vocab))
        for x in values:
            v[vocab.index(x)] = 1.0
        return v

    cats, occs, cols = list(CATEGORIES), list(OCCASIONS), list(COLOURS)
    styles = list(STYLES)
    i_cat = np.stack([onehot([a.category], cats) for a in items])
    i_sty = np.stack([onehot([a.style], styles) for a in items])
    i_occ = np.stack([onehot([a.occasion], occs) for a in items])
    i_col = np.stack([onehot([a.colour], cols) for a in items])
    u_cat = np.stack([onehot(u.categories, cats) for u in users])
    u_sty = np.stack([onehot(u.styles, styles) for u in users])
    u_occ = np.stack([onehot(u.occasions, occs) for u in users])
    u_col = np.stack([onehot([u.colour], cols) for u in users])
    return (
        W_CATEGORY * u_cat @ i_cat.T
        + W_STYLE * u_sty @ i_sty.T
        + W_OCCASION * u_occ @ i_occ.T
        + W_COLOUR * u_col @ i_col.T
        + W_POPULARITY * popularity[None, :]
    )


def _sample_interactions(
    rng: np.random.Generator,
    items: list[ItemAttributes],
    users: list[_User],
    lo: int,
    hi: int,
    min_item: int,
) -> list[tuple[int, int, int, int]]:
    """``(user, item, rating, timestamp_ms)`` rows, sorted by user then time."""
    n_items, n_users = len(items), len(users)
    popularity = rng.normal(size=n_items)
    aff = _affinity(items, users, popularity)
    chosen: list[list[int]] = []
    for u in range(n_users):
        logits = aff[u] - aff[u].max()
        p = np.exp(logits)
        p /= p.sum()
        k = int(rng.integers(lo, hi + 1))
        chosen.append([int(i) for i in rng.choice(n_items, size=k, replace=False, p=p)])
    # Top up rare items with the users who like them most (ties: lower user index).
    counts = np.bincount(np.concatenate([np.asarray(c) for c in chosen]), minlength=n_items)
    for rare in np.flatnonzero(counts < min_item):
        order = np.lexsort((np.arange(n_users), -aff[:, rare]))
        for u in order:
            if counts[rare] >= min_item:
                break
            if rare not in chosen[u]:
                chosen[u].append(int(rare))
                counts[rare] += 1
    rows = []
    for u, its in enumerate(chosen):
        start = int(rng.integers(_T0, _T1))
        gaps = rng.exponential(20 * _DAY, size=len(its)).astype(np.int64) + 3600
        secs = start + np.cumsum(gaps)
        ms = secs * 1000 + rng.integers(0, 1000, size=len(its))
        for i, t in zip(its, ms):
            a, usr = items[i], users[u]
            match = (
                W_CATEGORY * (a.category in usr.categories)
                + W_STYLE * (a.style in usr.styles)
                + W_OCCASION * (a.occasion in usr.occasions)
            ) / (W_CATEGORY + W_STYLE + W_OCCASION)
            rating = int(np.clip(np.rint(2.2 + 2.6 * match + rng.normal(0, 0.7)), 1, 5))
            rows.append((u, int(i), rating, int(t)))
    return rows


# ------------------------------------------------------------------------------------- records
def _review_rows(inter: list[tuple[int, int, int, int]], rng: np.random.Generator) -> Iterable[dict[str, Any]]:
    for u, i, rating, ts in inter:
        texts = _REVIEW_TEXT[rating]
        yield {
            "rating": float(rating),
            "title": _REVIEW_TITLE[rating],
            "text": texts[int(rng.integers(len(texts)))],
            "images": [],
            "asin": _item_id(i),
            "parent_asin": _item_id(i),
            "user_id": _user_id(u),
            "timestamp": ts,
            "helpful_vote": int(rng.poisson(0.5)),
            "verified_purchase": bool(rng.random() < 0.9),
        }


def _meta_rows(
    items: list[ItemAttributes],
    inter: list[tuple[int, int, int, int]],
    rng: np.random.Generator,
    root: Path,
    image_urls: str,
    category: str,
) -> Iterable[dict[str, Any]]:
    ratings: dict[int, list[int]] = {}
    for _, i, r, _ in inter:
        ratings.setdefault(i, []).append(r)
    for idx in range(len(items)):
        asin = _item_id(idx)
        rel = f"images/{asin}.png"
        url = (root / rel).as_uri() if image_urls == "file" else rel
        rs = ratings.get(idx, [])
        first = datetime.fromtimestamp(int(rng.integers(_T0 - 365 * _DAY, _T0)), tz=timezone.utc)
        yield {
            "main_category": f"{category} Fashion",
            "title": f"{_TITLE_WORDS[rng.integers(len(_TITLE_WORDS))]} "
            f"{_TITLE_NOUNS[rng.integers(len(_TITLE_NOUNS))]} {int(rng.integers(100, 1000))}",
            "average_rating": round(float(np.mean(rs)), 1) if rs else None,
            "rating_number": len(rs),
            "features": [_FEATURES[rng.integers(len(_FEATURES))]],
            "description": [_DESCRIPTIONS[rng.integers(len(_DESCRIPTIONS))]],
            "price": round(float(rng.uniform(8, 200)), 2) if rng.random() < 0.85 else None,
            "images": [{"thumb": url, "large": url, "variant": "MAIN", "hi_res": url}],
            "videos": [],
            "store": f"Demo Store {chr(ord('A') + int(rng.integers(12)))}",
            "categories": [category],
            "details": {"Item model number": f"DM-{idx:06d}", "Date First Available": first.strftime("%B %d, %Y")},
            "parent_asin": asin,
            "bought_together": None,
        }


# ------------------------------------------------------------------------------------- files
def _paths(root: Path, category: str) -> DemoPaths:
    return DemoPaths(
        root=root,
        reviews=root / f"{category}.jsonl.gz",
        meta=root / f"meta_{category}.jsonl.gz",
        images_dir=root / "images",
        captions=root / "reference_captions.jsonl",
        attributes=root / "hidden_attributes.jsonl",
        manifest=root / MANIFEST_NAME,
        category=category,
    )


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]], gz: bool = False) -> None:
    buf = io.BytesIO()
    for row in rows:
        buf.write(json.dumps(row, ensure_ascii=False, sort_keys=False).encode("utf-8"))
        buf.write(b"\n")
    data = buf.getvalue()
    if gz:
        out = io.BytesIO()
        # mtime=0 and no file name: same content -> same bytes.
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as fh:
            fh.write(data)
        data = out.getvalue()
    path.write_bytes(data)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _file_hashes(paths: DemoPaths, n_items: int) -> dict[str, str]:
    files = {p.name: _sha256(p) for p in (paths.reviews, paths.meta, paths.captions, paths.attributes)}
    for idx in range(n_items):
        p = paths.images_dir / f"{_item_id(idx)}.png"
        files[f"images/{p.name}"] = _sha256(p)
    return files


def _is_complete(paths: DemoPaths, params: dict[str, Any]) -> bool:
    if not paths.manifest.exists():
        return False
    try:
        manifest = read_json(paths.manifest)
        if manifest.get("params") != params:
            return False
        for rel, digest in manifest["files"].items():
            p = paths.root / rel
            if not p.is_file() or _sha256(p) != digest:
                log.warning("demo file %s is missing or changed; regenerating", p)
                return False
    except (OSError, ValueError, KeyError):
        return False
    return True


def read_reference_captions(path: str | os.PathLike[str]) -> dict[str, str]:
    """``{parent_asin: caption}`` from a ``reference_captions.jsonl`` (generator output, not a model's)."""
    out: dict[str, str] = {}
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if row.get("source") != CAPTION_SOURCE:
                raise ValueError(f"{path}:{n}: caption source {row.get('source')!r} is not {CAPTION_SOURCE!r}")
            out[str(row["parent_asin"])] = str(row["caption"])
    return out


def read_hidden_attributes(path: str | os.PathLike[str]) -> dict[str, dict[str, str]]:
    """``{parent_asin: {category, style, occasion, material, colour}}`` (ground truth, for analysis only)."""
    out: dict[str, dict[str, str]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                out[str(row.pop("parent_asin"))] = row
    return out
