"""Which text of an item gets embedded: the ablations a reviewer asks for.

- ``description``: the generated description alone
- ``title+description`` (the paper): ``f"{title}. {description}"``
- ``title``: the title alone (no LVLM at all)
- ``metadata``: title, categories and description: ``"{title}. {categories}. {description}"``
- ``catalogue``: title, categories and the catalogue's *own* description — no LVLM at all; the
  text a "BERT text-only" baseline embeds

An item whose description is missing follows the describe step's action: ``fallback_title``
embeds the title alone, ``drop`` gives it no feature (``None`` here, mask False later).
"""

from __future__ import annotations

from typing import Any

from vlm4rec.prompts import field_text

TEXT_CHOICES = ("description", "title+description", "title", "metadata", "catalogue")
NO_DESCRIPTION_NEEDED = ("title", "catalogue")
#: what an item without a description gets: its title alone, or no feature (mask False)
FALLBACKS = ("title", "drop")


def compose_text(
    title: Any,
    description: str | None,
    categories: Any = None,
    choice: str = "title+description",
    action: str = "use",
    catalogue_description: Any = None,
) -> str | None:
    """The text to embed for one item, or ``None`` when the item gets no feature."""
    if choice not in TEXT_CHOICES:
        raise ValueError(f"unknown text choice {choice!r}; allowed: {', '.join(TEXT_CHOICES)}")
    title_s = field_text(title).strip()
    if choice == "title":
        return title_s or None
    if choice == "catalogue":
        parts = (title_s, field_text(categories).strip(), field_text(catalogue_description).strip())
        return ". ".join(p for p in parts if p) or None
    if action == "drop":
        return None
    if action == "fallback_title" or description is None or not str(description).strip():
        if action == "use":
            return None  # a "use" row must have text; treat it as missing rather than embed ""
        return title_s or None
    desc = str(description).strip()
    if choice == "description":
        return desc
    if choice == "title+description":
        return f"{title_s}. {desc}"
    cats = field_text(categories).strip()
    return ". ".join(p for p in (title_s, cats, desc) if p)
