"""Downloads against a local HTTP server on 127.0.0.1 (Range support implemented here)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from fixtures.local_http import LocalServer, QuietHandler

from benchmark.cli import main
from benchmark.data.download import (
    MANIFEST_NAME,
    ChecksumError,
    DownloadError,
    download_file,
    download_release,
    official_checksums,
    plan_downloads,
)


class FileServer(LocalServer):
    """Serves ``files`` (path -> bytes) with optional misbehaviour, recording every request."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.ignore_range: set[str] = set()
        self.fail_first: dict[str, int] = {}  # path -> number of 503 answers before serving
        self.cut_first: dict[str, int] = {}  # path -> send this many body bytes, then drop (once)
        self.requests: list[tuple[str, str | None]] = []
        self.bytes_sent = 0
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                path = self.path
                rng = self.headers.get("Range")
                server.requests.append((path, rng))
                if server.fail_first.get(path, 0) > 0:
                    server.fail_first[path] -= 1
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path not in server.files:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = server.files[path]
                start = 0
                if rng and path not in server.ignore_range:
                    start = int(rng.split("=")[1].split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut = server.cut_first.pop(path, None)
                if cut is not None:
                    self.wfile.write(body[:cut])
                    server.bytes_sent += cut
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)
                server.bytes_sent += len(body)

        self.serve(Handler)


@pytest.fixture()
def server():
    with FileServer() as s:
        yield s


def payload(n: int = 300_000, seed: int = 1) -> bytes:
    import random

    return random.Random(seed).randbytes(n)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_full_download_writes_file_and_manifest(server: FileServer, tmp_path: Path) -> None:
    data = payload()
    server.files["/a/file.json.gz"] = data
    dest = tmp_path / "out" / "file.json.gz"
    rec = download_file(server.url + "/a/file.json.gz", dest, progress=False, chunk_size=4096)
    assert dest.read_bytes() == data
    assert not dest.with_name("file.json.gz.part").exists()
    assert rec.sha256 == sha(data) and rec.size == len(data) and not rec.verified
    manifest = json.loads((dest.parent / MANIFEST_NAME).read_text())
    entry = manifest["files"]["file.json.gz"]
    assert entry["sha256"] == sha(data) and entry["size"] == len(data)
    assert entry["url"] == server.url + "/a/file.json.gz"


def test_second_call_skips_complete_file(server: FileServer, tmp_path: Path) -> None:
    server.files["/f"] = payload(1000)
    dest = tmp_path / "f"
    download_file(server.url + "/f", dest, progress=False)
    n = len(server.requests)
    rec = download_file(server.url + "/f", dest, progress=False)
    assert rec.skipped and len(server.requests) == n


def test_resume_sends_range_and_fetches_only_the_rest(server: FileServer, tmp_path: Path) -> None:
    data = payload()
    server.files["/big"] = data
    dest = tmp_path / "big"
    dest.with_name("big.part").write_bytes(data[:100_000])
    rec = download_file(server.url + "/big", dest, progress=False)
    assert dest.read_bytes() == data and rec.sha256 == sha(data)
    assert server.requests == [("/big", "bytes=100000-")]
    assert server.bytes_sent == len(data) - 100_000


def test_server_ignoring_range_restarts_from_zero(server: FileServer, tmp_path: Path) -> None:
    data = payload()
    server.files["/big"] = data
    server.ignore_range.add("/big")
    dest = tmp_path / "big"
    dest.with_name("big.part").write_bytes(b"x" * 5000)  # wrong bytes: must not survive
    download_file(server.url + "/big", dest, progress=False)
    assert dest.read_bytes() == data


def test_connection_drop_mid_body_resumes(server: FileServer, tmp_path: Path) -> None:
    data = payload()
    server.files["/big"] = data
    server.cut_first["/big"] = 70_000
    dest = tmp_path / "big"
    download_file(server.url + "/big", dest, progress=False, backoff=0, chunk_size=8192)
    assert dest.read_bytes() == data
    assert server.requests[0] == ("/big", None)
    assert server.requests[1][1] is not None and server.requests[1][1].startswith("bytes=")
    assert server.bytes_sent < 2 * len(data)


def test_complete_part_and_416_finishes(server: FileServer, tmp_path: Path) -> None:
    data = payload(5000)
    server.files["/f"] = data
    dest = tmp_path / "f"
    dest.with_name("f.part").write_bytes(data)
    rec = download_file(server.url + "/f", dest, progress=False)
    assert dest.read_bytes() == data and rec.sha256 == sha(data)


def test_checksum_mismatch_keeps_part_corrupt_and_raises(server: FileServer, tmp_path: Path) -> None:
    data = payload(5000)
    server.files["/f"] = data
    dest = tmp_path / "f"
    with pytest.raises(ChecksumError, match="official checksum"):
        download_file(server.url + "/f", dest, expected_sha256="0" * 64, progress=False)
    assert not dest.exists()
    assert dest.with_name("f.part-corrupt").read_bytes() == data
    assert not (tmp_path / MANIFEST_NAME).exists()


def test_expected_checksum_verified(server: FileServer, tmp_path: Path) -> None:
    data = payload(5000)
    server.files["/f"] = data
    rec = download_file(
        server.url + "/f", tmp_path / "f", expected_sha256=sha(data), expected_size=len(data), progress=False
    )
    assert rec.verified


def test_404_is_a_clear_error_without_retries(server: FileServer, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match=r"HTTP 404.*category name"):
        download_file(server.url + "/missing.json.gz", tmp_path / "m", progress=False, backoff=0)
    assert len(server.requests) == 1


def test_503_is_retried_then_succeeds(server: FileServer, tmp_path: Path) -> None:
    data = payload(2000)
    server.files["/f"] = data
    server.fail_first["/f"] = 2
    download_file(server.url + "/f", tmp_path / "f", retries=3, backoff=0, progress=False)
    assert (tmp_path / "f").read_bytes() == data
    assert len(server.requests) == 3


def test_503_forever_gives_up(server: FileServer, tmp_path: Path) -> None:
    server.files["/f"] = b"abc"
    server.fail_first["/f"] = 10
    with pytest.raises(DownloadError, match="giving up after 3 attempts"):
        download_file(server.url + "/f", tmp_path / "f", retries=2, backoff=0, progress=False)


def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(DownloadError, match="connection failed"):
        download_file(f"http://127.0.0.1:{port}/x", tmp_path / "x", retries=1, backoff=0, timeout=2, progress=False)


# ------------------------------------------------------------------------------------- URL table
def test_official_url_patterns() -> None:
    urls = {f.kind: f.url for f in plan_downloads("2014", "Baby", out_dir="o")}
    assert urls == {
        "reviews": "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_Baby_5.json.gz",
        "meta": "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/meta_Baby.json.gz",
        "ratings": "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/ratings_Baby.csv",
    }
    base18 = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2"
    five = {f.kind: f.url for f in plan_downloads("2018", "Gift_Cards", five_core=True, out_dir="o")}
    assert five["reviews"] == f"{base18}/categoryFilesSmall/Gift_Cards_5.json.gz"
    assert five["meta"] == f"{base18}/metaFiles2/meta_Gift_Cards.json.gz"
    assert five["ratings"] == f"{base18}/categoryFilesSmall/Gift_Cards.csv"
    full = {f.kind: f.url for f in plan_downloads("2018", "Gift_Cards", out_dir="o")}
    assert full["reviews"] == f"{base18}/categoryFiles/Gift_Cards.json.gz"
    base23 = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_2023"
    f23 = {f.kind: f.url for f in plan_downloads("2023", "All_Beauty", out_dir="o")}
    assert f23 == {
        "reviews": f"{base23}/raw/review_categories/All_Beauty.jsonl.gz",
        "meta": f"{base23}/raw/meta_categories/meta_All_Beauty.jsonl.gz",
    }


def test_hf_files_carry_official_checksums_and_default_out_dir() -> None:
    files = plan_downloads("2023", "All_Beauty", source="hf", five_core=True)
    hf = "https://huggingface.co/datasets/McAuley-Lab/Amazon-Reviews-2023/resolve/main"
    by_url = {f.url: f for f in files}
    assert f"{hf}/raw/review_categories/All_Beauty.jsonl" in by_url
    assert f"{hf}/benchmark/5core/last_out_w_his/All_Beauty.train.csv" in by_url
    assert all(f.expected_sha256 and len(f.expected_sha256) == 64 and f.expected_size for f in files)
    rating = by_url[f"{hf}/benchmark/5core/rating_only/All_Beauty.csv"]
    assert rating.dest == Path("datasets/amazon-2023-All_Beauty/raw/5core/rating_only/All_Beauty.csv")
    assert len(official_checksums()) > 800


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"release": "2020", "category": "X"}, "allowed: 2014, 2018, 2023"),
        ({"release": "2023", "category": "X", "kind": "photos"}, "unknown kind"),
        ({"release": "2018", "category": "X", "source": "hf"}, "allowed: ucsd"),
        ({"release": "2023", "category": "X", "kind": "splits"}, "sources that have it: hf"),
        ({"release": "2023", "category": "../etc"}, "invalid category"),
    ],
)
def test_bad_options_name_the_allowed_values(kwargs: dict, message: str) -> None:
    release = kwargs.pop("release")
    category = kwargs.pop("category")
    with pytest.raises(DownloadError, match=message.replace(".", r"\.")):
        plan_downloads(release, category, **kwargs)


def test_download_release_through_base_url(server: FileServer, tmp_path: Path) -> None:
    reviews, meta = payload(3000, 2), payload(2000, 3)
    server.files["/mirror/raw/review_categories/Toys.jsonl.gz"] = reviews
    server.files["/mirror/raw/meta_categories/meta_Toys.jsonl.gz"] = meta
    recs = download_release("2023", "Toys", base_url=server.url + "/mirror", out_dir=tmp_path, progress=False)
    assert [r.file for r in recs] == ["Toys.jsonl.gz", "meta_Toys.jsonl.gz"]
    assert (tmp_path / "Toys.jsonl.gz").read_bytes() == reviews
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())["files"]
    assert manifest["meta_Toys.jsonl.gz"]["sha256"] == sha(meta)
    assert manifest["meta_Toys.jsonl.gz"]["release"] == "2023" and manifest["meta_Toys.jsonl.gz"]["kind"] == "meta"


def test_cli_download_and_errors(server: FileServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server.files["/m/reviews_Baby_5.json.gz"] = payload(100, 4)
    server.files["/m/meta_Baby.json.gz"] = payload(100, 5)
    server.files["/m/ratings_Baby.csv"] = payload(100, 6)
    rc = main(
        [
            "-q",
            "data",
            "download",
            "--release",
            "2014",
            "--category",
            "Baby",
            "--base-url",
            server.url + "/m",
            "--out",
            str(tmp_path),
        ]
    )
    assert rc == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        MANIFEST_NAME,
        "meta_Baby.json.gz",
        "ratings_Baby.csv",
        "reviews_Baby_5.json.gz",
    ]
    assert "downloaded" in capsys.readouterr().out
    rc = main(
        [
            "-q",
            "data",
            "download",
            "--release",
            "2014",
            "--category",
            "Nope",
            "--base-url",
            server.url + "/m",
            "--out",
            str(tmp_path / "n"),
            "--retries",
            "0",
        ]
    )
    assert rc == 2


@pytest.mark.realdata
def test_real_hf_file_verifies_against_shipped_checksum(shared_data: Path, server: FileServer, tmp_path: Path) -> None:
    real = shared_data / "2023-All_Beauty" / "5core" / "rating_only" / "All_Beauty.csv"
    if not real.exists():
        pytest.skip("2023 All_Beauty 5-core file absent")
    data = real.read_bytes()
    server.files["/hf/benchmark/5core/rating_only/All_Beauty.csv"] = data
    recs = download_release(
        "2023",
        "All_Beauty",
        source="hf",
        kind="ratings",
        five_core=True,
        base_url=server.url + "/hf",
        out_dir=tmp_path,
        progress=False,
    )
    assert len(recs) == 1 and recs[0].verified and recs[0].sha256 == sha(data)
    # The same file with one byte changed must fail verification.
    server.files["/hf/benchmark/5core/rating_only/All_Beauty.csv"] = data[:-1] + b"#"
    with pytest.raises(ChecksumError):
        download_release(
            "2023",
            "All_Beauty",
            source="hf",
            kind="ratings",
            five_core=True,
            base_url=server.url + "/hf",
            out_dir=tmp_path / "b",
            progress=False,
        )
