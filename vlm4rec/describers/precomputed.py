"""Describer backed by a file of ready-made descriptions (JSONL or Parquet).

Columns are recognised by name: the item id from ``item``/``parent_asin``/``asin``/
``orig_item_id``; the text from ``description``/``caption``/``text``. The demo catalogue's
``reference_captions.jsonl`` (``parent_asin``, ``caption``, ``source``) works as-is.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.errors import BadInputError
from benchmark.io import sha256_file
from vlm4rec.describers.base import Describer
from vlm4rec.prompts import DEFAULT_PROMPT, PromptTemplate
from vlm4rec.records import DescriptionResult, ItemRecord

log = logging.getLogger(__name__)

ID_COLUMNS = ("item", "parent_asin", "asin", "orig_item_id")
TEXT_COLUMNS = ("description", "caption", "text")


def read_description_table(path: str | Path) -> pd.DataFrame:
    """``item`` (str) → ``description`` (str) from a JSONL or Parquet file.

    A malformed line or a file without id/text columns is a :class:`BadInputError` (a
    ``ValueError``) naming the file and line: a description table is never read partially.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"descriptions file {p} does not exist")
    if p.suffix == ".parquet":
        df = pd.read_parquet(p)
    else:
        rows = []
        with open(p, encoding="utf-8") as fh:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise BadInputError(str(p), n, "malformed", f"not valid JSON ({exc.msg})") from None
        df = pd.DataFrame(rows)
    id_col = next((c for c in ID_COLUMNS if c in df.columns), None)
    text_col = next((c for c in TEXT_COLUMNS if c in df.columns), None)
    if id_col is None or text_col is None:
        raise BadInputError(
            str(p),
            None,
            "missing_field",
            f"needs an id column ({'/'.join(ID_COLUMNS)}) and a text column "
            f"({'/'.join(TEXT_COLUMNS)}); it has {list(df.columns)}",
        )
    out = pd.DataFrame({"item": df[id_col].astype(str), "description": df[text_col]})
    if "action" in df.columns:  # a descriptions.jsonl written by `vlm4rec-bench describe`
        out["action"] = df["action"]
    dup = out["item"].duplicated(keep="first")
    if dup.any():
        log.warning("%s: %d duplicate item ids; the first description of each is used", p, int(dup.sum()))
        out = out[~dup]
    return out.reset_index(drop=True)


class PrecomputedDescriber(Describer):
    """Looks descriptions up by item id; items absent from the file (or with empty text) fail."""

    kind = "precomputed"
    needs_image = False

    def __init__(self, path: str | Path, prompt: PromptTemplate | str = DEFAULT_PROMPT) -> None:
        super().__init__(prompt)
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"descriptions file {self.path} does not exist")
        self.file_sha256 = sha256_file(self.path)
        table = read_description_table(self.path)
        self.texts: dict[str, Any] = dict(zip(table["item"], table["description"]))

    def identity(self) -> dict[str, Any]:
        # The prompt did not produce these texts, so it is not part of the identity.
        return {"describer": self.kind, "file": self.path.name, "file_sha256": self.file_sha256}

    def rendered_prompt(self, record: ItemRecord) -> str:
        # The text is looked up by item id, so the id must be in the cache key: items that share
        # an image file (or have none) must not share one entry.
        return f"precomputed:{record.item}"

    def describe(self, batch: list[ItemRecord]) -> list[DescriptionResult]:
        out = []
        for rec in batch:
            text = self.texts.get(rec.item)
            if isinstance(text, str) and text.strip():
                out.append(DescriptionResult(rec.item, text=text.strip()))
            else:
                out.append(DescriptionResult(rec.item, error=f"no description for {rec.item} in {self.path.name}"))
        return out
