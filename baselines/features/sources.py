"""Where an item's image and text come from, and the hashes that key feature caches.

Images, in order of preference for each item of a split's ``items`` table:

1. an ``image_path`` column (absolute, or relative to ``images``),
2. ``image_url`` when it is a ``file://`` URL or a local path (absolute, or relative to ``images``),
3. for ``http(s)`` URLs, the images directory's index: ``images/index.{parquet,csv,jsonl,json}``
   with columns ``url`` and ``path`` (paths relative to ``images``), as
   :func:`benchmark.data.images.fetch_images` writes (``index.parquet``);
4. the same index looked up by the item's original id (its ``item`` column), if it has one;
5. a file in ``images`` named after the item's original id (``<id>.jpg|jpeg|png|webp|gif``).

Nothing is downloaded here. An item without a usable local file is reported with a reason
(``no_image``, ``remote_not_fetched``, ``file_not_found``); decoding failures are counted
by the extractor that opens the file.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import pandas as pd

from benchmark.io import sha256_file

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif")
INDEX_NAMES = ("index.parquet", "index.csv", "index.jsonl", "index.json")


@dataclass
class ImageSources:
    """One local path (or ``None``) per item, in item-id order, with the reason for each ``None``."""

    paths: list[Path | None]
    reasons: dict[int, str] = field(default_factory=dict)

    @property
    def missing(self) -> Counter:
        """Count of items without an image, per reason."""
        return Counter(self.reasons.values())


def read_image_index(images: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """``(url -> local path, item id -> local path)`` from an images directory's index file."""
    for name in INDEX_NAMES:
        p = images / name
        if not p.exists():
            continue
        if name.endswith(".parquet"):
            df = pd.read_parquet(p)
        elif name.endswith(".csv"):
            df = pd.read_csv(p, dtype=str, keep_default_na=False)
        elif name.endswith(".jsonl"):
            df = pd.read_json(p, lines=True, dtype=False)
        else:
            with open(p, encoding="utf-8") as fh:
                obj = json.load(fh)
            df = (
                pd.DataFrame(list(obj.items()), columns=["url", "path"]) if isinstance(obj, dict) else pd.DataFrame(obj)
            )
        missing = [c for c in ("url", "path") if c not in df.columns]
        if missing:
            raise ValueError(f"image index {p} lacks column(s) {missing}; has {list(df.columns)}")
        by_url: dict[str, Path] = {}
        by_item: dict[str, Path] = {}
        items = df["item"] if "item" in df.columns else [None] * len(df)
        for url, path, item in zip(df["url"], df["path"], items):
            if isinstance(path, str) and path:
                local = Path(path) if Path(path).is_absolute() else images / path
                by_url[str(url)] = local
                if item is not None:
                    by_item[str(item)] = local
        return by_url, by_item
    return {}, {}


def _local(ref: str, images: Path | None) -> Path | None:
    parsed = urlparse(ref)
    if parsed.scheme == "file":
        path = Path(unquote(parsed.path))
    elif parsed.scheme == "" or (len(parsed.scheme) == 1 and ref[1:3] in (":\\", ":/")):  # plain or C:\ path
        path = Path(ref)
    else:
        return None
    if not path.is_absolute() and images is not None:
        path = images / path
    return path


def resolve_images(items: pd.DataFrame, images: str | Path | None = None) -> ImageSources:
    """Local image file of every item (see the module docstring for the order tried)."""
    root = Path(images) if images is not None else None
    by_url, by_item = read_image_index(root) if root is not None and root.is_dir() else ({}, {})
    paths: list[Path | None] = []
    reasons: dict[int, str] = {}
    cols = set(items.columns)
    for pos, row in enumerate(items.itertuples(index=False)):
        r = row._asdict()
        found: Path | None = None
        reason = "no_image"
        refs = [r[c] for c in ("image_path", "image_url") if c in cols and isinstance(r[c], str) and r[c]]
        for ref in refs:
            if urlparse(ref).scheme in ("http", "https"):
                cand = by_url.get(ref)
                reason = "remote_not_fetched"
            else:
                cand = _local(ref, root)
                reason = "file_not_found"
            if cand is not None and cand.is_file():
                found = cand
                break
        stem = str(r["orig_item_id"])
        if found is None and stem in by_item and by_item[stem].is_file():
            found = by_item[stem]
        if found is None and root is not None:
            found = next((root / f"{stem}{s}" for s in IMAGE_SUFFIXES if (root / f"{stem}{s}").is_file()), None)
        paths.append(found)
        if found is None:
            reasons[pos] = reason
    return ImageSources(paths, reasons)


def item_texts(items: pd.DataFrame, fields: Sequence[str] = ("title",), separator: str = ". ") -> list[str]:
    """One text per item: the non-empty ``fields`` joined by ``separator`` (stripped)."""
    bad = [f for f in fields if f not in items.columns]
    if bad:
        raise ValueError(f"items table has no column(s) {bad}; has {list(items.columns)}")
    out = []
    for vals in zip(*(items[f] for f in fields)):
        parts = [str(v).strip() for v in vals if isinstance(v, str) and v.strip()]
        out.append(separator.join(parts))
    return out


def hash_strings(values: Iterable[str | None]) -> str:
    """sha256 over a sequence of strings (``None`` distinct from ``""``), order-sensitive."""
    h = hashlib.sha256()
    for v in values:
        h.update(b"\x00" if v is None else b"\x01" + v.encode("utf-8"))
        h.update(b"\x1e")
    return h.hexdigest()


def image_hashes(paths: Sequence[Path | None]) -> list[str | None]:
    """sha256 of each image file's bytes (``None`` where there is no file)."""
    return [sha256_file(p) if p is not None else None for p in paths]
