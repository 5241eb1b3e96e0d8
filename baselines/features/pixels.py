"""``pixels``: a weight-free image feature for the offline demo (in place of CLIP).

For each image (decoded with PIL, converted to RGB):

- a joint RGB colour histogram with ``bins`` levels per channel (``bins**3`` values, each the
  fraction of pixels in that colour cell, so they sum to 1), computed on the image resized to at
  most ``max_side`` pixels on its longer side so large photos cost the same as small ones;
- a ``thumb × thumb`` RGB thumbnail (box-filtered), values in [0, 1], row-major, channels last.

The vector is ``[histogram * hist_weight ; thumbnail]`` (default ``8**3 + 8*8*3 = 704`` values).
It captures colour and coarse layout, nothing semantic, which is exactly what the demo's
"semantics beat colour" catalogue is built to expose. Deterministic: same bytes, same vector.
Items without an image or whose file does not decode get ``mask=False``; both are counted.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from baselines.features.sources import hash_strings, image_hashes, resolve_images
from benchmark.data.image_io import ImageRefused, open_image
from benchmark.features import ItemFeatures
from benchmark.split import Split

log = logging.getLogger(__name__)

# PIL's default bomb limit is kept; a decompression bomb is reported as undecodable.
PRODUCER_VERSION = 1


def pixel_vector(
    image: Image.Image, bins: int = 8, thumb: int = 8, max_side: int = 256, hist_weight: float = 1.0
) -> np.ndarray:
    """Histogram + thumbnail vector of one image (see module docstring)."""
    if bins < 1 or thumb < 1:
        raise ValueError(f"bins and thumb must be >= 1, got {bins}, {thumb}")
    rgb = image.convert("RGB")
    if max(rgb.size) > max_side:
        scale = max_side / max(rgb.size)
        rgb = rgb.resize((max(1, round(rgb.size[0] * scale)), max(1, round(rgb.size[1] * scale))), Image.Resampling.BOX)
    arr = np.asarray(rgb, dtype=np.uint8).reshape(-1, 3)
    cells = (arr.astype(np.int64) * bins) // 256
    flat = (cells[:, 0] * bins + cells[:, 1]) * bins + cells[:, 2]
    hist = np.bincount(flat, minlength=bins**3).astype(np.float64) / max(1, len(flat))
    small = np.asarray(rgb.resize((thumb, thumb), Image.Resampling.BOX), dtype=np.float64) / 255.0
    return np.concatenate([hist * hist_weight, small.reshape(-1)]).astype(np.float32)


def pixel_matrix(
    paths: Sequence[Path | None],
    bins: int = 8,
    thumb: int = 8,
    max_side: int = 256,
    hist_weight: float = 1.0,
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, Counter]:
    """``(values [n × d], mask [n], failures)`` for a list of image paths (``None`` = no image);
    images are decoded by :func:`benchmark.data.image_io.open_image` (the fetcher's pixel limit),
    a refused one counted as ``too_many_pixels`` or ``undecodable``."""
    dim = bins**3 + thumb * thumb * 3
    values = np.zeros((len(paths), dim), dtype=np.float32)
    mask = np.zeros(len(paths), dtype=bool)
    failures: Counter = Counter()
    for i, p in enumerate(tqdm(paths, desc="pixels", disable=not progress, unit="img")):
        if p is None:
            continue
        try:
            values[i] = pixel_vector(open_image(p), bins, thumb, max_side, hist_weight)
            mask[i] = True
        except ImageRefused as exc:  # count it, keep going (a bomb is named: it is not a broken file)
            failures["too_many_pixels" if exc.kind == "too_many_pixels" else "undecodable"] += 1
            log.warning("could not decode image %s: %s", p, exc.reason)
        except OSError as exc:
            failures["unreadable"] += 1
            log.warning("could not read image %s: %s", p, exc)
    return values, mask, failures


def pixel_features(
    split: Split,
    images: str | Path | None = None,
    bins: int = 8,
    thumb: int = 8,
    max_side: int = 256,
    hist_weight: float = 1.0,
    name: str = "pixels",
    progress: bool = True,
    roots: Sequence[str | Path] = (),
) -> ItemFeatures:
    """``pixels`` features for every item of ``split`` (images located by :func:`resolve_images`,
    inside ``images`` or ``roots``)."""
    src = resolve_images(split.items, images, roots)
    values, mask, failures = pixel_matrix(src.paths, bins, thumb, max_side, hist_weight, progress)
    missing = dict(src.missing) | dict(failures)
    if missing:
        log.warning(
            "pixels: %d of %d items have no feature (%s)",
            int((~mask).sum()),
            len(mask),
            ", ".join(f"{k}: {v}" for k, v in sorted(missing.items())),
        )
    provenance = {
        "producer": "pixels",
        "producer_version": PRODUCER_VERSION,
        "params": {"bins": bins, "thumb": thumb, "max_side": max_side, "hist_weight": hist_weight},
        "input_hash": hash_strings(image_hashes(src.paths)),
        "split_fingerprint": split.fingerprint,
        "n_items": len(mask),
        "n_missing": int((~mask).sum()),
        "missing": missing,
    }
    return ItemFeatures(name, values, mask, provenance)
