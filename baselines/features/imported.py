"""Import published item-feature files, aligned to a split's dense item ids via original ids.

- MMRec: ``image_feat.npy`` / ``text_feat.npy`` whose row ``k`` is MMRec's ``itemID`` ``k``;
  MMRec's ``i_id_mapping.csv`` (tab-separated ``asin``, ``itemID``) names the original id of
  each row.
- Generic: any 2-d ``.npy`` plus a list of original item ids, one per row (a text file with one
  id per line, or a CSV/TSV with an ``item``/``asin``/``parent_asin``/``orig_item_id`` column),
  e.g. Align-MacridVAE's ``embed_image.npy`` with its ``items.txt`` order.

Loading never unpickles (``allow_pickle=False``). A row count that differs from the id list, or
a duplicated id, is a misalignment and raises. Split items absent from the file get
``mask=False`` and are counted (``not_in_file``), as are rows with NaN/inf (``non_finite``);
file ids that are not in the split are counted (``not_in_split``) and ignored.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.features import ItemFeatures
from benchmark.io import sha256_file
from benchmark.split import Split

log = logging.getLogger(__name__)

ID_COLUMNS = ("orig_item_id", "item", "item_id", "asin", "parent_asin")


def load_npy(path: str | Path) -> np.ndarray:
    """A 2-d numeric array from ``.npy`` (no pickle); anything else is a ``ValueError`` saying what it is."""
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npy array ({exc})") from None
    if isinstance(arr, np.lib.npyio.NpzFile):
        names = ", ".join(arr.files) or "none"
        arr.close()
        raise ValueError(
            f"{path}: an .npz archive (arrays: {names}), not an .npy array; save the one you want with "
            f"np.save('features.npy', np.load('{Path(path).name}')['<name>'])"
        )
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{path}: expected a 2-d numeric array, got shape {arr.shape} dtype {arr.dtype}")
    return arr


def read_id_list(path: str | Path, column: str | None = None) -> list[str]:
    """Original item ids, one per feature row, from a text file or a CSV/TSV with an id column."""
    p = Path(path)
    with open(p, encoding="utf-8") as fh:
        first = fh.readline()
    sep = "\t" if "\t" in first else ("," if "," in first else None)
    if sep is None:
        lines = [line.strip() for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
        if lines and lines[0] in ((column,) if column else ID_COLUMNS):  # a one-column file with a header
            lines = lines[1:]
        return lines
    df = pd.read_csv(p, sep=sep, dtype=str, keep_default_na=False)
    col = column or next((c for c in ID_COLUMNS if c in df.columns), None)
    if col is None or col not in df.columns:
        raise ValueError(f"{p}: no id column (looked for {column or ID_COLUMNS}); columns are {list(df.columns)}")
    return df[col].astype(str).str.strip().tolist()


def read_mmrec_item_map(path: str | Path) -> list[str]:
    """Original id of each MMRec ``itemID`` row, from ``i_id_mapping.csv``."""
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    if not {"asin", "itemID"} <= set(df.columns):
        raise ValueError(f"{path}: expected MMRec columns 'asin' and 'itemID', got {list(df.columns)}")
    ids = pd.to_numeric(df["itemID"], errors="raise").astype(np.int64).to_numpy()
    if sorted(ids.tolist()) != list(range(len(ids))):
        raise ValueError(f"{path}: itemID values are not exactly 0..{len(ids) - 1}")
    out = np.empty(len(ids), dtype=object)
    out[ids] = df["asin"].astype(str).to_numpy()
    return out.tolist()


def align_rows(
    split: Split, matrix: np.ndarray, row_ids: Sequence[str], name: str, provenance: dict | None = None
) -> ItemFeatures:
    """Rows of ``matrix`` (row ``k`` belongs to original id ``row_ids[k]``) placed at dense item ids."""
    if len(row_ids) != matrix.shape[0]:
        raise ValueError(
            f"feature file has {matrix.shape[0]} rows but the id list has {len(row_ids)} ids: they are not aligned"
        )
    ids = pd.Index([str(x) for x in row_ids])
    if ids.has_duplicates:
        dup = ids[ids.duplicated()].unique()[:5].tolist()
        raise ValueError(f"id list repeats {int(ids.duplicated().sum())} id(s), e.g. {dup}")
    rows = ids.get_indexer(split.items["orig_item_id"].astype(str))
    present = rows >= 0
    values = np.zeros((split.n_items, matrix.shape[1]), dtype=np.float32)
    values[present] = matrix[rows[present]].astype(np.float32)
    finite = np.isfinite(values).all(axis=1)
    values[~finite] = 0.0
    mask = present & finite
    counts = {
        "not_in_file": int((~present).sum()),
        "non_finite": int((present & ~finite).sum()),
        "not_in_split": int(len(ids) - present.sum()),
    }
    if counts["not_in_file"] or counts["non_finite"]:
        log.warning(
            "%s: %d of %d split items have no imported feature (not in file: %d, NaN/inf: %d)",
            name,
            int((~mask).sum()),
            split.n_items,
            counts["not_in_file"],
            counts["non_finite"],
        )
    prov = {
        "producer": "import",
        "split_fingerprint": split.fingerprint,
        "n_items": split.n_items,
        "n_missing": int((~mask).sum()),
        "counts": counts,
        **(provenance or {}),
    }
    return ItemFeatures(name, values, mask, prov)


def import_npy(
    split: Split, npy: str | Path, ids: str | Path | Sequence[str], name: str, id_column: str | None = None
) -> ItemFeatures:
    """Generic import: ``npy`` rows in the order of ``ids`` (a file path or a list of original ids)."""
    matrix = load_npy(npy)
    if isinstance(ids, (str, Path)):
        row_ids = read_id_list(ids, id_column)
        ids_src = {"ids_file": str(ids), "ids_sha256": sha256_file(ids)}
    else:
        row_ids = [str(x) for x in ids]
        ids_src = {"ids_file": None}
    return align_rows(
        split, matrix, row_ids, name, {"format": "npy", "file": str(npy), "sha256": sha256_file(npy), **ids_src}
    )


def import_mmrec(split: Split, feat: str | Path, item_map: str | Path, name: str) -> ItemFeatures:
    """MMRec import: ``feat`` (``image_feat.npy``/``text_feat.npy``) rows are ``itemID`` of ``item_map``."""
    matrix = load_npy(feat)
    row_ids = read_mmrec_item_map(item_map)
    return align_rows(
        split,
        matrix,
        row_ids,
        name,
        {
            "format": "mmrec",
            "file": str(feat),
            "sha256": sha256_file(feat),
            "ids_file": str(item_map),
            "ids_sha256": sha256_file(item_map),
        },
    )
