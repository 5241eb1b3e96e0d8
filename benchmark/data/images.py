"""Fetch a catalogue's product images: concurrent, retried, resumable, every file verified.

``fetch_images`` takes ``(item, url)`` pairs (or a catalogue / split-items table) and writes each
image as ``out_dir/<file stem>.<ext>`` where the stem is the item id itself when it is a safe
file name (``[A-Za-z0-9_-]``, ASINs are) and ``h_<sha256(item id)[:32]>`` otherwise. Every file
is decoded with PIL before it is written (atomically), with a pixel-count limit against
decompression bombs. Re-running skips items whose file already exists and decodes.

Outputs in ``out_dir``:
- ``index.parquet``: ``item``, ``path`` (relative to ``out_dir``), ``sha256`` (of the file bytes;
  the describer cache keys on it), ``url``, ``width``, ``height``, ``format``;
- ``fetch_report.json``: counts and every failure as ``{item, url, reason}`` (never silent).

URLs may be ``http(s)://``, ``file://`` or plain local paths (relative ones resolve against
``base_dir``); a local file is read only inside ``base_dir`` or an allowed ``roots`` folder
(:func:`benchmark.data.image_io.confine_path`), anything else fails as ``outside_root``. A missing
URL (None, NaN, blank, ``nan``) is ``no_url``, never a path.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import re
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
import requests
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from benchmark.data.image_io import (
    DEFAULT_MAX_PIXELS,
    ImageRefused,
    check_pixels,
    confine_path,
    local_path,
    not_an_image_reason,
    url_or_none,
)
from benchmark.errors import BenchError
from benchmark.io import atomic_path, write_json, write_parquet

log = logging.getLogger(__name__)

INDEX_NAME = "index.parquet"
REPORT_NAME = "fetch_report.json"
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,120}$")
_EXT = {"JPEG": "jpg", "MPO": "jpg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "BMP": "bmp", "TIFF": "tif"}
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_pixel_lock = threading.Lock()


@dataclass(frozen=True)
class ImageFailure:
    item: str
    url: str | None
    reason: str


@dataclass(frozen=True)
class ImageRecord:
    item: str
    path: str
    sha256: str
    url: str
    width: int
    height: int
    format: str


@dataclass
class ImageFetchReport:
    """Outcome of :func:`fetch_images`: what was fetched, kept, or failed and why."""

    out_dir: Path
    n_items: int = 0
    fetched: int = 0
    existing: int = 0
    records: list[ImageRecord] = field(default_factory=list)
    failures: list[ImageFailure] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return len(self.records)

    @property
    def index_path(self) -> Path:
        return self.out_dir / INDEX_NAME

    @property
    def report_path(self) -> Path:
        return self.out_dir / REPORT_NAME

    def reasons(self) -> dict[str, int]:
        """Failure counts per reason kind (the text before the first ':')."""
        out: dict[str, int] = {}
        for f in self.failures:
            key = f.reason.split(":", 1)[0]
            out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))

    def summary(self) -> str:
        text = (
            f"{self.n_items} items: {self.ok} images ({self.fetched} fetched, {self.existing} already there), "
            f"{len(self.failures)} failed"
        )
        if self.failures:
            text += " — " + ", ".join(f"{k}: {v}" for k, v in self.reasons().items())
            text += f"; see {self.report_path}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "n_items": self.n_items,
            "ok": self.ok,
            "fetched": self.fetched,
            "existing": self.existing,
            "failed": len(self.failures),
            "reasons": self.reasons(),
            "failures": [asdict(f) for f in self.failures],
        }


class _Retryable(BenchError):
    pass


class _Failed(BenchError):
    pass


def image_stem(item: str) -> str:
    """File stem of an item's image: the id when it is a safe file name, else a hash of it."""
    item = str(item)
    if _SAFE_ID.match(item):
        return item
    return "h_" + hashlib.sha256(item.encode("utf-8")).hexdigest()[:32]


def pairs_from_table(df: pd.DataFrame) -> list[tuple[str, str | None]]:
    """``(item, image_url)`` pairs of a raw catalogue (``item``) or split items (``orig_item_id``)."""
    id_col = "item" if "item" in df.columns else "orig_item_id" if "orig_item_id" in df.columns else None
    if id_col is None or "image_url" not in df.columns:
        raise ValueError(f"table needs an item/orig_item_id column and image_url; has {list(df.columns)}")
    # not .where(notna, None): on a float column (all URLs missing) that keeps NaN, and str(NaN) is "nan"
    return [(str(i), url_or_none(u)) for i, u in zip(df[id_col], df["image_url"])]


def fetch_images(
    source: pd.DataFrame | Iterable[tuple[str, str | None]],
    out_dir: str | os.PathLike[str],
    *,
    workers: int = 8,
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 20.0,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    base_dir: str | os.PathLike[str] | None = None,
    roots: Sequence[str | os.PathLike[str]] = (),
    progress: bool = True,
) -> ImageFetchReport:
    """Fetch, verify and store one image per item; write ``index.parquet`` and ``fetch_report.json``.

    Items without a URL, duplicated item ids, HTTP errors, non-images, truncated files and images
    over ``max_pixels`` pixels or ``max_bytes`` bytes are failures with a reason, and so are local
    paths outside ``base_dir`` and ``roots`` (``outside_root``). Connection errors and 408/429/5xx
    are retried ``retries`` times, waiting ``backoff * 2**attempt`` seconds.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pairs = (
        pairs_from_table(source) if isinstance(source, pd.DataFrame) else [(str(i), url_or_none(u)) for i, u in source]
    )
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    allowed = (base, *(Path(r) for r in roots))
    report = ImageFetchReport(out_dir=out, n_items=len(pairs))

    todo: list[tuple[str, str]] = []
    seen: set[str] = set()
    existing_files = _existing_by_stem(out)
    for item, url in pairs:
        if item in seen:
            report.failures.append(ImageFailure(item, url, "duplicate_item: item listed more than once"))
            continue
        seen.add(item)
        if not url:
            report.failures.append(ImageFailure(item, None, "no_url: the catalogue has no image for this item"))
            continue
        todo.append((item, url))

    local = threading.local()

    def session() -> requests.Session:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return local.session

    def work(item: str, url: str) -> tuple[ImageRecord | None, bool, ImageFailure | None]:
        stem = image_stem(item)
        for path in existing_files.get(stem, ()):
            rec = _verify_existing(path, item, url, out, max_pixels)
            if rec is not None:
                return rec, True, None
        try:
            data = _read_with_retries(
                url, (base, allowed), session, retries=retries, backoff=backoff, timeout=timeout, max_bytes=max_bytes
            )
            fmt, width, height = _verify_image(data, max_pixels)
        except _Failed as exc:
            return None, False, ImageFailure(item, url, str(exc))
        path = out / f"{stem}.{_EXT.get(fmt, fmt.lower())}"
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        rec = ImageRecord(
            item=item,
            path=path.name,
            sha256=hashlib.sha256(data).hexdigest(),
            url=url,
            width=width,
            height=height,
            format=fmt,
        )
        return rec, False, None

    with _pixel_limit(max_pixels), ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = {pool.submit(work, item, url): (item, url) for item, url in todo}
        bar = tqdm(total=len(futures), desc="images", unit="img", disable=not progress, leave=False)
        for fut in as_completed(futures):
            item, url = futures[fut]
            try:
                rec, was_there, failure = fut.result()
            except Exception as exc:  # an unexpected bug must still be reported per item, not lost
                rec, was_there, failure = None, False, ImageFailure(item, url, f"error: {type(exc).__name__}: {exc}")
            if rec is not None:
                report.records.append(rec)
                report.existing += was_there
                report.fetched += not was_there
            if failure is not None:
                report.failures.append(failure)
            bar.update(1)
        bar.close()

    report.records.sort(key=lambda r: r.item)
    report.failures.sort(key=lambda f: (f.item, f.reason))
    index = pd.DataFrame(
        [asdict(r) for r in report.records], columns=["item", "path", "sha256", "url", "width", "height", "format"]
    )
    write_parquet(out / INDEX_NAME, index)
    write_json(out / REPORT_NAME, report.to_dict())
    if report.failures:
        log.warning("images: %s", report.summary())
    else:
        log.info("images: %s", report.summary())
    return report


def load_image_index(out_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """``index.parquet`` of a fetched image folder with ``path`` made absolute."""
    out = Path(out_dir)
    df = pd.read_parquet(out / INDEX_NAME)
    df["path"] = [str((out / p).resolve()) for p in df["path"]]
    return df


# ------------------------------------------------------------------------------------- internals
def _existing_by_stem(out: Path) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for p in out.iterdir():
        if p.is_file() and not p.name.startswith(".") and p.suffix.lstrip(".") in _EXT.values():
            found.setdefault(p.stem, []).append(p)
    return found


def _verify_existing(path: Path, item: str, url: str, out: Path, max_pixels: int) -> ImageRecord | None:
    data = path.read_bytes()
    try:
        fmt, width, height = _verify_image(data, max_pixels)
    except _Failed as exc:
        log.warning("existing %s is not a valid image (%s); fetching again", path, exc)
        return None
    return ImageRecord(
        item=item,
        path=path.name,
        sha256=hashlib.sha256(data).hexdigest(),
        url=url,
        width=width,
        height=height,
        format=fmt,
    )


@contextlib.contextmanager
def _pixel_limit(max_pixels: int) -> Iterator[None]:
    """Set PIL's bomb limit and make its warning an error for the duration (process-wide)."""
    with _pixel_lock:
        old = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = old


def _verify_image(data: bytes, max_pixels: int) -> tuple[str, int, int]:
    """Decode ``data`` fully; return (format, width, height) or raise :class:`_Failed`."""
    if not data:
        raise _Failed("empty: zero bytes")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt, (width, height) = im.format or "UNKNOWN", im.size
            check_pixels(im.size, max_pixels)  # before decoding anything: the header alone can claim a bomb
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except ImageRefused as exc:
        raise _Failed(exc.reason) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise _Failed(f"too_many_pixels: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise _Failed(not_an_image_reason(data)) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise _Failed(f"corrupt_image: {exc}") from exc
    return fmt, int(width), int(height)


def _read_with_retries(
    url: str,
    where: tuple[Path, Sequence[Path]],
    session: Any,
    *,
    retries: int,
    backoff: float,
    timeout: float,
    max_bytes: int,
) -> bytes:
    attempt = 0
    while True:
        try:
            return _read_once(url, where, session, timeout=timeout, max_bytes=max_bytes)
        except _Retryable as exc:
            if attempt >= retries:
                raise _Failed(f"{exc} (after {attempt + 1} attempts)") from exc
            time.sleep(backoff * (2**attempt))
            attempt += 1


def _read_once(url: str, where: tuple[Path, Sequence[Path]], session: Any, *, timeout: float, max_bytes: int) -> bytes:
    """The bytes of one image: an http(s) download, or a local file inside the allowed roots."""
    scheme = urlparse(url).scheme.lower()
    if scheme in ("http", "https"):
        return _download(url, session, timeout=timeout, max_bytes=max_bytes)
    ref = local_path(url)
    if ref is None:
        raise _Failed(f"unsupported_url: scheme {scheme!r}")
    base, roots = where
    try:
        path = confine_path(ref, roots, base=base)
    except ImageRefused as exc:
        raise _Failed(exc.reason) from exc
    if not path.is_file():
        raise _Failed(f"missing_file: {path}")
    size = path.stat().st_size
    if size > max_bytes:
        raise _Failed(f"too_large: {size} bytes > {max_bytes}")
    return path.read_bytes()


def _download(url: str, session: Any, *, timeout: float, max_bytes: int) -> bytes:
    try:
        resp = session().get(url, stream=True, timeout=timeout)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise _Retryable(f"connection_error: {exc}") from exc
    with resp:
        if resp.status_code in _RETRY_STATUS:
            raise _Retryable(f"http_{resp.status_code}: {resp.reason}")
        if resp.status_code != 200:
            raise _Failed(f"http_{resp.status_code}: {resp.reason}")
        length = resp.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise _Failed(f"too_large: {length} bytes > {max_bytes}")
        buf = bytearray()
        try:
            for block in resp.iter_content(1 << 16):
                buf += block
                if len(buf) > max_bytes:
                    raise _Failed(f"too_large: more than {max_bytes} bytes")
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Retryable(f"connection_error: {exc}") from exc
        if length and length.isdigit() and len(buf) < int(length):
            raise _Retryable(f"truncated: {len(buf)} of {length} bytes")
        return bytes(buf)


def read_catalogue_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A split folder's ``items.parquet``, or a catalogue ``.parquet``/``.csv`` file."""
    p = Path(path)
    if p.is_dir():
        if not (p / "items.parquet").exists():
            raise FileNotFoundError(f"{p} has no items.parquet (expected a prepared split folder)")
        p = p / "items.parquet"
    if p.suffix == ".parquet":
        return pd.read_parquet(p)
    if p.suffix == ".csv":
        df = pd.read_csv(p, dtype=str, keep_default_na=False)
        if "image_url" in df.columns:
            df["image_url"] = pd.Series([url_or_none(u) for u in df["image_url"]], index=df.index, dtype=object)
        return df
    raise ValueError(f"{p}: expected a split folder, a .parquet or a .csv catalogue")


__all__: Sequence[str] = (
    "DEFAULT_MAX_PIXELS",
    "ImageFailure",
    "ImageRecord",
    "ImageFetchReport",
    "fetch_images",
    "image_stem",
    "load_image_index",
    "pairs_from_table",
    "read_catalogue_table",
)
