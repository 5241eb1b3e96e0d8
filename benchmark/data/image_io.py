"""Reading item images safely: one rule for each of the three ways untrusted metadata can hurt.

Catalogue lines are untrusted input, and every stage that touches an item's image (``data
images``, the CLIP and pixel features, the describers) goes through these functions:

- :func:`url_or_none` — what a *missing* image URL is: ``None``, NaN, an empty or blank string,
  or the text pandas writes for a missing value (``nan``, ``None``, ``<NA>``, ``null``). Missing
  is missing: it never becomes a relative path named ``nan``.
- :func:`confine_path` — a local image reference (``file://`` URL, absolute or relative path,
  ``../``) is read only when it resolves, symlinks followed, inside an allowed root: the
  dataset's folder or an image root the user configured. Anything else is refused with
  :class:`OutsideRootError` (reason ``outside_root``), which callers count per item, so a
  catalogue line cannot make the tool copy ``~/.ssh/id_rsa.png`` into an image folder or send
  it to a describer endpoint.
- :func:`open_image` — decoding with a pixel limit (:data:`DEFAULT_MAX_PIXELS`, the fetcher's),
  checked from the header before any pixel is decoded, so a 17 KB file cannot expand to
  gigabytes in memory.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse
from urllib.request import url2pathname

from benchmark.errors import BenchError

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_MAX_PIXELS = 40_000_000
"""Larger than any Amazon hi-res product image (≈ 1500×1500 to 3000×3000), far below a bomb."""
#: texts that stand for a missing value (pandas' spellings), compared case-insensitively
MISSING_TEXTS = frozenset({"", "nan", "none", "null", "<na>", "nat"})
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"RIFF")


class ImageRefused(BenchError):
    """An image that is not read or not decoded; ``reason`` starts with its kind
    (``outside_root``, ``too_many_pixels``, ``not_an_image``, ``corrupt_image``, ``empty``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def kind(self) -> str:
        return self.reason.split(":", 1)[0]


class OutsideRootError(ImageRefused):
    """A local image path that resolves outside every allowed root."""


def url_or_none(value: Any) -> str | None:
    """An image URL / path as a stripped string, or ``None`` when it is missing (module doc)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if not isinstance(value, str):
        # pd.NA, NaT, numpy scalars: anything but text is not a URL
        return None
    text = value.strip()
    return None if text.lower() in MISSING_TEXTS else text


def urls_of(values: Any) -> list[str]:
    """The present URLs of a list-like (a catalogue's ``image_urls``), order kept."""
    if values is None or isinstance(values, (str, bytes)):
        return []
    try:
        items: Iterable[Any] = list(values)
    except TypeError:
        return []
    return [u for u in (url_or_none(v) for v in items) if u is not None]


def is_remote(ref: str) -> bool:
    return urlparse(ref).scheme.lower() in ("http", "https")


def local_path(ref: str) -> Path | None:
    """The path a ``file://`` URL or a plain (absolute or relative) path names; ``None`` for any
    other scheme (``http(s)``, ``s3``, …). Nothing is resolved or checked here."""
    parsed = urlparse(ref)
    scheme = parsed.scheme.lower()
    if scheme == "file":
        return Path(url2pathname(unquote(parsed.path)))
    if scheme == "" or (len(scheme) == 1 and ref[1:3] in (":\\", ":/")):  # plain, or a C:\ path
        return Path(ref)
    return None


def confine_path(
    path: str | os.PathLike[str], roots: Sequence[str | os.PathLike[str]], base: str | os.PathLike[str] | None = None
) -> Path:
    """``path`` resolved (relative to ``base``, else to the first root; symlinks followed) when it
    lies inside one of ``roots``; otherwise :class:`OutsideRootError`. With no roots, nothing
    local is allowed."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        anchor = base if base is not None else (roots[0] if roots else None)
        if anchor is None:
            raise OutsideRootError(f"outside_root: relative path {str(path)!r} and no allowed image folder")
        p = Path(anchor) / p
    resolved = p.resolve()
    allowed = [Path(r).expanduser().resolve() for r in roots]
    if not any(resolved == r or resolved.is_relative_to(r) for r in allowed):
        shown = ", ".join(str(r) for r in allowed) or "none"
        raise OutsideRootError(f"outside_root: {path} resolves outside the allowed folders ({shown})")
    return resolved


def open_image(source: str | os.PathLike[str] | bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Decode an image file (or its bytes) to a loaded RGB :class:`PIL.Image.Image`.

    The pixel count is checked from the header before anything is decoded; over ``max_pixels``
    (or PIL's own bomb limit) it is refused as ``too_many_pixels``. Anything PIL cannot read is
    ``not_an_image`` / ``corrupt_image``. Every refusal is an :class:`ImageRefused`.
    """
    from PIL import Image, UnidentifiedImageError

    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    if not data:
        raise ImageRefused("empty: zero bytes")
    try:
        with Image.open(io.BytesIO(data)) as im:
            check_pixels(im.size, max_pixels)
            rgb = im.convert("RGB")
            rgb.load()
            return rgb
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRefused(f"too_many_pixels: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise ImageRefused(not_an_image_reason(data)) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRefused(f"corrupt_image: {exc}") from exc


def check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    """Refuse a header that claims more than ``max_pixels`` pixels (before decoding)."""
    width, height = size
    if width * height > max_pixels:
        raise ImageRefused(f"too_many_pixels: {width}x{height} exceeds the limit of {max_pixels} pixels")


def not_an_image_reason(data: bytes) -> str:
    """Why PIL could not identify ``data``: a damaged image, an HTML page, or something else."""
    if data.startswith(_MAGIC):
        return "corrupt_image: image signature but unreadable header"
    head = data[:64].lstrip().lower()
    what = "an HTML page" if head.startswith((b"<!doctype html", b"<html")) else "not a known image format"
    return f"not_an_image: {what}"


__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageRefused",
    "OutsideRootError",
    "check_pixels",
    "confine_path",
    "is_remote",
    "local_path",
    "not_an_image_reason",
    "open_image",
    "url_or_none",
    "urls_of",
]
