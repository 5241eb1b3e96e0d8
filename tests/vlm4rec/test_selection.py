"""Caption selection: the paper's captioned subset (generate_llava_next_summaries.py), reproducibly.

The reference is written from the script's description (tyvalencia/enhancing-mm-rec-sys @ 66d74f0,
lines 101-114 and 142-163): ``value_counts`` of the training items, min-max normalised; the
latest training timestamp per item, min-max normalised; ``0.7 * pop + 0.3 * rec``; items with
an image, ``.map(priority).fillna(0)``, sorted descending, the first ``max_items``.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from fixtures.tiny_models import make_image_split

from benchmark.split import Split
from vlm4rec.config import DescriberConfig, build_describer, build_selection
from vlm4rec.inference import run_describe
from vlm4rec.selection import PAPER_PRIORITY_FORMULA, ItemSelection, paper_priority


def script_order(train: pd.DataFrame, with_image: list[int], max_items: int, timestamps: bool = True) -> list[int]:
    """``get_item_priority_scores`` + the selection in ``main`` (pandas, as the script)."""
    counts = train["item_id"].value_counts()
    pop = (counts - counts.min()) / (counts.max() - counts.min())
    if timestamps:
        latest = train.groupby("item_id")["timestamp"].max()
        priority = 0.7 * pop + 0.3 * (latest - latest.min()) / (latest.max() - latest.min())
    else:
        priority = pop
    items = pd.DataFrame({"item_id": with_image})
    items["priority"] = items["item_id"].map(priority).fillna(0)
    # the script's sort leaves ties unordered; stable on item id is the harness's tie rule
    return items.sort_values(["priority", "item_id"], ascending=[False, True])["item_id"].head(max_items).tolist()


@pytest.fixture
def train() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 3000
    return pd.DataFrame(
        {
            "user_id": rng.integers(0, 400, n),
            "item_id": (rng.zipf(1.4, n) - 1) % 200,
            "timestamp": rng.integers(1_500_000_000, 1_540_000_000, n),
        }
    )


def test_paper_priority_is_the_scripts_order(train):
    with_image = [i for i in range(230) if i % 7]  # some items lack an image, 30 never trained on
    sel = ItemSelection("paper-priority", 60)
    chosen = sel.choose(train, 230, with_image)
    expected = script_order(train, with_image, 60)
    assert chosen == set(expected)
    assert sel.provenance["formula"] == PAPER_PRIORITY_FORMULA and "0.7" in PAPER_PRIORITY_FORMULA
    assert sel.provenance["terms"] == {"popularity": True, "recency": True}
    assert (sel.provenance["items_with_image"], sel.provenance["chosen"]) == (len(with_image), 60)
    # the order itself, not only the set: the chosen are the top 60 of the same ranking
    prio, _ = paper_priority(train, 230)
    assert sorted(expected, key=lambda i: (-prio[i], i)) == expected


def test_without_timestamps_the_order_is_by_popularity_as_the_papers_run(train):
    """The paper's train.csv had no timestamp column; an imported split's timestamps are all 0."""
    flat = train.assign(timestamp=0)
    sel = ItemSelection("paper-priority", 40)
    chosen = sel.choose(flat, 200, list(range(200)))
    assert chosen == set(script_order(train, list(range(200)), 40, timestamps=False))
    assert sel.provenance["terms"] == {"popularity": True, "recency": False}


def test_ties_are_broken_by_the_lower_item_id():
    train = pd.DataFrame({"user_id": [0, 1, 2, 3], "item_id": [5, 3, 9, 7], "timestamp": [0, 0, 0, 0]})
    sel = ItemSelection("paper-priority", 2)
    assert sel.choose(train, 10, [9, 7, 5, 3, 1]) == {1, 3}  # all tied at 0 (no spread): lowest ids
    assert ItemSelection().choose(train, 10, [1, 2]) is None  # "all": every item


def test_describe_keeps_the_chosen_items_and_records_the_selection(tmp_path):
    split_dir = make_image_split(tmp_path, n_items=12, n_users=8, missing=(1, 4))
    split = Split.load(split_dir)
    refs = tmp_path / "captions.jsonl"
    refs.write_text("".join(json.dumps({"item": f"I{i:03d}", "description": f"caption {i}"}) + "\n" for i in range(12)))
    cfg = DescriberConfig(kind="precomputed", descriptions_file=str(refs), select="paper-priority", max_items=5)
    d = build_describer(cfg)
    out = run_describe(
        split.items,
        d,
        tmp_path / "cache",
        tmp_path / "out",
        image_root=split_dir,
        fallback="drop",
        progress=False,
        selection=build_selection(cfg),
        train=split.train,
    )
    rows = pd.read_json(out.descriptions_path, lines=True).set_index("item_id")
    chosen = set(rows.index[rows["status"] == "ok"])
    assert len(chosen) == 5 and not chosen & {1, 4}  # only items with an image are candidates
    assert chosen == ItemSelection("paper-priority", 5).choose(
        split.train, 12, [i for i in range(12) if i not in (1, 4)]
    )
    assert set(rows.index[rows["status"] == "not_selected"]) == set(range(12)) - chosen
    assert (rows.loc[list(chosen), "action"] == "use").all() and (
        rows.drop(index=list(chosen))["action"] == "drop"
    ).all()
    assert out.coverage["selection"]["max_items"] == 5 and out.coverage["selection"]["items_with_image"] == 10


def test_selection_settings_are_checked():
    from benchmark.errors import ConfigError

    with pytest.raises(
        ConfigError, match="describer.select: 'best' is not allowed; allowed values: all, paper-priority"
    ):
        DescriberConfig(kind="precomputed", descriptions_file="x", select="best").validate()
    with pytest.raises(ConfigError, match="max_items: must be >= 1"):
        DescriberConfig(kind="precomputed", descriptions_file="x", max_items=0).validate()
    assert build_selection(DescriberConfig(kind="precomputed", descriptions_file="x")) is None
