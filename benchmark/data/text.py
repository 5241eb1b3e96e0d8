"""Cleaning of HTML left in Amazon metadata text (2018 titles like ``<span class="a-size…"``).

:func:`clean_html` removes tags (also a tag cut off at the end of the string, which is how
most 2018 Magazine_Subscriptions titles look), comments and ``<script>``/``<style>`` bodies,
decodes entities (``&amp;`` → ``&``) and collapses whitespace. A ``<`` that does not start a
tag (``size < 5``, ``<3``) is left alone.
"""

from __future__ import annotations

import html
import re

_BLOCK_TAGS = r"br|p|div|li|ul|ol|tr|td|th|table|h[1-6]|hr"
_SCRIPT = re.compile(r"<\s*(script|style)\b[^>]*>.*?<\s*/\s*\1\s*>", re.I | re.S)
_COMMENT = re.compile(r"<!--.*?(-->|$)", re.S)
_BLOCK = re.compile(rf"<\s*/?\s*(?:{_BLOCK_TAGS})\b[^<>]*>", re.I)
_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9:-]*(?:\s[^<>]*)?/?\s*>")
_OPEN_TAG_AT_END = re.compile(r"<\s*/?\s*[a-zA-Z][a-zA-Z0-9:-]*(?:\s[^<>]*)?$")
_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z][a-zA-Z0-9]*);")
_SPACE = re.compile(r"\s+")


def has_html(text: str) -> bool:
    """Cheap check: could :func:`clean_html` change more than whitespace?"""
    return "<" in text or "&" in text


def clean_html(text: str) -> str:
    """``text`` without HTML markup and entities, whitespace collapsed and stripped."""
    if not text:
        return ""
    if has_html(text):
        text = _SCRIPT.sub(" ", text)
        text = _COMMENT.sub(" ", text)
        text = _BLOCK.sub(" ", text)
        text = _TAG.sub("", text)
        text = _OPEN_TAG_AT_END.sub("", text)
        if _ENTITY.search(text):
            text = html.unescape(text)
    return _SPACE.sub(" ", text).strip()


def clean_field(value: str) -> tuple[str, bool]:
    """``(cleaned, changed)`` where ``changed`` is True when markup/entities were removed."""
    cleaned = clean_html(value)
    changed = has_html(value) and cleaned != _SPACE.sub(" ", value).strip()
    return cleaned, changed
