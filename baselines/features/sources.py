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
(``no_image``, ``remote_not_fetched``, ``file_not_found``, ``outside_root``); decoding failures
are counted by the extractor that opens the file (:func:`benchmark.data.image_io.open_image`,
with the fetcher's pixel limit).

Catalogue lines and index files are untrusted: a local path (``file://``, absolute, ``../``,
symlinks) is used only when it resolves inside ``images`` or one of the allowed ``roots`` (the
dataset's folders); anything else is ``outside_root`` (:func:`benchmark.data.image_io.confine_path`).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmark.data.image_io import OutsideRootError, confine_path, is_remote, local_path, url_or_none
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


def _confined(ref: str | Path, allowed: Sequence[Path], base: Path | None) -> tuple[Path | None, str]:
    """A local reference inside ``allowed`` (``(path, "")``), or ``(None, reason)``."""
    path = local_path(str(ref)) if not isinstance(ref, Path) else ref
    if path is None:
        return None, "file_not_found"
    try:
        return confine_path(path, allowed, base=base), ""
    except OutsideRootError:
        return None, "outside_root"


def resolve_images(
    items: pd.DataFrame, images: str | Path | None = None, roots: Sequence[str | Path] = ()
) -> ImageSources:
    """Local image file of every item (see the module docstring for the order tried); local
    paths must lie inside ``images`` or ``roots``."""
    # Absolute, so a path found under it is not taken as relative to it a second time (a relative
    # folder such as the demo's ``datasets/demo/raw/images`` would otherwise be joined twice).
    root = Path(images).absolute() if images is not None else None
    allowed = [p for p in (root, *(Path(r) for r in roots)) if p is not None]
    by_url, by_item = read_image_index(root) if root is not None and root.is_dir() else ({}, {})
    paths: list[Path | None] = []
    reasons: dict[int, str] = {}
    cols = set(items.columns)
    for pos, row in enumerate(items.itertuples(index=False)):
        r = row._asdict()
        found: Path | None = None
        reason = "no_image"
        refs = [u for u in (url_or_none(r[c]) for c in ("image_path", "image_url") if c in cols) if u is not None]
        for ref in refs:
            if is_remote(ref):
                indexed = by_url.get(ref)
                cand, why = _confined(indexed, allowed, root) if indexed is not None else (None, "")
                reason = why if why == "outside_root" else "remote_not_fetched"
            else:
                cand, why = _confined(ref, allowed, root)
                reason = why or "file_not_found"
            if cand is not None and cand.is_file():
                found = cand
                break
        stem = str(r["orig_item_id"])
        if found is None and stem in by_item:
            cand, _ = _confined(by_item[stem], allowed, root)
            found = cand if cand is not None and cand.is_file() else None
        if found is None and root is not None:
            found = next((root / f"{stem}{s}" for s in IMAGE_SUFFIXES if (root / f"{stem}{s}").is_file()), None)
            if found is not None:
                found, _ = _confined(found, allowed, root)  # a symlink named after the item
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
