"""The same data and parameters give the same split fingerprint through every front-end:
``vlm4rec-bench data prepare`` (flags and ``--config``), ``data import`` and a run config's
``dataset`` section (the runner's dataset stage) — with the protocols' defaults and with
explicit values."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from fixtures.amazon_files import Row, make_items, make_rows, write_2023_benchmark, write_meta_2023, write_reviews_2023

from benchmark.cli import main
from benchmark.configuration import from_dict
from benchmark.protocols import PAPER_SEED
from benchmark.runner.config import load_config
from benchmark.runner.stages.dataset import build_split
from benchmark.split import Split

RARE_ITEM = "B0RARE0001"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path, list[Row]]:
    """2023-layout reviews + meta; one item has only 2 interactions, so an item 5-core drops it."""
    tmp = tmp_path_factory.mktemp("front-ends")
    rows = make_rows(n_users=40, n_items=20, per_user=8, seed=5)
    rows += [Row(rows[0].user, RARE_ITEM, 4.0, rows[0].ts + 7), Row(rows[8].user, RARE_ITEM, 5.0, rows[8].ts + 7)]
    reviews = write_reviews_2023(tmp / "Toys.jsonl", rows)
    meta = write_meta_2023(tmp / "meta_Toys.jsonl", make_items(sorted({r.item for r in rows})))
    return reviews, meta, rows


def run_config(tmp: Path, dataset: dict) -> Split:
    """The split a ``vlm4rec-bench run`` config with this ``dataset`` section gets (dataset stage)."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / "experiment.yaml"
    cfg = {"experiment": "parity", "dataset": dataset, "models": [{"name": "Pop", "model": "popularity"}]}
    path.write_text(yaml.safe_dump(cfg))
    loaded = load_config(path, [f"cache_dir={tmp / 'cache'}"])
    return build_split(loaded.dataset, loaded.cache_dir).split


EXPLICIT = {"split_seed": 7, "user_kcore": 3, "item_kcore": 2}
EXPLICIT_FLAGS = ["--seed", "7", "--user-kcore", "3", "--item-kcore", "2"]


@pytest.mark.parametrize("protocol", ["paper", "mmrec"])
@pytest.mark.parametrize("explicit", [False, True], ids=["defaults", "explicit"])
def test_data_prepare_and_a_run_config_give_the_same_split(files, tmp_path, protocol, explicit):
    reviews, meta, _ = files
    flags = EXPLICIT_FLAGS if explicit else []
    out = tmp_path / "cli"
    argv = ["data", "prepare", "--release", "2023", "--reviews", str(reviews), "--meta", str(meta)]
    assert main([*argv, "--protocol", protocol, *flags, "--out", str(out)]) == 0
    by_cli = Split.load(out)

    values = {"release": "2023", "reviews": str(reviews), "meta": str(meta), "protocol": protocol}
    values |= EXPLICIT if explicit else {}
    by_run = run_config(tmp_path, {"name": "toys", "source": "files", **values})
    (tmp_path / "prep.yaml").write_text(yaml.safe_dump({**values, "out": "by-file"}))
    assert main(["data", "prepare", "--config", str(tmp_path / "prep.yaml")]) == 0
    by_file = Split.load(tmp_path / "by-file")

    assert by_cli.fingerprint == by_run.fingerprint == by_file.fingerprint
    # the resolved seed and k-core are recorded in the params (so they are in the fingerprint)
    f = by_cli.params["filtering"]
    got = (by_cli.params["seed"], f["user_kcore"], f["item_kcore"])
    if explicit:
        assert got == (7, 3, 2)
    else:
        assert got == ((PAPER_SEED, 5, 0) if protocol == "paper" else (0, 5, 5))
    # paper's recipe filters no items: the rare item stays; a 5-core on items drops it
    kept = set(by_cli.items["orig_item_id"])
    assert (RARE_ITEM in kept) == (protocol == "paper" or explicit)


def test_an_explicit_default_is_the_same_split_as_no_value(files, tmp_path):
    reviews, meta, _ = files
    base = {"name": "toys", "source": "files", "release": "2023", "reviews": str(reviews), "protocol": "paper"}
    implicit = run_config(tmp_path / "a", base)
    explicit = run_config(tmp_path / "b", {**base, "split_seed": PAPER_SEED, "user_kcore": 5, "item_kcore": 0})
    assert implicit.fingerprint == explicit.fingerprint


def test_official_files_through_every_front_end(tmp_path):
    rows = make_rows(n_users=12, n_items=10, per_user=5, seed=3)
    write_2023_benchmark(tmp_path / "bench", "Toys", rows)
    bench = tmp_path / "bench"
    # data import, data prepare --protocol official, and two config spellings of the same thing
    assert (
        main(["data", "import", "official-2023", str(bench), "--category", "Toys", "--out", str(tmp_path / "i")]) == 0
    )
    argv = ["data", "prepare", "--release", "2023", "--protocol", "official", "--reviews", str(bench)]
    assert main([*argv, "--category", "Toys", "--out", str(tmp_path / "p")]) == 0
    as_files = {"source": "files", "release": "2023", "protocol": "official", "reviews": str(bench), "category": "Toys"}
    as_source = {"source": "official-2023", "protocol": "official", "path": str(bench), "category": "Toys"}
    fps = {
        Split.load(tmp_path / "i").fingerprint,
        Split.load(tmp_path / "p").fingerprint,
        run_config(tmp_path / "f", {"name": "t", **as_files}).fingerprint,
        run_config(tmp_path / "s", {"name": "t", **as_source}).fingerprint,
    }
    assert len(fps) == 1
    split = Split.load(tmp_path / "i")
    assert split.protocol == "official" and split.params["variant"] == "last_out_w_his"
    assert len(split.test) == 12  # one test row per user, as the files say


def test_import_front_ends_agree_for_mmrec(tmp_path):
    from fixtures.amazon_files import write_mmrec_folder

    folder = write_mmrec_folder(tmp_path, "baby", make_rows(n_users=10, n_items=8, per_user=4, seed=1))
    assert main(["data", "import", "mmrec", str(folder), "--out", str(tmp_path / "i")]) == 0
    by_run = run_config(tmp_path / "r", {"name": "baby", "source": "mmrec", "path": str(folder)})
    assert Split.load(tmp_path / "i").fingerprint == by_run.fingerprint
    assert sorted(p.name for p in (tmp_path / "i" / "features").glob("*.json")) == [
        "mmrec_image.json",
        "mmrec_text.json",
    ]


def test_dataset_config_round_trips_through_to_dict(files):
    from benchmark.configuration import to_dict
    from benchmark.prepare import DatasetConfig

    reviews, _, _ = files
    ds = from_dict(DatasetConfig, {"source": "files", "release": "2023", "reviews": str(reviews), "kcore": 3})
    assert from_dict(DatasetConfig, to_dict(ds)) == ds
