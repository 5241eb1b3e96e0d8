"""What flows through the describe step: one catalogue item in, one description out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from PIL import Image

# Image statuses (the coverage report counts each).
IMAGE_OK = "ok"
IMAGE_MISSING = "no_image"
IMAGE_UNDECODABLE = "undecodable_image"
#: a local image reference outside the allowed folders (never read, never sent)
IMAGE_REFUSED = "outside_root"


@dataclass
class ItemRecord:
    """A catalogue item ready for a describer.

    ``fields`` holds the catalogue columns a prompt may use; ``image`` is decoded RGB (None when
    the item has no usable image, with ``image_status``/``image_error`` saying why);
    ``image_bytes`` are the file's original bytes (the HTTP describer sends them as-is).
    """

    item_id: int
    item: str
    fields: dict[str, Any]
    image: Image.Image | None = None
    image_bytes: bytes | None = None
    image_format: str | None = None
    image_sha256: str | None = None
    image_status: str = IMAGE_MISSING
    image_error: str | None = None
    prompt_sha256: str = ""
    key: str = ""


@dataclass
class DescriptionResult:
    """A describer's answer for one item: ``text`` on success, else ``error``."""

    item: str
    text: str | None = None
    error: str | None = None
    n_new_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """A usable description: no error and some non-blank text (an empty generation is a failure,
        so the coverage report counts it and the fallback policy applies, instead of calling it ok)."""
        return self.text is not None and bool(self.text.strip()) and self.error is None
