"""Image fetching against a local HTTP server on 127.0.0.1, file:// URLs and local paths."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from pathlib import Path

import pandas as pd
import pytest
from fixtures.local_http import LocalServer, QuietHandler
from PIL import Image

from benchmark.cli import main
from benchmark.data.image_io import ImageRefused, OutsideRootError, confine_path, open_image, url_or_none
from benchmark.data.images import fetch_images, image_stem, load_image_index, pairs_from_table


def png_bytes(w: int = 16, h: int = 12, colour: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), (10, 120, 10)).save(buf, format="JPEG")
    return buf.getvalue()


def bomb_header_png(w: int = 100_000, h: int = 100_000) -> bytes:
    """A PNG whose header claims ``w``×``h`` pixels (no real pixel data)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


class ImageServer(LocalServer):
    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, str, bytes]] = {}
        self.flaky: dict[str, int] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                if server.flaky.get(self.path, 0) > 0:
                    server.flaky[self.path] -= 1
                    status, ctype, body = 503, "text/plain", b"busy"
                else:
                    status, ctype, body = server.routes.get(self.path, (404, "text/plain", b"not found"))
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.serve(Handler)


@pytest.fixture()
def server():
    with ImageServer() as s:
        yield s


@pytest.fixture()
def catalogue(server: ImageServer, tmp_path: Path) -> list[tuple[str, str | None]]:
    ok, jpg = png_bytes(), jpeg_bytes()
    server.routes["/ok.png"] = (200, "image/png", ok)
    server.routes["/photo"] = (200, "image/jpeg", jpg)
    server.routes["/corrupt.png"] = (200, "image/png", ok[:40] + b"\x00garbage" * 20)  # broken header
    noisy = io.BytesIO()
    Image.effect_noise((64, 64), 50).convert("RGB").save(noisy, format="PNG")
    server.routes["/truncated.png"] = (200, "image/png", noisy.getvalue()[: len(noisy.getvalue()) // 2])
    server.routes["/page.jpg"] = (200, "text/html", b"<!DOCTYPE html><html><body>Sorry</body></html>")
    server.routes["/bomb.png"] = (200, "image/png", bomb_header_png())
    server.routes["/flaky.png"] = (200, "image/png", png_bytes(colour=(0, 0, 255)))
    server.flaky["/flaky.png"] = 2
    local = tmp_path / "src" / "local.png"
    local.parent.mkdir()
    local.write_bytes(png_bytes(colour=(0, 255, 0)))
    return [
        ("A1", server.url + "/ok.png"),
        ("A2", server.url + "/photo"),
        ("A3", server.url + "/corrupt.png"),
        ("A4", server.url + "/page.jpg"),
        ("A5", server.url + "/bomb.png"),
        ("A6", server.url + "/flaky.png"),
        ("A7", server.url + "/gone.png"),
        ("A8", local.as_uri()),
        ("A9", "src/local.png"),
        ("A10", None),
        ("A11", server.url + "/truncated.png"),
    ]


def test_fetch_reports_every_outcome(catalogue: list, server: ImageServer, tmp_path: Path) -> None:
    out = tmp_path / "img"
    rep = fetch_images(catalogue, out, workers=4, retries=3, backoff=0, base_dir=tmp_path, progress=False)
    ok = {r.item for r in rep.records}
    assert ok == {"A1", "A2", "A6", "A8", "A9"}
    reasons = {f.item: f.reason for f in rep.failures}
    assert reasons["A3"].startswith("corrupt_image")
    assert reasons["A4"].startswith("not_an_image") and "HTML" in reasons["A4"]
    assert reasons["A5"].startswith("too_many_pixels")
    assert reasons["A7"].startswith("http_404")
    assert reasons["A10"].startswith("no_url")
    assert reasons["A11"].startswith("corrupt_image")
    assert set(reasons) == {"A3", "A4", "A5", "A7", "A10", "A11"}
    assert server.hits["/flaky.png"] == 3 and server.hits["/gone.png"] == 1
    assert (out / "A2.jpg").exists() and (out / "A1.png").exists()
    assert not list(out.glob("A3.*")) and not list(out.glob(".*tmp"))

    # Index: sha256 of the stored bytes, relative paths that load_image_index resolves.
    idx = load_image_index(out)
    assert sorted(idx["item"]) == sorted(ok)
    for _, row in idx.iterrows():
        assert hashlib.sha256(Path(row["path"]).read_bytes()).hexdigest() == row["sha256"]
    # Report on disk lists every failure with item, url and reason.
    report = json.loads((out / "fetch_report.json").read_text())
    assert report["failed"] == 6 and report["ok"] == 5
    assert {f["item"] for f in report["failures"]} == set(reasons)
    assert "6 failed" in rep.summary()


def test_rerun_skips_existing_and_refetches_broken(catalogue: list, server: ImageServer, tmp_path: Path) -> None:
    out = tmp_path / "img"
    fetch_images(catalogue, out, retries=3, backoff=0, base_dir=tmp_path, progress=False)
    hits = dict(server.hits)
    (out / "A2.jpg").write_bytes(b"broken")  # damaged since: must be fetched again
    server.flaky["/flaky.png"] = 0
    rep = fetch_images(catalogue, out, retries=3, backoff=0, base_dir=tmp_path, progress=False)
    assert rep.existing == 4 and rep.fetched == 1
    assert server.hits["/ok.png"] == hits["/ok.png"]
    assert server.hits["/photo"] == hits["/photo"] + 1
    assert Image.open(out / "A2.jpg").size == (20, 20)


def test_pixel_limit_applies_to_real_images(server: ImageServer, tmp_path: Path) -> None:
    server.routes["/big.png"] = (200, "image/png", png_bytes(200, 200))
    server.routes["/small.png"] = (200, "image/png", png_bytes(50, 50))
    rep = fetch_images(
        [("big", server.url + "/big.png"), ("small", server.url + "/small.png")],
        tmp_path,
        max_pixels=10_000,
        progress=False,
    )
    assert [r.item for r in rep.records] == ["small"]
    assert rep.failures[0].item == "big" and "too_many_pixels" in rep.failures[0].reason
    # PIL's global limit is restored afterwards.
    assert Image.MAX_IMAGE_PIXELS != 10_000


def test_unsafe_item_ids_get_hashed_names_and_duplicates_are_reported(tmp_path: Path) -> None:
    src = tmp_path / "x.png"
    src.write_bytes(png_bytes())
    pairs = [("a/b c", str(src)), ("a/b c", str(src)), ("B00XYZ", str(src))]
    rep = fetch_images(pairs, tmp_path / "o", base_dir=tmp_path, progress=False)
    stem = image_stem("a/b c")
    assert stem.startswith("h_") and (tmp_path / "o" / f"{stem}.png").exists()
    assert image_stem("B00XYZ") == "B00XYZ"
    assert [f.reason.split(":")[0] for f in rep.failures] == ["duplicate_item"]


def test_catalogue_table_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = tmp_path / "p.png"
    img.write_bytes(png_bytes())
    cat = pd.DataFrame({"item": ["I1", "I2"], "image_url": [img.as_uri(), None]})
    cat.to_parquet(tmp_path / "cat.parquet")
    rc = main(["-q", "data", "images", str(tmp_path / "cat.parquet"), "--out", str(tmp_path / "o"), "--workers", "2"])
    assert rc == 0
    assert "1 failed" in capsys.readouterr().out
    assert (tmp_path / "o" / "I1.png").exists()
    rc = main(["-q", "data", "images", str(tmp_path / "cat.parquet"), "--out", str(tmp_path / "o"), "--strict"])
    assert rc == 1
    assert main(["-q", "data", "images", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2


# ------------------------------------------------------------------ untrusted local paths (issue 12, defect 2)
def test_local_paths_outside_the_allowed_roots_are_refused_and_counted(tmp_path: Path) -> None:
    dataset = tmp_path / "dataset"
    (dataset / "img").mkdir(parents=True)
    (dataset / "img" / "ok.png").write_bytes(png_bytes())
    private = tmp_path / "home" / "secret.png"
    private.parent.mkdir()
    private.write_bytes(png_bytes(colour=(1, 2, 3)))
    (dataset / "img" / "link.png").symlink_to(private)  # inside by name, outside once resolved
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "e.png").write_bytes(png_bytes())
    pairs = [
        ("OK1", "img/ok.png"),
        ("OK2", (dataset / "img" / "ok.png").as_uri()),
        ("BAD1", private.as_uri()),
        ("BAD2", str(private)),
        ("BAD3", "../home/secret.png"),
        ("BAD4", "img/../../home/secret.png"),
        ("BAD5", "img/link.png"),
        ("EXTRA", str(extra / "e.png")),
    ]
    out = dataset / "fetched"
    rep = fetch_images(pairs, out, base_dir=dataset, progress=False)
    assert sorted(r.item for r in rep.records) == ["OK1", "OK2"]
    reasons = {f.item: f.reason.split(":")[0] for f in rep.failures}
    assert reasons == {k: "outside_root" for k in ("BAD1", "BAD2", "BAD3", "BAD4", "BAD5", "EXTRA")}
    assert rep.reasons()["outside_root"] == 6
    assert json.loads(rep.report_path.read_text())["reasons"]["outside_root"] == 6
    # nothing of the private file was copied into the image folder
    digest = hashlib.sha256(private.read_bytes()).hexdigest()
    assert all(hashlib.sha256(f.read_bytes()).hexdigest() != digest for f in out.glob("*.png"))
    # an explicitly configured image root is allowed
    rep = fetch_images(
        [("EXTRA", str(extra / "e.png"))], tmp_path / "o2", base_dir=dataset, roots=[extra], progress=False
    )
    assert [r.item for r in rep.records] == ["EXTRA"]


def test_confine_path_rules(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    assert confine_path("a/x.png", [root]) == (root / "a" / "x.png").resolve()
    assert confine_path(root / "a" / "x.png", [tmp_path / "other", root]) == (root / "a" / "x.png").resolve()
    for bad in ("../x.png", "/etc/passwd", "a/../../x.png"):
        with pytest.raises(OutsideRootError, match="outside_root"):
            confine_path(bad, [root])
    with pytest.raises(OutsideRootError):
        confine_path(root / "a" / "x.png", [])


# ------------------------------------------------------------------ missing URLs (issue 12, defect 9)
def test_missing_url_is_missing_never_a_file_named_nan(tmp_path: Path) -> None:
    (tmp_path / "nan").write_bytes(png_bytes())  # the file that became the image of 342 items
    (tmp_path / "None").write_bytes(png_bytes())
    table = pd.DataFrame({"item": ["A", "B"], "image_url": [float("nan"), float("nan")]})  # float column
    assert table["image_url"].dtype == "float64"
    assert pairs_from_table(table) == [("A", None), ("B", None)]
    mixed = pd.DataFrame({"item": ["A", "B", "C", "D", "E"], "image_url": [None, "nan", "  ", "None", pd.NA]})
    rep = fetch_images(mixed, tmp_path / "o", base_dir=tmp_path, progress=False)
    assert rep.ok == 0 and {f.reason.split(":")[0] for f in rep.failures} == {"no_url"}
    csv = tmp_path / "cat.csv"
    csv.write_text("item,image_url\nA,\nB,nan\n")
    rc = main(["-q", "data", "images", str(csv), "--out", str(tmp_path / "o2")])
    assert rc == 0 and not list((tmp_path / "o2").glob("*.png"))
    assert [url_or_none(v) for v in (None, float("nan"), "", " x ", "NULL", 3)] == [None, None, None, "x", None, None]


# ------------------------------------------------------------------ decoding with a pixel limit (defect 7)
def test_open_image_checks_pixels_before_decoding(tmp_path: Path) -> None:
    p = tmp_path / "bomb.png"
    p.write_bytes(bomb_header_png(20_000, 20_000))  # 400 Mpx claimed by a tiny file
    with pytest.raises(ImageRefused) as err:
        open_image(p)
    assert err.value.kind == "too_many_pixels"
    with pytest.raises(ImageRefused, match="too_many_pixels"):
        open_image(png_bytes(200, 200), max_pixels=10_000)
    assert open_image(png_bytes(20, 10)).size == (20, 10)
    assert open_image(png_bytes(20, 10)).mode == "RGB"
    for data, kind in ((b"", "empty"), (b"<html>x</html>", "not_an_image"), (png_bytes()[:40], "corrupt_image")):
        with pytest.raises(ImageRefused) as err:
            open_image(data)
        assert err.value.kind == kind
