"""The OpenAI-compatible HTTP describer against a local chat-completions server on 127.0.0.1."""

from __future__ import annotations

import base64
import json
import logging
import threading
import time

from fixtures.local_http import LocalServer, QuietHandler
from fixtures.tiny_models import make_image_split

from benchmark.split import Split
from vlm4rec.describers import OpenAIDescriber
from vlm4rec.inference import run_describe

SECRET = "sk-test-SECRET-abc123"


class Server(LocalServer):
    """Answers chat completions; item titles containing FAIL5xx / SLOW misbehave on the first try."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.attempts: dict[str, int] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(QuietHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                text = body["messages"][0]["content"][0]["text"]
                title = text.split("Product title: ")[1].split("\n")[0]
                with outer.lock:
                    outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                    n = outer.attempts[title] = outer.attempts.get(title, 0) + 1
                if "mug" in title and n == 1:
                    self.send_response(503)
                    self.end_headers()
                    self.wfile.write(b"overloaded")
                    return
                if "lamp" in title and n == 1:
                    time.sleep(1.0)  # beyond the client's timeout
                if "Product 4 " in title:
                    self.send_response(400)
                    self.end_headers()
                    self.wfile.write(b"bad request")
                    return
                if "Product 7 " in title:  # a server that echoes the credentials it got
                    self.send_response(401)
                    self.end_headers()
                    self.wfile.write(f"invalid key: {self.headers.get('Authorization')}".encode())
                    return
                content = "  " if "Product 6 " in title else f"A fine {title}."  # 6: a blank generation
                payload = {
                    "choices": [{"message": {"role": "assistant", "content": content}}],
                    "usage": {"completion_tokens": 5},
                }
                data = json.dumps(payload).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up: that is the case under test

        self.serve(Handler, "/v1")


def test_openai_describer_retries_timeouts_and_5xx_and_hides_key(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("VLM_TEST_KEY", SECRET)
    split_dir = make_image_split(tmp_path, n_items=6, n_users=2)
    split = Split.load(split_dir)
    caplog.set_level(logging.DEBUG)
    with Server() as srv:
        d = OpenAIDescriber(
            srv.url,
            "served-llava",
            api_key_env="VLM_TEST_KEY",
            max_concurrency=3,
            timeout=0.4,
            max_retries=3,
            backoff=0.01,
        )
        out = run_describe(
            split.items, d, tmp_path / "cache", tmp_path / "out", image_root=split_dir, batch_size=6, progress=False
        )
    rows = {json.loads(x)["item"]: json.loads(x) for x in out.descriptions_path.read_text().splitlines()}
    # every request: right path, bearer key, a base64 PNG data URL that decodes to the item's file
    assert all(r["path"] == "/v1/chat/completions" and r["auth"] == f"Bearer {SECRET}" for r in srv.requests)
    for r in srv.requests:
        url = r["body"]["messages"][0]["content"][1]["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        title = r["body"]["messages"][0]["content"][0]["text"].split("Product title: ")[1].split("\n")[0]
        i = int(title.split()[1])
        img = (split_dir / "images" / f"I{i:03d}.png").read_bytes()
        assert base64.b64decode(url.split(",", 1)[1]) == img
        assert r["body"]["model"] == "served-llava" and r["body"]["temperature"] == 0
    # mug items (1, 4) got a 503 first, lamp items (2, 5) a timeout first: both retried to success
    assert srv.attempts["Product 1 mug"] == 2 and srv.attempts["Product 2 lamp"] == 2
    assert rows["I001"]["description"] == "A fine Product 1 mug." and rows["I002"]["status"] == "ok"
    # a 4xx other than 429 is not retried
    assert srv.attempts["Product 4 mug"] == 2  # 503, then 400: given up
    assert rows["I004"]["status"] == "failed_generation" and "HTTP 400" in rows["I004"]["error"]
    assert out.coverage["status_counts"] == {"ok": 5, "failed_generation": 1}
    # the key is nowhere: not in logs, cache files, outputs
    assert SECRET not in caplog.text
    for p in tmp_path.rglob("*"):
        if p.is_file() and p.suffix in (".jsonl", ".json"):
            assert SECRET not in p.read_text()
    assert "VLM_TEST_KEY" not in json.dumps(d.identity())


def test_openai_describer_gives_up_after_retries(tmp_path):
    from vlm4rec.records import ItemRecord

    with Server() as srv:
        d = OpenAIDescriber(srv.url, "m", api_key_env="UNSET_VAR_FOR_TEST", timeout=0.2, max_retries=0, backoff=0.01)
        rec = ItemRecord(0, "X", {"title": "Product 9 lamp"}, image_bytes=b"\x89PNG", image_format="PNG")
        res = d.describe([rec])[0]
    assert not res.ok and "gave up after 1 attempts" in res.error and "Timeout" in res.error
    assert srv.requests[0]["auth"] is None


def test_blank_generation_is_a_counted_failure_and_echoed_key_is_redacted(tmp_path, monkeypatch, caplog):
    """A blank answer is not a description: coverage counts it as failed_generation (so the fallback
    policy applies) instead of reporting it ok. A key echoed back by the server is redacted."""
    monkeypatch.setenv("VLM_TEST_KEY", SECRET)
    split_dir = make_image_split(tmp_path, n_items=8, n_users=2)
    split = Split.load(split_dir)
    caplog.set_level(logging.DEBUG)
    with Server() as srv:
        d = OpenAIDescriber(
            srv.url, "served-llava", api_key_env="VLM_TEST_KEY", timeout=2.0, max_retries=1, backoff=0.01
        )
        items = split.items[split.items["orig_item_id"].isin(["I000", "I006", "I007"])]
        out = run_describe(
            items, d, tmp_path / "cache", tmp_path / "out", image_root=split_dir, batch_size=3, progress=False
        )
    rows = {json.loads(x)["item"]: json.loads(x) for x in out.descriptions_path.read_text().splitlines()}
    assert rows["I000"]["status"] == "ok"
    assert rows["I006"]["status"] == "failed_generation" and rows["I006"]["description"] is None
    assert rows["I006"]["error"] == "empty description" and rows["I006"]["action"] == "fallback_title"
    assert rows["I007"]["status"] == "failed_generation" and "HTTP 401" in rows["I007"]["error"]
    assert "***" in rows["I007"]["error"] and SECRET not in rows["I007"]["error"]
    assert out.coverage["status_counts"] == {"ok": 1, "failed_generation": 2}
    assert SECRET not in caplog.text
    for f in tmp_path.rglob("*"):
        if f.is_file() and f.suffix in (".jsonl", ".json"):
            assert SECRET not in f.read_text()
