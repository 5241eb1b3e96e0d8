"""Which items get described: all of them, or the paper's captioned subset.

The paper captioned ~12% of the catalogue (4,708 items). Its
``scripts/generate_llava_next_summaries.py`` (tyvalencia/enhancing-mm-rec-sys @ 66d74f0) chose
them like this (lines 101–114, 142–163):

- only items that have an image (``available_images``: the downloaded ``data/images/*.jpg``);
- ``get_item_priority_scores(train_df)``: per item of the training interactions,
  ``popularity = (count − min) / (max − min)`` of ``train['item'].value_counts()`` (rows, so
  repeated reviews count) and, when the frame has a ``timestamp`` column,
  ``recency = (latest − min) / (max − min)`` of ``groupby('item')['timestamp'].max()``;
  ``priority = 0.7 · popularity + 0.3 · recency``; items without training rows get 0
  (``.map(priority_scores).fillna(0)``);
- sorted by priority, descending, and cut after ``--max-items``.

Here (``select: paper-priority``, ``max_items: N``) the same, with two choices made explicit:

- **ties** (pandas' ``sort_values`` default quicksort leaves their order unspecified) are broken
  by the lower dense item id, so the subset is reproducible;
- a **term with no spread** (max = min: pandas divides 0 by 0 and the ``NaN`` would zero every
  priority) is left out. This is what the paper's own run did for recency: its ``train.csv``
  has only ``user,item`` columns, so its order was by popularity alone; an imported
  Align-MacridVAE split (timestamps all 0) behaves the same way here.

The formula, the counts and the chosen items go into the descriptions' provenance.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: describer option ``select``: describe every item, or the paper's priority subset
SELECTIONS: tuple[str, ...] = ("all", "paper-priority")
POPULARITY_WEIGHT, RECENCY_WEIGHT = 0.7, 0.3
PAPER_PRIORITY_FORMULA = (
    "priority = 0.7 * minmax(training rows per item) + 0.3 * minmax(latest training timestamp per item) "
    "(items without training rows: 0; a term with max = min is left out); items with an image only; "
    "descending priority, ties by lower item id; the first max_items "
    "(generate_llava_next_summaries.py::get_item_priority_scores)"
)


def _minmax(values: pd.Series) -> pd.Series | None:
    """``(v − min) / (max − min)``, or ``None`` when every value is the same (no spread)."""
    lo, hi = values.min(), values.max()
    return None if hi == lo else (values - lo) / (hi - lo)


def paper_priority(train: pd.DataFrame, n_items: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Priority per dense item id from the training part (``item_id``, ``timestamp``), and which
    terms entered it."""
    counts = train["item_id"].value_counts()
    popularity = _minmax(counts.astype(np.float64))
    recency = _minmax(train.groupby("item_id")["timestamp"].max().astype(np.float64)) if len(train) else None
    terms: dict[str, Any] = {"popularity": popularity is not None, "recency": recency is not None}
    weighted = [w * s for w, s in ((POPULARITY_WEIGHT, popularity), (RECENCY_WEIGHT, recency)) if s is not None]
    out = np.zeros(n_items, dtype=np.float64)
    if weighted:
        total = sum(weighted[1:], weighted[0])
        out[total.index.to_numpy(dtype=np.int64)] = total.to_numpy(dtype=np.float64)
    return out, terms


@dataclass
class ItemSelection:
    """The items to describe: ``rule`` (one of :data:`SELECTIONS`) and at most ``max_items``."""

    rule: str = "all"
    max_items: int | None = None
    provenance: dict[str, Any] = field(default_factory=dict)

    def choose(self, train: pd.DataFrame, n_items: int, with_image: Collection[int]) -> set[int] | None:
        """Dense ids of the chosen items (``None``: every item), recording how in ``provenance``."""
        if self.rule == "all" and self.max_items is None:
            self.provenance = {"rule": "all"}
            return None
        candidates = np.array(sorted(int(i) for i in with_image), dtype=np.int64)
        if self.rule == "paper-priority":
            priority, terms = paper_priority(train, n_items)
            order = candidates[np.lexsort((candidates, -priority[candidates]))]
            formula = PAPER_PRIORITY_FORMULA
        else:  # "all" with a cap: the first items with an image by item id
            order, terms, formula = candidates, {}, "items with an image, by item id, the first max_items"
        chosen = order if self.max_items is None else order[: self.max_items]
        self.provenance = {
            "rule": self.rule,
            "formula": formula,
            "terms": terms,
            "max_items": self.max_items,
            "items": int(n_items),
            "items_with_image": int(len(candidates)),
            "chosen": int(len(chosen)),
            "last_priority": float(priority[chosen[-1]]) if self.rule == "paper-priority" and len(chosen) else None,
        }
        return {int(i) for i in chosen}


def chosen_among(plans: Sequence[Any], image_ok: str) -> list[int]:
    """Dense ids of the planned items whose image resolved (the candidates of a selection)."""
    return [int(p.item_id) for p in plans if p.image_status == image_ok]
