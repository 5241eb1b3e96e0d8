"""Find an item's image on local disk and load it (PIL), with a reason when that fails.

Sources, in order: an ``image_path`` column (absolute, or relative to ``image_root``), then
``image_url`` and ``image_urls`` when they are ``file://`` URLs or local paths. Remote
``http(s)`` URLs are not fetched here (the data layer downloads images); such an item counts
as having no local image, with that reason.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
from PIL import Image

from vlm4rec.records import IMAGE_MISSING, IMAGE_OK, IMAGE_UNDECODABLE


def _candidates(row: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for col in ("image_path", "image_url"):
        v = row.get(col)
        if isinstance(v, str) and v:
            out.append(v)
    urls = row.get("image_urls")
    if isinstance(urls, (list, tuple, np.ndarray)):
        out.extend(str(u) for u in urls if isinstance(u, str) and u)
    return out


def resolve_image(row: Mapping[str, Any], image_root: str | Path | None = None) -> tuple[Path | None, str | None]:
    """``(local path, None)`` or ``(None, reason)`` for a catalogue row."""
    remote: str | None = None
    for ref in _candidates(row):
        parsed = urlparse(ref)
        if parsed.scheme in ("http", "https"):
            remote = remote or ref
            continue
        if parsed.scheme == "file":
            path = Path(unquote(parsed.path))
        elif parsed.scheme in ("",) or (len(parsed.scheme) == 1 and ref[1:3] in (":\\", ":/")):
            path = Path(ref)
        else:
            continue
        if not path.is_absolute() and image_root is not None:
            path = Path(image_root) / path
        if path.is_file():
            return path, None
    if remote:
        return None, f"remote image not available locally: {remote}"
    if _candidates(row):
        return None, "image file not found"
    return None, "item has no image"


def load_image(path: Path) -> tuple[Image.Image | None, bytes, str, str | None, str | None]:
    """``(RGB image or None, raw bytes, sha256 of the bytes, format, error)``."""
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            rgb = im.convert("RGB")
            rgb.load()
        return rgb, data, sha, fmt, None
    except Exception as exc:  # PIL raises many types for bad files
        return None, data, sha, None, f"{type(exc).__name__}: {exc}"


def image_status(row: Mapping[str, Any], image_root: str | Path | None = None) -> tuple[str, Path | None, str | None]:
    """Status (``ok``/``no_image``), the path, and the reason for a missing image (no decoding)."""
    path, reason = resolve_image(row, image_root)
    return (IMAGE_OK, path, None) if path is not None else (IMAGE_MISSING, None, reason)


__all__ = ["resolve_image", "load_image", "image_status", "IMAGE_OK", "IMAGE_MISSING", "IMAGE_UNDECODABLE"]
