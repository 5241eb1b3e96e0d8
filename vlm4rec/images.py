"""Find an item's image on local disk and load it (PIL), with a reason when that fails.

Sources, in order: an ``image_path`` column (absolute, or relative to ``image_root``), then
``image_url`` and ``image_urls`` when they are ``file://`` URLs or local paths. Remote
``http(s)`` URLs are not fetched here (the data layer downloads images); such an item counts
as having no local image, with that reason.

Catalogue lines are untrusted: a local reference is used only when it resolves inside an
allowed root (:func:`benchmark.data.image_io.confine_path`: ``image_root`` and the ``roots``
the caller allows — the dataset's folder, a configured image folder); anything else gives the
item the status ``outside_root`` (counted in the coverage report) and is never read or sent.
Decoding goes through :func:`benchmark.data.image_io.open_image` (the fetcher's pixel limit).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image

from benchmark.data.image_io import (
    DEFAULT_MAX_PIXELS,
    ImageRefused,
    OutsideRootError,
    confine_path,
    is_remote,
    local_path,
    open_image,
    url_or_none,
    urls_of,
)
from vlm4rec.records import IMAGE_MISSING, IMAGE_OK, IMAGE_REFUSED, IMAGE_UNDECODABLE


def _candidates(row: Mapping[str, Any]) -> list[str]:
    out = [u for u in (url_or_none(row.get(col)) for col in ("image_path", "image_url")) if u is not None]
    out.extend(urls_of(row.get("image_urls")))
    return out


def _roots(image_root: str | Path | None, roots: Sequence[str | Path] | None) -> list[Path]:
    out = [Path(image_root)] if image_root is not None else []
    return out + [Path(r) for r in roots or ()]


def resolve_image(
    row: Mapping[str, Any], image_root: str | Path | None = None, roots: Sequence[str | Path] | None = None
) -> tuple[Path | None, str | None]:
    """``(local path, None)`` or ``(None, reason)`` for a catalogue row; a reason starting with
    ``outside_root`` means a reference pointed outside the allowed roots (``image_root`` + ``roots``)."""
    allowed = _roots(image_root, roots)
    remote: str | None = None
    refused: str | None = None
    for ref in _candidates(row):
        if is_remote(ref):
            remote = remote or ref
            continue
        path = local_path(ref)
        if path is None:
            continue
        try:
            path = confine_path(path, allowed, base=image_root)
        except OutsideRootError as exc:
            refused = refused or exc.reason
            continue
        if path.is_file():
            return path, None
    if refused:
        return None, refused
    if remote:
        return None, f"remote image not available locally: {remote}"
    if _candidates(row):
        return None, "image file not found"
    return None, "item has no image"


def load_image(
    path: Path, max_pixels: int = DEFAULT_MAX_PIXELS
) -> tuple[Image.Image | None, bytes, str, str | None, str | None]:
    """``(RGB image or None, raw bytes, sha256 of the bytes, format, error)``; an image over
    ``max_pixels`` is refused from its header, before anything is decoded."""
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    try:
        image = open_image(data, max_pixels)
    except ImageRefused as exc:
        return None, data, sha, None, exc.reason
    with Image.open(io.BytesIO(data)) as im:  # the header only: the format the HTTP describer declares
        fmt = im.format
    return image, data, sha, fmt, None


def image_status(
    row: Mapping[str, Any], image_root: str | Path | None = None, roots: Sequence[str | Path] | None = None
) -> tuple[str, Path | None, str | None]:
    """Status (``ok``/``no_image``/``outside_root``), the path, and the reason (no decoding)."""
    path, reason = resolve_image(row, image_root, roots)
    if path is not None:
        return IMAGE_OK, path, None
    status = IMAGE_REFUSED if reason and reason.startswith("outside_root") else IMAGE_MISSING
    return status, None, reason


__all__ = [
    "resolve_image",
    "load_image",
    "image_status",
    "IMAGE_OK",
    "IMAGE_MISSING",
    "IMAGE_REFUSED",
    "IMAGE_UNDECODABLE",
]
