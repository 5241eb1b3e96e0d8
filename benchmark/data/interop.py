"""Splits from and to other frameworks' files.

Imports (each ends with :meth:`Split.from_parts`, keeping the source's own id order):

- :func:`import_2023_official` — the Amazon 2023 release's benchmark CSVs (protocol ``official``).
- :func:`import_align_macridvae` — the Align-MacridVAE dataset folders the VLM4Rec paper used
  (``{Category}-{image}_{text}/``; protocol ``align-macridvae``).
- :func:`import_mmrec` — MMRec's processed format (protocol ``mmrec-import``).

Exports: :func:`export_mmrec` and :func:`export_recbole` (RecBole atomic files for its
``benchmark_filename`` option), so those frameworks can run on our splits.

Align-MacridVAE folder format (from its data preparation notebooks, ``generate_data*.ipynb``):
``users.txt`` / ``items.txt`` are CSVs with a header (``,0`` resp. ``,item_id``) whose rows are
``original_id,dense_id`` (dense ids are a seeded permutation, written in dense-id order);
``images/<dense id>.png`` (when present) become the items' ``image_path`` (absolute);
``train.txt``, ``validation.txt``, ``test.txt`` are ``user,item`` CSVs of dense ids;
``embed_image.npy`` / ``embed_text.npy`` hold one row per dense item id, with all-zero rows
for items the feature extractor did not cover (and a ``none`` variant is all zeros).
The folders carry neither ratings nor timestamps: interactions get rating 1.0 and timestamp 0,
and a feature row that is all zeros (or not finite) is marked missing in the mask.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from benchmark.data.amazon2023 import read_benchmark_csv
from benchmark.data.read_report import BadInputError, Plausibility, ReadReport
from benchmark.io import atomic_open, atomic_path, sha256_file, write_json
from benchmark.split import PARTS, Split

if TYPE_CHECKING:  # torch (under ItemFeatures) is imported where features are built, not by `data prepare`
    from benchmark.features import ItemFeatures

log = logging.getLogger(__name__)

OFFICIAL_VARIANTS: tuple[str, ...] = ("last_out", "last_out_w_his", "timestamp", "timestamp_w_his")
OFFICIAL_FILE_PART = {"train": "train", "valid": "valid", "test": "test"}
ALIGN_PART_FILES = {"train": "train.txt", "valid": "validation.txt", "test": "test.txt"}
ALIGN_FOLDER = re.compile(r"^(?P<category>.+)-(?P<image>[A-Za-z0-9]+)_(?P<text>[A-Za-z0-9]+)$")
MMREC_LABELS = {0: "train", 1: "valid", 2: "test"}
MMREC_FEATURE_FILES = {"image": "image_feat.npy", "text": "text_feat.npy"}
RECBOLE_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"


# --------------------------------------------------------------------------------------- 2023
def find_official_files(directory: str | os.PathLike[str], category: str, variant: str) -> dict[str, Path]:
    """Locate ``{category}.{train,valid,test}.csv`` of ``variant`` under ``directory``.

    ``directory`` may be the variant folder itself, its parent (``5core``/``0core``) or the
    benchmark root holding ``5core/``.
    """
    if variant not in OFFICIAL_VARIANTS:
        raise ValueError(f"unknown official variant {variant!r}; allowed: {', '.join(OFFICIAL_VARIANTS)}")
    d = Path(directory)
    candidates = [d / variant, d / "5core" / variant, d / "0core" / variant, d]
    for c in candidates:
        files = {p: c / f"{category}.{OFFICIAL_FILE_PART[p]}.csv" for p in PARTS}
        if all(f.is_file() for f in files.values()):
            return files
    looked = ", ".join(str(c / f"{category}.train.csv") for c in candidates)
    raise FileNotFoundError(f"no official {variant} files for {category}: looked for {looked}")


def import_2023_official(
    directory: str | os.PathLike[str],
    category: str,
    variant: str = "last_out_w_his",
    catalogue: pd.DataFrame | None = None,
    *,
    strict: bool = False,
    reports: list[ReadReport] | None = None,
    plausible: Plausibility | None = None,
) -> Split:
    """The Amazon 2023 official benchmark split of ``category`` as a :class:`Split` (protocol ``official``).

    Parts are taken as given (timestamps converted from milliseconds to seconds; the
    ``history`` column of ``*_w_his`` files is ignored since it is implied by the parts).
    ``params`` record the category, the variant and every source file's sha256. Read
    reports are appended to ``reports`` when given.
    """
    files = find_official_files(directory, category, variant)
    parts: dict[str, pd.DataFrame] = {}
    for name, f in files.items():
        report = ReadReport(
            file=str(f),
            release="2023",
            layout=f"official {variant} {name}",
            strict=strict,
            plausible=plausible or Plausibility(),
        )
        parts[name] = read_benchmark_csv(f, report)
        report.log_summary(log)
        if reports is not None:
            reports.append(report)
    params = {
        "source": "amazon-2023-official-benchmark",
        "category": category,
        "variant": variant,
        "timestamp_unit": "seconds (source milliseconds, floor-divided by 1000)",
        "files": {f.name: sha256_file(f) for f in files.values()},
    }
    if plausible is not None and plausible != Plausibility():
        params["plausible"] = plausible.to_dict()
    return Split.from_parts(parts, catalogue, "official", params)


# --------------------------------------------------------------------------- Align-MacridVAE
def _read_id_map(path: Path) -> list[str]:
    """``original_id,dense_id`` CSV with a header → original ids in dense-id order."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if df.shape[1] < 2:
        raise BadInputError(
            str(path), 1, "malformed", f"expected two columns (original id, dense id), got {list(df.columns)}"
        )
    return _id_map_from_frame(path, df.iloc[:, :2])


def _id_map_from_frame(path: Path, df: pd.DataFrame) -> list[str]:
    """Check an (original id, dense id) frame and return original ids in dense-id order."""
    orig, dense = df.iloc[:, 0].astype(str), df.iloc[:, 1].astype(str).str.strip()
    is_int = dense.str.fullmatch(r"\d+").to_numpy()
    if not is_int.all():
        bad = int(np.flatnonzero(~is_int)[0])
        raise BadInputError(str(path), bad + 2, "wrong_type", f"dense id {dense.iloc[bad]!r} is not an integer")
    empty = np.flatnonzero(orig.str.strip().eq("").to_numpy())
    if len(empty):
        raise BadInputError(str(path), int(empty[0]) + 2, "empty_id", "original id is empty")
    ids = dense.astype("int64").to_numpy()
    if not np.array_equal(np.sort(ids), np.arange(len(ids))):
        raise BadInputError(str(path), None, "wrong_type", f"dense ids are not a permutation of 0..{len(ids) - 1}")
    dup = orig.duplicated().to_numpy()
    if dup.any():
        first = int(np.flatnonzero(dup)[0])
        raise BadInputError(str(path), first + 2, "duplicate", f"original id {orig.iloc[first]!r} appears twice")
    out = np.empty(len(ids), dtype=object)
    out[ids] = orig.to_numpy(dtype=object)
    return out.tolist()


def _check_dense(path: Path, df: pd.DataFrame, cols_sizes: tuple[tuple[str, int], ...]) -> pd.DataFrame:
    """Dense id columns must be whole numbers in range; the first bad row is named."""
    missing = [c for c, _ in cols_sizes if c not in df.columns]
    if missing:
        raise BadInputError(str(path), 1, "missing_field", f"columns {missing} missing; has {list(df.columns)}")
    for col, n in cols_sizes:
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = np.flatnonzero((vals.isna() | (vals < 0) | (vals >= n) | (vals % 1 != 0)).to_numpy())
        if len(bad):
            raise BadInputError(
                str(path),
                int(bad[0]) + 2,
                "wrong_type",
                f"{col} {df[col].iloc[bad[0]]!r} is not an id in 0..{n - 1} ({len(bad)} such rows)",
            )
        df[col] = vals.astype("int64")
    return df


def _features_from_matrix(
    name: str,
    matrix: np.ndarray,
    n_items: int,
    source: Path,
    split: Split,
    producer: str,
    extra: Mapping[str, Any] | None = None,
) -> ItemFeatures:
    if matrix.ndim != 2 or matrix.shape[0] != n_items:
        raise BadInputError(
            str(source),
            None,
            "wrong_type",
            f"feature matrix has shape {matrix.shape}, expected ({n_items}, d) aligned to the item ids",
        )
    values = np.asarray(matrix, dtype=np.float32)
    finite = np.isfinite(values).all(axis=1)
    mask = finite & (np.abs(np.where(np.isfinite(values), values, 0)).sum(axis=1) > 0)
    values = np.where(mask[:, None], values, 0).astype(np.float32)
    provenance = {
        "producer": producer,
        "file": source.name,
        "sha256": sha256_file(source),
        "split_fingerprint": split.fingerprint,
        "missing_rows": int((~mask).sum()),
        "missing_rule": "all-zero or non-finite rows are marked missing",
        **dict(extra or {}),
    }
    from benchmark.features import ItemFeatures  # torch: imported when features are made, not with the CLI

    return ItemFeatures(name, values, mask, provenance)


def align_item_ids(folder: str | os.PathLike[str]) -> list[str]:
    """The original item ids (asins) of an Align-MacridVAE folder, in dense-id order
    (``items.txt``), e.g. to read the metadata of those items only."""
    return _read_id_map(Path(folder) / "items.txt")


def import_align_macridvae(
    folder: str | os.PathLike[str], catalogue: pd.DataFrame | None = None
) -> tuple[Split, dict[str, ItemFeatures]]:
    """An Align-MacridVAE dataset folder → (Split with their ids, features aligned to them).

    Features are named after the folder's extractors: ``{image}_image`` and ``{text}_text``
    (``Movies_and_TV-clip_clip`` gives ``clip_image`` and ``clip_text``; a ``none`` extractor is
    skipped); ``clip_image``/``clip_text`` when the folder name does not follow the pattern.
    """
    d = Path(folder)
    if not d.is_dir():
        raise FileNotFoundError(f"Align-MacridVAE folder not found: {d}")
    needed = ["users.txt", "items.txt", *ALIGN_PART_FILES.values()]
    absent = [f for f in needed if not (d / f).is_file()]
    if absent:
        raise FileNotFoundError(f"{d} is not an Align-MacridVAE dataset folder: missing {absent}")
    m = ALIGN_FOLDER.match(d.name)
    category, image_kind, text_kind = (
        (m["category"], m["image"].lower(), m["text"].lower()) if m else (d.name, "clip", "clip")
    )
    users = _read_id_map(d / "users.txt")
    items = _read_id_map(d / "items.txt")
    parts = {}
    for part, fname in ALIGN_PART_FILES.items():
        pairs = _check_dense(d / fname, pd.read_csv(d / fname), (("user", len(users)), ("item", len(items))))
        parts[part] = pd.DataFrame(
            {
                "user": np.asarray(users, dtype=object)[pairs["user"].to_numpy()],
                "item": np.asarray(items, dtype=object)[pairs["item"].to_numpy()],
                "rating": np.float32(1.0),
                "timestamp": np.int64(0),
            }
        )
    feature_files = {k: d / f"embed_{k}.npy" for k in ("image", "text")}
    params = {
        "source": "align-macridvae",
        "folder": d.name,
        "category": category,
        "image_features": image_kind,
        "text_features": text_kind,
        "rating": "implicit (1.0): the folders hold no ratings",
        "timestamp": "absent (0): the folders hold no timestamps",
        "files": {f: sha256_file(d / f) for f in needed},
    }
    split = Split.from_parts(parts, catalogue, "align-macridvae", params, user_order=users, item_order=items)
    images = d / "images"
    if images.is_dir():
        # generate_data.ipynb's save_images writes images/<dense item id>.png (an item's first
        # image on a transparent background); absolute, as the feature producers resolve relative
        # paths against different roots (the items table is not part of the fingerprint)
        root = images.resolve()
        files = [str(root / f"{k}.png") if (root / f"{k}.png").is_file() else None for k in range(split.n_items)]
        if any(files):
            split.items["image_path"] = pd.Series(files, dtype=object)
    features: dict[str, ItemFeatures] = {}
    for modality, kind in (("image", image_kind), ("text", text_kind)):
        path = feature_files[modality]
        if kind == "none" or not path.is_file():
            continue
        name = f"{kind}_{modality}"
        features[name] = _features_from_matrix(
            name,
            np.load(path, allow_pickle=False),
            split.n_items,
            path,
            split,
            "align-macridvae-import",
            {"modality": modality, "extractor": kind, "source_folder": d.name},
        )
    return split, features


# -------------------------------------------------------------------------------------- MMRec
def _read_mmrec_map(path: Path, orig_col: str, dense_col: str) -> list[str]:
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if orig_col not in df.columns or dense_col not in df.columns:
        raise BadInputError(
            str(path), 1, "missing_field", f"expected columns {orig_col}, {dense_col}; got {list(df.columns)}"
        )
    return _id_map_from_frame(path, df[[orig_col, dense_col]])


def read_mmrec_maps(folder: str | os.PathLike[str]) -> tuple[list[str] | None, list[str] | None]:
    """MMRec's ``u_id_mapping.csv`` / ``i_id_mapping.csv`` → original ids in dense-id order (None if absent)."""
    d = Path(folder)
    u = d / "u_id_mapping.csv"
    i = d / "i_id_mapping.csv"
    users = _read_mmrec_map(u, "user_id", "userID") if u.is_file() else None
    items = _read_mmrec_map(i, "asin", "itemID") if i.is_file() else None
    return users, items


def import_mmrec(
    folder: str | os.PathLike[str], dataset_name: str, catalogue: pd.DataFrame | None = None
) -> tuple[Split, dict[str, ItemFeatures]]:
    """MMRec's processed dataset folder → (Split keeping MMRec's ids, features).

    Reads ``{dataset_name}.inter`` (tab-separated ``userID itemID rating timestamp x_label``,
    x_label 0/1/2 = train/valid/test), the id maps when present (else the original id is the
    dense id as a string), and ``image_feat.npy`` / ``text_feat.npy`` as features
    ``mmrec_image`` / ``mmrec_text``. Protocol ``mmrec-import``.
    """
    d = Path(folder)
    inter_path = d / f"{dataset_name}.inter"
    if not inter_path.is_file():
        raise FileNotFoundError(f"MMRec interaction file not found: {inter_path}")
    users, items = read_mmrec_maps(d)
    df = pd.read_csv(inter_path, sep="\t")
    if "x_label" not in df.columns:
        raise BadInputError(str(inter_path), 1, "missing_field", f"column x_label missing; has {list(df.columns)}")
    for col in ("userID", "itemID"):
        if col not in df.columns:
            raise BadInputError(str(inter_path), 1, "missing_field", f"column {col} missing; has {list(df.columns)}")
    n_users = len(users) if users is not None else int(pd.to_numeric(df["userID"], errors="coerce").max()) + 1
    n_items = len(items) if items is not None else int(pd.to_numeric(df["itemID"], errors="coerce").max()) + 1
    df = _check_dense(inter_path, df, (("userID", n_users), ("itemID", n_items)))
    labels = pd.to_numeric(df["x_label"], errors="coerce")
    bad = np.flatnonzero(~labels.isin(list(MMREC_LABELS)).to_numpy())
    if len(bad):
        raise BadInputError(
            str(inter_path), int(bad[0]) + 2, "wrong_type", f"x_label {df['x_label'].iloc[bad[0]]!r} is not 0, 1 or 2"
        )
    users = users if users is not None else [str(i) for i in range(n_users)]
    items = items if items is not None else [str(i) for i in range(n_items)]
    rating = pd.to_numeric(df["rating"], errors="raise") if "rating" in df.columns else pd.Series(1.0, index=df.index)
    ts = pd.to_numeric(df["timestamp"], errors="raise") if "timestamp" in df.columns else pd.Series(0, index=df.index)
    u_arr, i_arr = np.asarray(users, dtype=object), np.asarray(items, dtype=object)
    parts = {}
    for label, part in MMREC_LABELS.items():
        sel = (labels == label).to_numpy()
        parts[part] = pd.DataFrame(
            {
                "user": u_arr[df["userID"].to_numpy()[sel]],
                "item": i_arr[df["itemID"].to_numpy()[sel]],
                "rating": rating.to_numpy()[sel].astype(np.float32),
                "timestamp": ts.to_numpy()[sel].astype(np.int64),
            }
        )
    files = [inter_path] + [d / f for f in ("u_id_mapping.csv", "i_id_mapping.csv") if (d / f).is_file()]
    params = {"source": "mmrec", "dataset": dataset_name, "files": {f.name: sha256_file(f) for f in files}}
    split = Split.from_parts(parts, catalogue, "mmrec-import", params, user_order=users, item_order=items)
    features = {}
    for role, fname in MMREC_FEATURE_FILES.items():
        path = d / fname
        if path.is_file():
            name = f"mmrec_{role}"
            features[name] = _features_from_matrix(
                name,
                np.load(path, allow_pickle=False),
                split.n_items,
                path,
                split,
                "mmrec-import",
                {"modality": role, "dataset": dataset_name},
            )
    return split, features


# ------------------------------------------------------------------------------------ exports
def _check_token(values: pd.Series, what: str) -> None:
    bad = values.astype(str).str.contains(r"[\t\r\n]", regex=True)
    if bad.any():
        raise ValueError(f"{what} {values[bad].iloc[0]!r} contains a tab or newline; it cannot be written as a token")


def export_mmrec(
    split: Split, out_dir: str | os.PathLike[str], name: str, features: Mapping[str, ItemFeatures] | None = None
) -> dict[str, Path]:
    """Write ``split`` in MMRec's processed format into ``out_dir``.

    Files: ``{name}.inter`` (``userID itemID rating timestamp x_label``, our dense ids,
    x_label 0/1/2 for train/valid/test), ``u_id_mapping.csv``, ``i_id_mapping.csv``, a dataset
    config ``{name}.yaml`` for MMRec's ``configs/dataset/``, and per entry of ``features``
    (keys are MMRec roles ``"image"``/``"text"``) ``image_feat.npy``/``text_feat.npy`` with
    zeros where the mask says an item has no feature (MMRec has no mask).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    features = dict(features or {})
    unknown = set(features) - set(MMREC_FEATURE_FILES)
    if unknown:
        raise ValueError(f"feature roles {sorted(unknown)} unknown; MMRec takes {sorted(MMREC_FEATURE_FILES)}")
    paths: dict[str, Path] = {}
    frames = []
    for label, part in MMREC_LABELS.items():
        df = split.part(part)
        frames.append(
            pd.DataFrame(
                {
                    "userID": df["user_id"],
                    "itemID": df["item_id"],
                    "rating": df["rating"].astype(float),
                    "timestamp": df["timestamp"],
                    "x_label": label,
                }
            )
        )
    inter = pd.concat(frames, ignore_index=True)
    paths["inter"] = out / f"{name}.inter"
    with atomic_open(paths["inter"], "w", encoding="utf-8", newline="") as fh:
        inter.to_csv(fh, sep="\t", index=False)
    _check_token(split.users["orig_user_id"], "user id")
    _check_token(split.items["orig_item_id"], "item id")
    paths["u_id_mapping"] = out / "u_id_mapping.csv"
    with atomic_open(paths["u_id_mapping"], "w", encoding="utf-8", newline="") as fh:
        pd.DataFrame({"user_id": split.users["orig_user_id"], "userID": split.users["user_id"]}).to_csv(
            fh, sep="\t", index=False
        )
    paths["i_id_mapping"] = out / "i_id_mapping.csv"
    with atomic_open(paths["i_id_mapping"], "w", encoding="utf-8", newline="") as fh:
        pd.DataFrame({"asin": split.items["orig_item_id"], "itemID": split.items["item_id"]}).to_csv(
            fh, sep="\t", index=False
        )
    for role, feats in features.items():
        feats.check_aligned(split.n_items)
        values = feats.values.numpy().copy()
        values[~feats.mask.numpy()] = 0.0
        paths[f"{role}_feat"] = out / MMREC_FEATURE_FILES[role]
        with atomic_path(paths[f"{role}_feat"]) as tmp:
            with open(tmp, "wb") as fh:
                np.save(fh, values.astype(np.float32))
    cfg = [
        "# MMRec dataset config written by vlm4rec-bench (copy to MMRec's configs/dataset/)",
        f"# split fingerprint: {split.fingerprint}",
        "USER_ID_FIELD: 'userID'",
        "ITEM_ID_FIELD: 'itemID'",
        "TIME_FIELD: 'timestamp'",
        "filter_out_cod_start_users: True",
        f"inter_file_name: '{name}.inter'",
        'field_separator: "\\t"',
    ]
    if "text" in features:
        cfg.append("text_feature_file: 'text_feat.npy'")
    if "image" in features:
        cfg.append("vision_feature_file: 'image_feat.npy'")
    paths["config"] = out / f"{name}.yaml"
    with atomic_open(paths["config"], "w", encoding="utf-8") as fh:
        fh.write("\n".join(cfg) + "\n")
    write_json(
        out / "vlm4rec_export.json",
        {
            "format": "mmrec",
            "name": name,
            "split_fingerprint": split.fingerprint,
            "protocol": split.protocol,
            "features": {r: f.name for r, f in features.items()},
        },
    )
    return paths


def export_recbole(split: Split, out_dir: str | os.PathLike[str], name: str) -> dict[str, Path]:
    """Write ``split`` as RecBole atomic files for its ``benchmark_filename`` option.

    RecBole reads ``{data_path}/{dataset}/{dataset}.{train,valid,test}.inter``, so the files
    go to ``out_dir`` when its name is ``name`` and to ``out_dir/name`` otherwise. Tokens are
    the original ids. Also written: ``{name}.item`` (``item_id:token``, ``title:token_seq``)
    when any item has a title, and ``{name}.yaml`` with the matching RecBole settings.
    """
    base = Path(out_dir)
    d = base if base.name == name else base / name
    d.mkdir(parents=True, exist_ok=True)
    _check_token(split.users["orig_user_id"], "user id")
    _check_token(split.items["orig_item_id"], "item id")
    paths: dict[str, Path] = {}
    for part in PARTS:
        df = split.part(part)
        p = d / f"{name}.{part}.inter"
        with atomic_open(p, "w", encoding="utf-8", newline="") as fh:
            fh.write(RECBOLE_HEADER + "\n")
            for u, i, r, t in zip(df["orig_user_id"], df["orig_item_id"], df["rating"].astype(float), df["timestamp"]):
                fh.write(f"{u}\t{i}\t{r!r}\t{int(t)}\n")
        paths[part] = p
    has_title = "title" in split.items.columns and split.items["title"].astype(str).str.strip().ne("").any()
    if has_title:
        p = d / f"{name}.item"
        titles = split.items["title"].astype(str).str.replace(r"\s+", " ", regex=True).str.strip()
        with atomic_open(p, "w", encoding="utf-8", newline="") as fh:
            fh.write("item_id:token\ttitle:token_seq\n")
            for i, t in zip(split.items["orig_item_id"], titles):
                fh.write(f"{i}\t{t}\n")
        paths["item"] = p
    load_col = "  inter: [user_id, item_id, rating, timestamp]\n" + ("  item: [item_id, title]\n" if has_title else "")
    cfg = (
        f"# RecBole dataset config written by vlm4rec-bench; split fingerprint {split.fingerprint}\n"
        f"dataset: {name}\n"
        f"data_path: {d.parent.resolve()}\n"
        "benchmark_filename: [train, valid, test]\n"
        "USER_ID_FIELD: user_id\nITEM_ID_FIELD: item_id\nRATING_FIELD: rating\nTIME_FIELD: timestamp\n"
        f"load_col:\n{load_col}"
    )
    paths["config"] = d / f"{name}.yaml"
    with atomic_open(paths["config"], "w", encoding="utf-8") as fh:
        fh.write(cfg)
    return paths
