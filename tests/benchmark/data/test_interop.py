"""Imports (2023 official, Align-MacridVAE, MMRec) and exports (MMRec, RecBole) of splits."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fixtures.amazon_files import (
    Row,
    make_items,
    make_rows,
    write_2023_benchmark,
    write_align_folder,
    write_lines,
    write_mmrec_folder,
)

from benchmark.cli import main
from benchmark.data.interop import (
    export_mmrec,
    export_recbole,
    import_2023_official,
    import_align_macridvae,
    import_mmrec,
)
from benchmark.data.read_report import BadInputError
from benchmark.features import ItemFeatures
from benchmark.split import PARTS, Split

ROWS = make_rows(n_users=15, n_items=12, per_user=6, seed=11)


def content(split: Split) -> dict:
    """What the fingerprint covers besides protocol/params: id orders and every part's rows."""
    out: dict = {"users": split.users["orig_user_id"].tolist(), "items": split.items["orig_item_id"].tolist()}
    for p in PARTS:
        df = split.part(p)
        out[p] = sorted(
            zip(
                df["user_id"].tolist(),
                df["item_id"].tolist(),
                df["rating"].astype(np.float32).tolist(),
                df["timestamp"].tolist(),
            )
        )
    return out


def simple_split(rows: list[Row] = ROWS, with_titles: bool = True) -> Split:
    df = pd.DataFrame([r.__dict__ for r in rows]).rename(columns={"ts": "timestamp"})
    df = df.sort_values(["user", "timestamp"])
    pos = df.groupby("user").cumcount(ascending=False)
    parts = {"test": df[pos == 0], "valid": df[pos == 1], "train": df[pos >= 2]}
    cat = None
    if with_titles:
        items = make_items(sorted(df["item"].unique()))
        cat = pd.DataFrame(
            {
                "item": [i["item"] for i in items],
                "title": [i["title"] + "\twith tab" for i in items],
                "description": "",
                "brand": "",
                "categories": [[] for _ in items],
                "image_url": None,
                "image_urls": [[] for _ in items],
            }
        )
    return Split.from_parts(parts, cat, "loo", {"seed": 0})


# ----------------------------------------------------------------------------- 2023 official
@pytest.mark.parametrize("variant", ["last_out_w_his", "last_out"])
def test_import_2023_official(tmp_path: Path, variant: str) -> None:
    files = write_2023_benchmark(tmp_path, "Toys", ROWS, variant=variant)
    reports: list = []
    split = import_2023_official(tmp_path, "Toys", variant, reports=reports)
    assert split.protocol == "official"
    assert split.params["variant"] == variant and split.params["category"] == "Toys"
    for p in PARTS:
        raw = pd.read_csv(files[p])
        assert len(split.part(p)) == len(raw)
        got = sorted(zip(split.part(p)["orig_user_id"], split.part(p)["orig_item_id"], split.part(p)["timestamp"]))
        assert got == sorted(zip(raw["user_id"], raw["parent_asin"], raw["timestamp"] // 1000))
        assert split.params["files"][files[p].name] == hashlib.sha256(files[p].read_bytes()).hexdigest()
    assert [r.rows_kept for r in reports] == [len(pd.read_csv(files[p])) for p in PARTS]
    # the same call from the variant folder itself gives the same split
    again = import_2023_official(files["train"].parent, "Toys", variant)
    assert again.fingerprint == split.fingerprint


def test_import_2023_official_with_catalogue_and_errors(tmp_path: Path) -> None:
    write_2023_benchmark(tmp_path, "Toys", ROWS)
    item = ROWS[0].item
    cat = pd.DataFrame(
        {
            "item": [item],
            "title": ["T"],
            "description": [""],
            "brand": [""],
            "categories": [["c"]],
            "image_url": ["u"],
            "image_urls": [["u"]],
        }
    )
    split = import_2023_official(tmp_path, "Toys", catalogue=cat)
    row = split.items.set_index("orig_item_id").loc[item]
    assert row["title"] == "T" and bool(row["has_meta"])
    assert int(split.items["has_meta"].sum()) == 1
    with pytest.raises(FileNotFoundError, match="no official last_out_w_his files for Games"):
        import_2023_official(tmp_path, "Games")
    with pytest.raises(ValueError, match="unknown official variant"):
        import_2023_official(tmp_path, "Toys", "random")


# ---------------------------------------------------------------------------- Align-MacridVAE
def test_import_align_macridvae(tmp_path: Path) -> None:
    missing = ROWS[0].item
    d = write_align_folder(tmp_path, ROWS, category="Toys", image="clip", text="clip", missing_feature_items=[missing])
    split, feats = import_align_macridvae(d)
    users = pd.read_csv(d / "users.txt")
    items = pd.read_csv(d / "items.txt")
    # their dense ids are ours: users.txt/items.txt rows are (original id, dense id)
    assert split.users["orig_user_id"].tolist() == users.set_index(users.columns[1]).sort_index().iloc[:, 0].tolist()
    assert split.items["orig_item_id"].tolist() == items.set_index("item_id").sort_index().iloc[:, 0].tolist()
    for part, fname in (("train", "train.txt"), ("valid", "validation.txt"), ("test", "test.txt")):
        pairs = pd.read_csv(d / fname)
        got = split.part(part)
        assert sorted(zip(got["user_id"], got["item_id"])) == sorted(zip(pairs["user"], pairs["item"]))
        assert (got["timestamp"] == 0).all() and (got["rating"] == 1.0).all()
    assert split.protocol == "align-macridvae" and split.params["category"] == "Toys"
    assert set(feats) == {"clip_image", "clip_text"}
    emb = np.load(d / "embed_image.npy")
    f = feats["clip_image"]
    assert f.values.shape == emb.shape and f.values.dtype.is_floating_point
    np.testing.assert_allclose(f.values.numpy(), emb.astype(np.float32))
    miss_id = int(items.loc[items.iloc[:, 0] == missing, "item_id"].iloc[0])
    assert not bool(f.mask[miss_id]) and int(f.mask.sum()) == len(emb) - 1
    assert f.provenance["split_fingerprint"] == split.fingerprint


def test_align_folder_variants_name_features(tmp_path: Path) -> None:
    d = write_align_folder(tmp_path, ROWS, category="Movies_and_TV", image="vit", text="bert")
    _, feats = import_align_macridvae(d)
    assert set(feats) == {"vit_image", "bert_text"}
    d = write_align_folder(tmp_path, ROWS, category="Movies_and_TV", image="none", text="clip")
    _, feats = import_align_macridvae(d)
    assert set(feats) == {"clip_text"}


def test_align_bad_dense_id(tmp_path: Path) -> None:
    d = write_align_folder(tmp_path, ROWS)
    lines = (d / "test.txt").read_text().splitlines()
    lines[3] = "0,99999"
    write_lines(d / "test.txt", lines, gz=False)
    with pytest.raises(BadInputError) as err:
        import_align_macridvae(d)
    assert err.value.line == 4 and "item" in str(err.value) and "test.txt" in err.value.file


# -------------------------------------------------------------------------------------- MMRec
def test_import_mmrec(tmp_path: Path) -> None:
    d = write_mmrec_folder(tmp_path, "toys", ROWS)
    split, feats = import_mmrec(d, "toys")
    inter = pd.read_csv(d / "toys.inter", sep="\t")
    imap = pd.read_csv(d / "i_id_mapping.csv", sep="\t")
    umap = pd.read_csv(d / "u_id_mapping.csv", sep="\t")
    assert split.items["orig_item_id"].tolist() == imap.sort_values("itemID")["asin"].tolist()
    assert split.users["orig_user_id"].tolist() == umap.sort_values("userID")["user_id"].tolist()
    for label, part in ((0, "train"), (1, "valid"), (2, "test")):
        want = inter[inter["x_label"] == label]
        got = split.part(part)
        assert sorted(zip(got["user_id"], got["item_id"], got["timestamp"])) == sorted(
            zip(want["userID"], want["itemID"], want["timestamp"])
        )
    assert set(feats) == {"mmrec_image", "mmrec_text"}
    np.testing.assert_array_equal(feats["mmrec_image"].values.numpy(), np.load(d / "image_feat.npy"))


def test_import_mmrec_without_maps_and_bad_label(tmp_path: Path) -> None:
    d = write_mmrec_folder(tmp_path, "toys", ROWS, with_maps=False)
    split, _ = import_mmrec(d, "toys")
    assert split.items["orig_item_id"].tolist() == [str(i) for i in range(split.n_items)]
    lines = (d / "toys.inter").read_text().splitlines()
    lines[5] = "\t".join(lines[5].split("\t")[:4] + ["7"])
    write_lines(d / "toys.inter", lines, gz=False)
    with pytest.raises(BadInputError, match="x_label") as err:
        import_mmrec(d, "toys")
    assert err.value.line == 6


def test_mmrec_round_trip(tmp_path: Path) -> None:
    split = simple_split()
    rng = np.random.default_rng(0)
    mask = np.ones(split.n_items, dtype=bool)
    mask[2] = False
    img = ItemFeatures("clip_image", rng.normal(size=(split.n_items, 5)).astype(np.float32), mask)
    paths = export_mmrec(split, tmp_path / "out", "toys", {"image": img})
    assert (tmp_path / "out" / "toys.inter").read_text().splitlines()[0] == "userID\titemID\trating\ttimestamp\tx_label"
    back, feats = import_mmrec(tmp_path / "out", "toys")
    assert content(back) == content(split)
    got = feats["mmrec_image"]
    np.testing.assert_array_equal(got.values.numpy()[mask], img.values.numpy()[mask])
    assert got.mask.tolist() == mask.tolist()  # the zero row written for the missing item reads back as missing
    assert "config" in paths and "inter_file_name: 'toys.inter'" in paths["config"].read_text()


def test_mmrec_export_rejects_unknown_role(tmp_path: Path) -> None:
    split = simple_split()
    f = ItemFeatures("x", np.zeros((split.n_items, 2), dtype=np.float32))
    with pytest.raises(ValueError, match="MMRec takes"):
        export_mmrec(split, tmp_path, "toys", {"audio": f})


# ------------------------------------------------------------------------------------ RecBole
def test_export_recbole_files(tmp_path: Path) -> None:
    split = simple_split()
    paths = export_recbole(split, tmp_path / "rb", "toys")
    d = tmp_path / "rb" / "toys"
    assert paths["train"] == d / "toys.train.inter"
    for p in PARTS:
        df = pd.read_csv(paths[p], sep="\t", dtype={"user_id:token": str, "item_id:token": str})
        assert list(df.columns) == ["user_id:token", "item_id:token", "rating:float", "timestamp:float"]
        part = split.part(p)
        assert sorted(
            zip(df["user_id:token"], df["item_id:token"], df["rating:float"], df["timestamp:float"])
        ) == sorted(
            zip(
                part["orig_user_id"],
                part["orig_item_id"],
                part["rating"].astype(float),
                part["timestamp"].astype(float),
            )
        )
    items = pd.read_csv(paths["item"], sep="\t")
    assert len(items) == split.n_items and not items["title:token_seq"].str.contains("\t").any()
    cfg = paths["config"].read_text()
    assert "benchmark_filename: [train, valid, test]" in cfg and f"data_path: {d.parent.resolve()}" in cfg


@pytest.mark.slow
def test_recbole_loads_the_export(tmp_path: Path) -> None:
    """RecBole itself reads the atomic files with benchmark_filename and keeps every row."""
    for name, alias in (("float_", np.float64), ("complex_", np.complex128), ("unicode_", np.str_)):
        if not hasattr(np, name):  # numpy 2 removed these; RecBole 1.2.1's Config reads them
            setattr(np, name, alias)
    from recbole.config import Config
    from recbole.data import create_dataset

    split = simple_split(with_titles=False)
    paths = export_recbole(split, tmp_path / "toys", "toys")
    config = Config(
        model="Pop",
        dataset="toys",
        config_file_list=[str(paths["config"])],
        config_dict={
            "device": "cpu",
            "use_gpu": False,
            "checkpoint_dir": str(tmp_path / "ckpt"),
            "show_progress": False,
            "state": "ERROR",
            "save_dataset": False,
        },
    )
    ds = create_dataset(config)
    assert ds.inter_num == sum(len(split.part(p)) for p in PARTS)
    assert ds.file_size_list == [len(split.part(p)) for p in PARTS]
    assert ds.user_num - 1 == split.n_users  # RecBole adds a padding id


# ---------------------------------------------------------------------------------------- CLI
def test_cli_import_then_export(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    d = write_align_folder(tmp_path / "src", ROWS, category="Toys")
    out = tmp_path / "imported"
    assert main(["data", "import", "align-macridvae", str(d), "--out", str(out)]) == 0
    split = Split.load(out)
    assert split.protocol == "align-macridvae"
    assert ItemFeatures.load(out / "features", "clip_image").n_items == split.n_items
    assert (
        main(
            [
                "data",
                "export",
                "mmrec",
                str(out),
                "--out",
                str(tmp_path / "mm"),
                "--name",
                "toys",
                "--image-feature",
                "clip_image",
                "--text-feature",
                "clip_text",
            ]
        )
        == 0
    )
    back, feats = import_mmrec(tmp_path / "mm", "toys")
    assert content(back) == content(split) and set(feats) == {"mmrec_image", "mmrec_text"}
    assert main(["data", "export", "recbole", str(out), "--out", str(tmp_path / "rb"), "--name", "toys"]) == 0
    assert (tmp_path / "rb" / "toys" / "toys.test.inter").is_file()
    write_2023_benchmark(tmp_path / "bench", "Toys", ROWS)
    assert (
        main(
            [
                "data",
                "import",
                "official-2023",
                str(tmp_path / "bench"),
                "--category",
                "Toys",
                "--out",
                str(tmp_path / "off"),
            ]
        )
        == 0
    )
    assert Split.load(tmp_path / "off").protocol == "official"
    assert "fingerprint" in capsys.readouterr().out


def test_cli_errors_are_user_errors(tmp_path: Path) -> None:
    assert main(["data", "import", "official-2023", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert main(["data", "import", "mmrec", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert main(["data", "export", "mmrec", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
