"""Describer for an OpenAI-compatible chat-completions endpoint (e.g. a vLLM server).

Each item is one request: a user message with the instruction and the image as a base64
``data:`` URL. Requests run concurrently up to ``max_concurrency``; ``timeout`` is a total
deadline per request (connect, upload, headers and body together: an endpoint trickling a byte
at a time cannot hold a request open), and a timeout, connection error, HTTP 429 or 5xx is
retried with exponential backoff (``Retry-After`` honoured), other 4xx fail the item at once.
The API key is read from the environment variable named by ``api_key_env`` at setup; it is sent
only in the ``Authorization`` header and is never part of the identity, the cache, or any log
or error text — a response that echoes it (even a 200's generated text) has it replaced by
``***`` before anything is kept.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from vlm4rec.describers.base import Describer
from vlm4rec.describers.http_deadline import DeadlineExceeded, deadline_session, within
from vlm4rec.prompts import DEFAULT_PROMPT, PromptTemplate
from vlm4rec.records import DescriptionResult, ItemRecord

log = logging.getLogger(__name__)

RETRY_STATUS = {429, 500, 502, 503, 504}
MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}


class OpenAIDescriber(Describer):
    """Chat-completions client with bounded concurrency, timeouts and retries."""

    kind = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        prompt: PromptTemplate | str = DEFAULT_PROMPT,
        *,
        api_key_env: str = "OPENAI_API_KEY",
        max_new_tokens: int = 150,
        max_concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        super().__init__(prompt)
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.api_key_env = api_key_env
        self.max_new_tokens = max_new_tokens
        self.max_concurrency = max(1, max_concurrency)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._key: str | None = None
        self._ready = False
        self._local = threading.local()
        self.n_retries = 0

    def identity(self) -> dict[str, Any]:
        out = super().identity()
        # The served model name is the identity; the URL (host) and the key are not.
        out.update({"model": self.model, "generation": {"max_tokens": self.max_new_tokens, "temperature": 0}})
        return out

    def setup(self, device=None) -> None:
        self._key = os.environ.get(self.api_key_env) or None
        self._ready = True
        if self._key is None:
            log.info("environment variable %s is not set; sending requests without an API key", self.api_key_env)

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = self._local.session = deadline_session()
        return s

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def payload(self, record: ItemRecord) -> dict[str, Any]:
        mime = MIME.get((record.image_format or "").upper(), "image/png")
        data = base64.b64encode(record.image_bytes or b"").decode("ascii")
        return {
            "model": self.model,
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": self.prompt.render(record.fields)},
                        {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{data}"}},
                    ],
                }
            ],
            "max_tokens": self.max_new_tokens,
            "temperature": 0,
        }

    def describe_one(self, record: ItemRecord) -> DescriptionResult:
        if record.image_bytes is None:
            return DescriptionResult(record.item, error=record.image_error or "no image")
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        body = self.payload(record)
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            wait = min(self.max_backoff, self.backoff * (2**attempt))
            try:
                with within(self.timeout):  # a total deadline, not a per-read one
                    resp = self._session().post(
                        f"{self.base_url}/chat/completions", json=body, headers=headers, timeout=self.timeout
                    )
            except DeadlineExceeded as exc:
                last = f"Timeout: {exc}"
            except (requests.Timeout, requests.ConnectionError) as exc:
                last = f"{type(exc).__name__}"
            else:
                if resp.status_code == 200:
                    try:
                        js = resp.json()
                        text = js["choices"][0]["message"]["content"]
                        usage = js.get("usage") or {}
                        return DescriptionResult(
                            record.item,
                            text=self._redact((text or "").strip()),  # never store an echoed key
                            n_new_tokens=usage.get("completion_tokens"),
                        )
                    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
                        return DescriptionResult(record.item, error=f"malformed response: {type(exc).__name__}")
                last = f"HTTP {resp.status_code}: {self._redact(resp.text[:200])}"
                if resp.status_code not in RETRY_STATUS:
                    return DescriptionResult(record.item, error=last)
                ra = resp.headers.get("Retry-After")
                if ra:
                    try:
                        wait = min(self.max_backoff, float(ra))
                    except ValueError:
                        pass
            if attempt < self.max_retries:
                self.n_retries += 1
                log.warning(
                    "request for %s failed (%s); retry %d/%d in %.2fs",
                    record.item,
                    last,
                    attempt + 1,
                    self.max_retries,
                    wait,
                )
                time.sleep(wait)
        return DescriptionResult(record.item, error=f"gave up after {self.max_retries + 1} attempts: {last}")

    def describe(self, batch: list[ItemRecord]) -> list[DescriptionResult]:
        if not self._ready:
            self.setup()
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, max(1, len(batch)))) as pool:
            return list(pool.map(self.describe_one, batch))
