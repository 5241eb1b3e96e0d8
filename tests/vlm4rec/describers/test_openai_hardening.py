"""The OpenAI-compatible describer against hostile endpoints and catalogues (issue 12):
a total deadline per request (defect 8), a 200 that echoes the key (defect 13), local image
paths outside the allowed folders (defect 2) and decompression bombs (defect 7) never sent."""

from __future__ import annotations

import json
import struct
import time
import zlib

import pandas as pd
import pytest
from fixtures.local_http import LocalServer, QuietHandler
from fixtures.tiny_models import make_image_split

from benchmark.split import Split
from vlm4rec.describers import OpenAIDescriber
from vlm4rec.inference import run_describe
from vlm4rec.records import ItemRecord

SECRET = "sk-test-SECRET-hardening-42"


class Endpoint(LocalServer):
    """A chat-completions server; ``mode`` picks how it misbehaves."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.images: list[str] = []
        outer = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.images.append(body["messages"][0]["content"][1]["image_url"]["url"])
                content = "A fine thing."
                if outer.mode == "echo":
                    content = f"Sure! Your key is {self.headers.get('Authorization', '')[7:]}. A fine thing."
                data = json.dumps({"choices": [{"message": {"content": content}}]}).encode()
                try:
                    if outer.mode == "trickle-headers":
                        for ch in b"HTTP/1.1 200 OK\r\n":
                            self.wfile.write(bytes([ch]))
                            self.wfile.flush()
                            time.sleep(0.15)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if outer.mode == "trickle-body":  # a byte at a time, each well within the per-read timeout
                        for ch in data:
                            self.wfile.write(bytes([ch]))
                            self.wfile.flush()
                            time.sleep(0.15)
                    else:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up: the case under test

        self.serve(Handler, "/v1")


@pytest.mark.parametrize("mode", ["trickle-body", "trickle-headers"])
def test_timeout_is_a_total_deadline_per_request(mode: str) -> None:
    # Regression (defect 8): requests' timeout applies per read, so a byte every 0.15 s kept a
    # request with timeout=1 open for the whole response (here ~8 s) and then succeeded.
    with Endpoint(mode) as srv:
        d = OpenAIDescriber(srv.url, "m", api_key_env="UNSET_FOR_TEST", timeout=1.0, max_retries=0)
        rec = ItemRecord(0, "X", {"title": "thing"}, image_bytes=b"\x89PNG", image_format="PNG")
        res = d.describe([rec])[0]
    assert not res.ok and "Timeout" in res.error and "within 1 s" in res.error


def test_a_200_that_echoes_the_key_is_scrubbed_before_the_cache(tmp_path, monkeypatch) -> None:
    # Regression (defect 13): error bodies were redacted, a successful text was stored as-is.
    monkeypatch.setenv("VLM_TEST_KEY", SECRET)
    split_dir = make_image_split(tmp_path, n_items=3, n_users=2)
    with Endpoint("echo") as srv:
        d = OpenAIDescriber(srv.url, "m", api_key_env="VLM_TEST_KEY", timeout=5.0, max_retries=0)
        out = run_describe(
            Split.load(split_dir).items, d, tmp_path / "cache", tmp_path / "out", image_root=split_dir, progress=False
        )
    assert out.coverage["status_counts"] == {"ok": 3}
    rows = [json.loads(x) for x in out.descriptions_path.read_text().splitlines()]
    assert all("***" in r["description"] and SECRET not in r["description"] for r in rows)
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f


def _bomb_png(w: int = 20_000, h: int = 20_000) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def test_private_files_and_bombs_are_never_sent_to_the_endpoint(tmp_path) -> None:
    # Regression (defects 2 and 7): a catalogue line could make the describer send any local file
    # (base64) to the endpoint, and a 17 KB bomb was decoded to gigabytes and sent.
    split_dir = make_image_split(tmp_path, n_items=4, n_users=2)
    private = tmp_path / "home" / "id_photo.png"
    private.parent.mkdir()
    private.write_bytes((split_dir / "images" / "I000.png").read_bytes()[:-8] + b"PRIVATE!")
    (split_dir / "images" / "bomb.png").write_bytes(_bomb_png())
    split = Split.load(split_dir)
    items = split.items.copy()
    items["image_path"] = pd.Series([None] * len(items), dtype=object)
    items["image_url"] = [private.as_uri(), str(private), "../home/id_photo.png", "images/bomb.png"]
    items["image_urls"] = [[] for _ in range(len(items))]
    with Endpoint("ok") as srv:
        d = OpenAIDescriber(srv.url, "m", api_key_env="UNSET_FOR_TEST", timeout=5.0, max_retries=0)
        out = run_describe(items, d, tmp_path / "cache", tmp_path / "out", image_root=split_dir, progress=False)
    assert srv.images == []  # nothing left the machine
    assert out.coverage["status_counts"] == {"outside_root": 3, "undecodable_image": 1}
    rows = {json.loads(x)["item"]: json.loads(x) for x in out.descriptions_path.read_text().splitlines()}
    assert "too_many_pixels" in rows["I003"]["error"]
    assert rows["I000"]["error"].startswith("outside_root")


def test_vlm4rec_docstring_names_every_text_choice() -> None:
    from vlm4rec.recommender import VLM4Rec
    from vlm4rec.texts import TEXT_CHOICES

    assert all(f"``{c}``" in (VLM4Rec.__doc__ or "") for c in TEXT_CHOICES)
