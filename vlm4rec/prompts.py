"""Named, versioned prompt templates for the describers.

A template has an ``instruction`` (what the user asks, with ``{field}`` placeholders filled from
the catalogue row) and a ``raw`` form (the full prompt text, with an ``<image>`` placeholder,
used as-is when the processor has no chat template). ``paper-v1`` is the paper's exact prompt
(version 2: version 1 lacked the space-and-newline after "system." that the paper's has).
Templates are immutable: a changed prompt is a new name or version, and its hash goes into
the description cache key.
"""

from __future__ import annotations

import hashlib
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.errors import BenchError

IMAGE_PLACEHOLDER = "<image>"

# Byte for byte the paper's prompt (tyvalencia/enhancing-mm-rec-sys @ 66d74f0,
# scripts/generate_llava_next_summaries.py lines 69-72, an f-string over four source lines): note the
# space *and* the newline after "system." — the first source line ends with a space.
_PAPER_INSTRUCTION = (
    "Describe this product in detail for an e-commerce recommendation system. \nInclude: visual appearance, "
    "style, color, materials, design features, and any notable characteristics.\nProduct title: {title}\n"
    "Provide a concise but informative description (2-3 sentences)."
)


class PromptFieldError(BenchError, KeyError):
    """A template names a catalogue field the items do not have."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class PromptTemplate:
    """A prompt with a name and version; ``instruction`` and ``raw`` may use any catalogue field."""

    name: str
    version: int
    instruction: str
    raw: str

    @property
    def fields(self) -> tuple[str, ...]:
        """Catalogue fields the template reads, in order of first use."""
        out: list[str] = []
        for text in (self.raw, self.instruction):
            for _, field, _, _ in string.Formatter().parse(text):
                if field is not None and field not in out:
                    if not field.isidentifier():
                        raise ValueError(f"prompt {self.name!r}: placeholder {{{field}}} must be a plain field name")
                    out.append(field)
        return tuple(out)

    @property
    def sha256(self) -> str:
        """Hash of the template (name, version and both texts): part of the cache key."""
        h = hashlib.sha256()
        for part in (self.name, str(self.version), self.instruction, self.raw):
            h.update(part.encode())
            h.update(b"\x1f")
        return h.hexdigest()

    def check_fields(self, available: set[str] | list[str]) -> None:
        """Raise :class:`PromptFieldError` naming unknown fields and the available ones."""
        unknown = [f for f in self.fields if f not in set(available)]
        if unknown:
            raise PromptFieldError(
                f"prompt {self.name!r} uses unknown catalogue field(s) {unknown}; available: {sorted(available)}"
            )

    def render(self, row: Mapping[str, Any], raw: bool = False) -> str:
        """Fill the instruction (or the raw text) from a catalogue row."""
        self.check_fields(list(row))
        values = {f: field_text(row[f]) for f in self.fields}
        return (self.raw if raw else self.instruction).format(**values)


def field_text(value: Any) -> str:
    """A catalogue value as prompt text: lists joined with ' > ' (category paths), None as ''."""
    if value is None:
        return ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return " > ".join(str(v) for v in value)
    if isinstance(value, float) and np.isnan(value):
        return ""
    return str(value)


def template_from_instruction(name: str, instruction: str, version: int = 1) -> PromptTemplate:
    """A template whose raw form is the Mistral-instruct wrapping the paper used."""
    return PromptTemplate(name, version, instruction, f"[INST] {IMAGE_PLACEHOLDER}\n{instruction} [/INST]")


PROMPTS: dict[str, PromptTemplate] = {
    "paper-v1": template_from_instruction("paper-v1", _PAPER_INSTRUCTION, 2),
    "short-v1": template_from_instruction(
        "short-v1", "Describe this product in one sentence.\nProduct title: {title}", 1
    ),
    "metadata-v1": template_from_instruction(
        "metadata-v1",
        "Describe this product for an e-commerce recommendation system: appearance, style, color, materials.\n"
        "Product title: {title}\nBrand: {brand}\nCategories: {categories}\nProvide 2-3 sentences.",
        1,
    ),
}
DEFAULT_PROMPT = "paper-v1"


def get_prompt(name: str) -> PromptTemplate:
    """A registered template by name."""
    try:
        return PROMPTS[name]
    except KeyError:
        raise KeyError(f"unknown prompt {name!r}; available: {', '.join(sorted(PROMPTS))}") from None
