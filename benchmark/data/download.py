"""Download the McAuley-lab Amazon review releases (2014, 2018, 2023) from their official URLs.

Every file goes through :func:`download_file`: HTTP ``Range`` resume from a ``<name>.part`` file,
retries with exponential backoff on connection errors and 5xx/429, atomic rename on completion,
and a ``downloads.json`` manifest next to the file recording url, size and sha256. Where an
official checksum is known (the Hugging Face 2023 files, shipped in
``benchmark/data/checksums/amazon2023_hf.json``) the download is verified against it; a mismatch
renames the data to ``<name>.part-corrupt`` (kept for inspection, never used) and raises
:class:`ChecksumError`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import requests
from tqdm.auto import tqdm

from benchmark.data.readers import RELEASES
from benchmark.errors import BenchError
from benchmark.io import read_json, sha256_file, write_json

log = logging.getLogger(__name__)

KINDS: tuple[str, ...] = ("reviews", "meta", "ratings", "splits")
MANIFEST_NAME = "downloads.json"
HF_CHECKSUMS = "amazon2023_hf.json"

#: Base URL of each (release, source). ``--base-url`` replaces it (mirrors, tests).
SOURCES: dict[tuple[str, str], str] = {
    ("2014", "snap"): "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles",
    ("2018", "ucsd"): "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2",
    ("2023", "ucsd"): "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023",
    ("2023", "mcauleylab"): "https://mcauleylab.ucsd.edu/public_datasets/data/amazon_2023",
    ("2023", "hf"): "https://huggingface.co/datasets/McAuley-Lab/Amazon-Reviews-2023/resolve/main",
}
DEFAULT_SOURCE: dict[str, str] = {"2014": "snap", "2018": "ucsd", "2023": "ucsd"}


@dataclass(frozen=True)
class FilePattern:
    """One row of the URL table: a remote path (relative to the source's base) and its local name.

    ``five_core``: ``True`` only with ``--five-core``, ``False`` only without, ``None`` always.
    ``{Cat}`` in ``remote``/``local`` is the category name exactly as the release spells it.
    """

    release: str
    sources: tuple[str, ...]
    kind: str
    five_core: bool | None
    remote: str
    local: str
    note: str = ""


#: The official file layout of each release (one table; the dataset card datasets/amazon.md mirrors it).
URL_TABLE: tuple[FilePattern, ...] = (
    # 2014 (McAuley et al., SNAP). Only the 5-core per-category review file is in the table.
    FilePattern(
        "2014", ("snap",), "reviews", None, "reviews_{Cat}_5.json.gz", "reviews_{Cat}_5.json.gz", "5-core reviews"
    ),
    FilePattern(
        "2014",
        ("snap",),
        "meta",
        None,
        "meta_{Cat}.json.gz",
        "meta_{Cat}.json.gz",
        "metadata, one Python literal per line",
    ),
    FilePattern(
        "2014",
        ("snap",),
        "ratings",
        None,
        "ratings_{Cat}.csv",
        "ratings_{Cat}.csv",
        "ratings only: user,item,rating,timestamp, no header",
    ),
    # 2018 (Ni et al.)
    FilePattern(
        "2018", ("ucsd",), "reviews", True, "categoryFilesSmall/{Cat}_5.json.gz", "{Cat}_5.json.gz", "5-core reviews"
    ),
    FilePattern("2018", ("ucsd",), "reviews", False, "categoryFiles/{Cat}.json.gz", "{Cat}.json.gz", "all reviews"),
    FilePattern(
        "2018",
        ("ucsd",),
        "meta",
        None,
        "metaFiles2/meta_{Cat}.json.gz",
        "meta_{Cat}.json.gz",
        "metadata (imageURL + imageURLHighRes layout)",
    ),
    FilePattern(
        "2018",
        ("ucsd",),
        "ratings",
        None,
        "categoryFilesSmall/{Cat}.csv",
        "{Cat}.csv",
        "ratings only: item,user,rating,timestamp, no header",
    ),
    # 2023 (Hou et al.): UCSD hosts gzip'ed JSONL, Hugging Face the same files uncompressed.
    FilePattern(
        "2023",
        ("ucsd", "mcauleylab"),
        "reviews",
        None,
        "raw/review_categories/{Cat}.jsonl.gz",
        "{Cat}.jsonl.gz",
        "all reviews (timestamps in milliseconds)",
    ),
    FilePattern(
        "2023",
        ("ucsd", "mcauleylab"),
        "meta",
        None,
        "raw/meta_categories/meta_{Cat}.jsonl.gz",
        "meta_{Cat}.jsonl.gz",
        "metadata",
    ),
    FilePattern(
        "2023",
        ("ucsd", "mcauleylab"),
        "ratings",
        True,
        "benchmark/5core/rating_only/{Cat}.csv.gz",
        "5core/rating_only/{Cat}.csv.gz",
        "official 5-core rating-only file",
    ),
    FilePattern(
        "2023",
        ("hf",),
        "reviews",
        None,
        "raw/review_categories/{Cat}.jsonl",
        "{Cat}.jsonl",
        "all reviews (timestamps in milliseconds)",
    ),
    FilePattern("2023", ("hf",), "meta", None, "raw/meta_categories/meta_{Cat}.jsonl", "meta_{Cat}.jsonl", "metadata"),
    FilePattern(
        "2023",
        ("hf",),
        "ratings",
        True,
        "benchmark/5core/rating_only/{Cat}.csv",
        "5core/rating_only/{Cat}.csv",
        "official 5-core rating-only file",
    ),
    FilePattern(
        "2023",
        ("hf",),
        "ratings",
        False,
        "benchmark/0core/rating_only/{Cat}.csv",
        "0core/rating_only/{Cat}.csv",
        "official rating-only file without k-core",
    ),
    *(
        FilePattern(
            "2023",
            ("hf",),
            "splits",
            five,
            f"benchmark/{core}/last_out_w_his/{{Cat}}.{part}.csv",
            f"{core}/last_out_w_his/{{Cat}}.{part}.csv",
            "official leave-last-out split with history",
        )
        for five, core in ((True, "5core"), (False, "0core"))
        for part in ("train", "valid", "test")
    ),
)


class DownloadError(BenchError, RuntimeError):
    """A file could not be downloaded (HTTP error, retries exhausted, unknown release/kind)."""


class ChecksumError(DownloadError):
    """A downloaded file's size or sha256 differs from the official value."""


@dataclass(frozen=True)
class RemoteFile:
    """A concrete file to fetch: where from, where to, and what it must hash to (if known)."""

    url: str
    dest: Path
    kind: str
    expected_sha256: str | None = None
    expected_size: int | None = None


@dataclass
class DownloadRecord:
    """What the manifest records about one downloaded file."""

    url: str
    file: str
    size: int
    sha256: str
    verified: bool
    expected_sha256: str | None
    downloaded_at: str
    skipped: bool = False
    """True when the file was already complete and nothing was fetched."""

    def to_manifest(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("skipped")
        return d


# ------------------------------------------------------------------------------------- planning
@lru_cache(maxsize=1)
def official_checksums() -> dict[str, dict[str, Any]]:
    """``{path: {size, sha256}}`` of the Hugging Face 2023 files (paths relative to the repo root)."""
    text = resources.files("benchmark.data.checksums").joinpath(HF_CHECKSUMS).read_text(encoding="utf-8")
    return json.loads(text)["files"]


def plan_downloads(
    release: str,
    category: str,
    *,
    kind: str = "all",
    five_core: bool = False,
    source: str | None = None,
    base_url: str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
) -> list[RemoteFile]:
    """The files ``data download`` would fetch for these options, from :data:`URL_TABLE`.

    ``kind="all"`` means reviews + meta + ratings (+ the official split files for the 2023 Hugging
    Face source). Raises :class:`DownloadError` naming the allowed values for anything unknown.
    """
    release = str(release)
    if release not in RELEASES:
        raise DownloadError(f"unknown release {release!r}; allowed: {', '.join(RELEASES)}")
    source = source or DEFAULT_SOURCE[release]
    allowed_sources = sorted(s for (r, s) in SOURCES if r == release)
    if (release, source) not in SOURCES:
        raise DownloadError(f"release {release} has no source {source!r}; allowed: {', '.join(allowed_sources)}")
    if kind != "all" and kind not in KINDS:
        raise DownloadError(f"unknown kind {kind!r}; allowed: all, {', '.join(KINDS)}")
    if not category or "/" in category or category.startswith("."):
        raise DownloadError(f"invalid category {category!r} (expected a release category name such as All_Beauty)")
    base = (base_url or SOURCES[(release, source)]).rstrip("/")
    out = Path(out_dir) if out_dir is not None else Path("datasets") / f"amazon-{release}-{category}" / "raw"
    kinds = set(KINDS) if kind == "all" else {kind}
    rows = [
        p
        for p in URL_TABLE
        if p.release == release
        and source in p.sources
        and p.kind in kinds
        and (p.five_core is None or p.five_core == five_core)
    ]
    if not rows:
        variant = "with --five-core" if five_core else "without --five-core"
        have = sorted({(p.kind, p.five_core) for p in URL_TABLE if p.release == release and source in p.sources})
        elsewhere = sorted(
            {
                s
                for p in URL_TABLE
                if p.release == release and p.kind in kinds and (p.five_core is None or p.five_core == five_core)
                for s in p.sources
            }
        )
        hint = f"; sources that have it: {', '.join(elsewhere)}" if elsewhere else ""
        raise DownloadError(
            f"release {release} (source {source}) has no {kind!r} file {variant}; "
            f"available (kind, five_core): {have}{hint}"
        )
    checks = official_checksums() if source == "hf" else {}
    files = []
    for p in rows:
        remote = p.remote.format(Cat=category)
        known = checks.get(remote)
        files.append(
            RemoteFile(
                url=f"{base}/{remote}",
                dest=out / p.local.format(Cat=category),
                kind=p.kind,
                expected_sha256=known["sha256"] if known else None,
                expected_size=int(known["size"]) if known else None,
            )
        )
    if source == "hf" and checks and not any(f.expected_sha256 for f in files):
        log.warning("no official checksum for category %r: is the name spelt as on the dataset page?", category)
    return files


def download_release(
    release: str,
    category: str,
    *,
    kind: str = "all",
    five_core: bool = False,
    source: str | None = None,
    base_url: str | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60.0,
    progress: bool = True,
) -> list[DownloadRecord]:
    """Download every file of :func:`plan_downloads` (see there for the options), in table order."""
    records = []
    for f in plan_downloads(
        release, category, kind=kind, five_core=five_core, source=source, base_url=base_url, out_dir=out_dir
    ):
        records.append(
            download_file(
                f.url,
                f.dest,
                expected_sha256=f.expected_sha256,
                expected_size=f.expected_size,
                retries=retries,
                backoff=backoff,
                timeout=timeout,
                progress=progress,
                extra={"release": str(release), "category": category, "kind": f.kind},
            )
        )
    return records


# ------------------------------------------------------------------------------------- one file
_RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class _Retryable(BenchError):
    """A transient failure worth another attempt (connection error, 5xx, short body)."""


def download_file(
    url: str,
    dest: str | os.PathLike[str],
    *,
    expected_sha256: str | None = None,
    expected_size: int | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    timeout: float = 60.0,
    chunk_size: int = 1 << 20,
    progress: bool = True,
    session: requests.Session | None = None,
    extra: dict[str, Any] | None = None,
) -> DownloadRecord:
    """Fetch ``url`` to ``dest`` resumably and record it in ``dest.parent/downloads.json``.

    A complete ``dest`` already in the manifest (same url, size and mtime) is not fetched again;
    a ``dest`` outside the manifest is hashed and adopted. Partial data lives in ``dest.part`` and
    is resumed with ``Range`` (a server answering 200 to a range request restarts from zero; 416
    means the part is complete or stale). Transient errors are retried ``retries`` times with
    ``backoff * 2**attempt`` seconds between tries; other HTTP errors raise :class:`DownloadError`
    at once. With ``expected_sha256``/``expected_size`` a mismatch moves the data to
    ``dest.part-corrupt`` and raises :class:`ChecksumError`.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    manifest_path = dest.parent / MANIFEST_NAME
    existing = _complete_record(dest, url, expected_sha256, manifest_path)
    if existing is not None:
        log.info("%s already downloaded (%d bytes), skipping", dest, existing.size)
        return existing

    part = dest.with_name(dest.name + ".part")
    own_session = session is None
    sess = session or requests.Session()
    try:
        digest, size = _fetch_resumable(
            url,
            part,
            sess,
            retries=retries,
            backoff=backoff,
            timeout=timeout,
            chunk_size=chunk_size,
            progress=progress,
            expected_size=expected_size,
        )
    finally:
        if own_session:
            sess.close()

    problems = []
    if expected_size is not None and size != expected_size:
        problems.append(f"size {size} != official {expected_size}")
    if expected_sha256 is not None and digest != expected_sha256.lower():
        problems.append(f"sha256 {digest} != official {expected_sha256}")
    if problems:
        corrupt = dest.with_name(dest.name + ".part-corrupt")
        os.replace(part, corrupt)
        raise ChecksumError(
            f"{url}: downloaded data does not match the official checksum ({'; '.join(problems)}). "
            f"The data was moved to {corrupt} (not used); delete it and run the command again, "
            f"or check the mirror/--base-url."
        )
    with open(part, "rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(part, dest)
    record = DownloadRecord(
        url=url,
        file=dest.name,
        size=size,
        sha256=digest,
        verified=expected_sha256 is not None,
        expected_sha256=expected_sha256,
        downloaded_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    _update_manifest(manifest_path, dest, record, extra)
    log.info("downloaded %s (%d bytes, sha256 %s%s)", dest, size, digest[:12], ", verified" if record.verified else "")
    return record


def _fetch_resumable(
    url: str,
    part: Path,
    sess: requests.Session,
    *,
    retries: int,
    backoff: float,
    timeout: float,
    chunk_size: int,
    progress: bool,
    expected_size: int | None,
) -> tuple[str, int]:
    """Bring ``part`` to the full remote content; return its (sha256, size)."""
    attempt = 0
    while True:
        try:
            return _fetch_once(
                url, part, sess, timeout=timeout, chunk_size=chunk_size, progress=progress, expected_size=expected_size
            )
        except _Retryable as exc:
            if attempt >= retries:
                raise DownloadError(f"{url}: giving up after {attempt + 1} attempts: {exc}") from exc
            wait = backoff * (2**attempt)
            attempt += 1
            log.warning("%s: %s; retry %d/%d in %.1fs (partial data kept)", url, exc, attempt, retries, wait)
            time.sleep(wait)


def _fetch_once(
    url: str,
    part: Path,
    sess: requests.Session,
    *,
    timeout: float,
    chunk_size: int,
    progress: bool,
    expected_size: int | None,
) -> tuple[str, int]:
    offset = part.stat().st_size if part.exists() else 0
    if expected_size is not None and offset > expected_size:
        log.warning("%s is larger than the official size; starting over", part)
        part.unlink()
        offset = 0
    headers = (
        {"Range": f"bytes={offset}-", "Accept-Encoding": "identity"} if offset else {"Accept-Encoding": "identity"}
    )
    try:
        resp = sess.get(url, headers=headers, stream=True, timeout=timeout, allow_redirects=True)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise _Retryable(f"connection failed: {exc}") from exc
    with resp:
        status = resp.status_code
        if status == 416 and offset:
            total = _content_range_total(resp.headers.get("Content-Range", ""))
            if total is not None and total == offset:
                return _hash_file(part), offset
            log.warning("%s: server refused resuming at byte %d (416); starting over", url, offset)
            part.unlink()
            raise _Retryable("range not satisfiable; restarting from zero")
        if status in _RETRY_STATUS:
            raise _Retryable(f"HTTP {status} {resp.reason}")
        if status not in (200, 206):
            hint = " (check the category name and release; names are case-sensitive)" if status == 404 else ""
            raise DownloadError(f"{url}: HTTP {status} {resp.reason}{hint}")
        if status == 206:
            start = _content_range_start(resp.headers.get("Content-Range", ""))
            if start != offset:
                log.warning("%s: server resumed at %s instead of %d; starting over", url, start, offset)
                part.unlink(missing_ok=True)
                raise _Retryable("bad Content-Range")
        elif offset:
            log.info("%s: server ignored the range request (200); downloading from the start", url)
            offset = 0
        length = resp.headers.get("Content-Length")
        body_len = int(length) if length and length.isdigit() else None
        total = offset + body_len if body_len is not None else expected_size
        h = hashlib.sha256()
        if offset:
            _hash_into(part, h)
        mode = "ab" if offset else "wb"
        received = 0
        bar = tqdm(
            total=total,
            initial=offset,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=part.name[: -len(".part")],
            disable=not progress,
            leave=False,
        )
        try:
            with open(part, mode) as fh:
                for block in resp.iter_content(chunk_size=chunk_size):
                    if not block:
                        continue
                    fh.write(block)
                    h.update(block)
                    received += len(block)
                    bar.update(len(block))
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
            raise _Retryable(f"connection lost after {offset + received} bytes: {exc}") from exc
        finally:
            bar.close()
        if body_len is not None and received < body_len:
            raise _Retryable(f"short body: {received} of {body_len} bytes")
        return h.hexdigest(), offset + received


def _content_range_start(value: str) -> int | None:
    # "bytes 100-199/200"
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def _content_range_total(value: str) -> int | None:
    # "bytes */200" or "bytes 0-9/200"
    try:
        tail = value.rsplit("/", 1)[1]
        return int(tail)
    except (IndexError, ValueError):
        return None


def _hash_into(path: Path, h: hashlib._Hash, chunk: int = 1 << 20) -> None:
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    _hash_into(path, h)
    return h.hexdigest()


# ------------------------------------------------------------------------------------- manifest
def read_manifest(directory: str | os.PathLike[str]) -> dict[str, dict[str, Any]]:
    """The ``downloads.json`` records of a directory (``{}`` when there is none)."""
    path = Path(directory) / MANIFEST_NAME
    if not path.exists():
        return {}
    data = read_json(path)
    return dict(data.get("files", {}))


def _complete_record(dest: Path, url: str, expected_sha256: str | None, manifest_path: Path) -> DownloadRecord | None:
    if not dest.exists():
        return None
    entry = read_manifest(manifest_path.parent).get(dest.name)
    st = dest.stat()
    if (
        entry
        and entry.get("url") == url
        and entry.get("size") == st.st_size
        and entry.get("mtime_ns") == st.st_mtime_ns
    ):
        digest = entry["sha256"]
    else:
        log.info("%s exists but is not recorded for this url; hashing it", dest)
        digest = sha256_file(dest)
    if expected_sha256 is not None and digest != expected_sha256.lower():
        raise ChecksumError(
            f"{dest} exists but its sha256 {digest} differs from the official {expected_sha256}; "
            f"delete it to download it again"
        )
    record = DownloadRecord(
        url=url,
        file=dest.name,
        size=st.st_size,
        sha256=digest,
        verified=expected_sha256 is not None,
        expected_sha256=expected_sha256,
        downloaded_at=(entry or {}).get("downloaded_at") or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        skipped=True,
    )
    if not entry or entry.get("sha256") != digest or entry.get("mtime_ns") != st.st_mtime_ns:
        _update_manifest(manifest_path, dest, record, None)
    return record


def _update_manifest(manifest_path: Path, dest: Path, record: DownloadRecord, extra: dict[str, Any] | None) -> None:
    files = read_manifest(manifest_path.parent)
    entry = {**files.get(dest.name, {}), **(extra or {}), **record.to_manifest(), "mtime_ns": dest.stat().st_mtime_ns}
    files[dest.name] = entry
    write_json(manifest_path, {"files": dict(sorted(files.items()))})


def describe_table(rows: Iterable[FilePattern] = URL_TABLE) -> str:
    """The URL table as Markdown (used by the dataset card and ``data download --list``)."""
    lines = ["| release | source | kind | five-core | remote path | local name |", "|---|---|---|---|---|---|"]
    for p in rows:
        fc = {True: "yes", False: "no", None: "any"}[p.five_core]
        lines.append(f"| {p.release} | {', '.join(p.sources)} | {p.kind} | {fc} | `{p.remote}` | `{p.local}` |")
    return "\n".join(lines)
