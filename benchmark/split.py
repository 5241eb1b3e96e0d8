"""The persisted, fingerprinted train/valid/test split every model shares.

Schemas (all stages speak these; readers produce the *raw* ones, protocols the split):

raw interactions  ``user`` (str), ``item`` (str), ``rating`` (float32), ``timestamp`` (int64, seconds)
raw catalogue     ``item`` (str), ``title``, ``description``, ``brand`` (str), ``categories`` (list[str]),
                  ``image_url`` (str | None: the best image), ``image_urls`` (list[str]); extra columns
                  (e.g. a demo item's ``reference_caption`` or a local ``image_path``) are carried along.
split part        ``user_id``, ``item_id`` (dense int64), ``rating``, ``timestamp``,
                  ``orig_user_id``, ``orig_item_id`` (the release's ids, as strings)
split items       ``item_id``, ``orig_item_id``, catalogue fields, ``has_meta`` (bool)

Dense ids: users and items are numbered in the order of ``user_order`` / ``item_order`` when a
source fixes it (Align-MacridVAE, MMRec), otherwise by sorted original id, so the same input
always gives the same ids. Every item appearing in any part is in the catalogue; the evaluator
ranks all of them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from benchmark.errors import BenchError, IntegrityError
from benchmark.io import read_json, write_json, write_parquet

if TYPE_CHECKING:  # torch is imported by the functions that return tensors: reading and splitting data never loads it
    import torch

PARTS: tuple[str, ...] = ("train", "valid", "test")
RAW_INTERACTION_COLUMNS: tuple[str, ...] = ("user", "item", "rating", "timestamp")
CATALOGUE_COLUMNS: tuple[str, ...] = (
    "item",
    "title",
    "description",
    "brand",
    "categories",
    "image_url",
    "image_urls",
)
PART_COLUMNS: tuple[str, ...] = (
    "user_id",
    "item_id",
    "rating",
    "timestamp",
    "orig_user_id",
    "orig_item_id",
)
SCHEMA_VERSION = 1


class SplitIntegrityError(IntegrityError):
    """A persisted split does not match its recorded fingerprint (or cannot be read)."""


class NotASplitError(BenchError, FileNotFoundError):
    """A folder given as a split has no ``split.json``."""


def empty_catalogue(items: Iterable[str] = ()) -> pd.DataFrame:
    """A catalogue with the standard columns and no metadata for ``items``."""
    items = list(items)
    return pd.DataFrame(
        {
            "item": pd.Series(items, dtype=object),
            "title": "",
            "description": "",
            "brand": "",
            "categories": [[] for _ in items],
            "image_url": pd.Series([None] * len(items), dtype=object),
            "image_urls": [[] for _ in items],
        }
    )


def normalise_raw_interactions(df: pd.DataFrame) -> pd.DataFrame:
    """Coerce a raw interaction table to the standard column types (copy)."""
    missing = [c for c in RAW_INTERACTION_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"interaction table lacks columns {missing}; has {list(df.columns)}")
    out = pd.DataFrame(
        {
            "user": df["user"].astype(str).to_numpy(dtype=object),
            "item": df["item"].astype(str).to_numpy(dtype=object),
            "rating": df["rating"].astype("float32").to_numpy(),
            "timestamp": df["timestamp"].astype("int64").to_numpy(),
        }
    )
    return out


@dataclass
class Split:
    """Train/valid/test interactions with dense ids, the catalogue, and provenance."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    users: pd.DataFrame
    items: pd.DataFrame
    protocol: str
    params: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    interactions: pd.DataFrame | None = None
    """All interactions the split was cut from (dense ids), when the protocol had them."""
    catalogue_sha256: str = ""
    """:meth:`compute_catalogue_checksum` of ``items`` (titles, image URLs, … — what features are
    made from), recorded in ``split.json`` beside the fingerprint and checked on load."""

    # ----------------------------------------------------------------------------- build
    @classmethod
    def from_parts(
        cls,
        parts: Mapping[str, pd.DataFrame],
        catalogue: pd.DataFrame | None,
        protocol: str,
        params: Mapping[str, Any] | None = None,
        *,
        user_order: Sequence[str] | None = None,
        item_order: Sequence[str] | None = None,
        interactions: pd.DataFrame | None = None,
    ) -> Split:
        """Build a split from raw-schema parts (``user``, ``item``, ``rating``, ``timestamp``).

        ``catalogue`` (raw catalogue schema) supplies metadata; items without a row get empty
        fields and ``has_meta=False``. ``user_order``/``item_order`` fix the dense ids (they must
        cover every id in the parts); otherwise ids follow sorted original ids.
        """
        unknown = set(parts) - set(PARTS)
        if unknown or not set(PARTS) <= set(parts):
            raise ValueError(f"parts must be exactly {PARTS}; got {sorted(parts)}")
        raw = {name: normalise_raw_interactions(parts[name]) for name in PARTS}
        all_users = pd.unique(np.concatenate([raw[p]["user"].to_numpy() for p in PARTS]))
        all_items = pd.unique(np.concatenate([raw[p]["item"].to_numpy() for p in PARTS]))
        users = _order(all_users, user_order, "user")
        items = _order(all_items, item_order, "item")
        uidx = pd.Index(users)
        iidx = pd.Index(items)

        def dense(df: pd.DataFrame) -> pd.DataFrame:
            out = pd.DataFrame(
                {
                    "user_id": uidx.get_indexer(df["user"]).astype("int64"),
                    "item_id": iidx.get_indexer(df["item"]).astype("int64"),
                    "rating": df["rating"].to_numpy(dtype="float32"),
                    "timestamp": df["timestamp"].to_numpy(dtype="int64"),
                    "orig_user_id": df["user"].to_numpy(dtype=object),
                    "orig_item_id": df["item"].to_numpy(dtype=object),
                }
            )
            return out.sort_values(["user_id", "timestamp", "item_id"], kind="stable").reset_index(drop=True)

        dense_parts = {p: dense(raw[p]) for p in PARTS}
        user_table = pd.DataFrame({"user_id": np.arange(len(users), dtype="int64"), "orig_user_id": users})
        items_frame = item_table(items, catalogue)
        inter = None
        if interactions is not None:
            n = normalise_raw_interactions(interactions)
            # get_indexer, not isin: isin on Arrow-backed strings falls back to a Python loop
            inter = dense(n.loc[(iidx.get_indexer(n["item"]) >= 0) & (uidx.get_indexer(n["user"]) >= 0)])
        split = cls(
            train=dense_parts["train"],
            valid=dense_parts["valid"],
            test=dense_parts["test"],
            users=user_table,
            items=items_frame,
            protocol=protocol,
            params=dict(params or {}),
            interactions=inter,
        )
        split.fingerprint = split.compute_fingerprint()
        split.catalogue_sha256 = split.compute_catalogue_checksum()
        return split

    # ----------------------------------------------------------------------------- access
    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    def part(self, name: str) -> pd.DataFrame:
        if name not in PARTS:
            raise ValueError(f"unknown part {name!r}; allowed: {', '.join(PARTS)}")
        return getattr(self, name)

    def csr(self, parts: Sequence[str] = ("train",)) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-user item lists of ``parts`` as CSR ``(indptr [n_users+1], indices)`` (int64)."""
        frames = [self.part(p)[["user_id", "item_id"]] for p in parts]
        df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"user_id": [], "item_id": []})
        return interactions_to_csr(df["user_id"].to_numpy(), df["item_id"].to_numpy(), self.n_users)

    def summary(self) -> dict[str, Any]:
        """Users, items, interactions and density per part (and overall)."""
        out: dict[str, Any] = {"n_users": self.n_users, "n_items": self.n_items, "parts": {}}
        for p in PARTS:
            df = self.part(p)
            n = len(df)
            out["parts"][p] = {
                "interactions": n,
                "users": int(df["user_id"].nunique()),
                "items": int(df["item_id"].nunique()),
                "density": n / max(1, self.n_users * self.n_items),
            }
        total = sum(len(self.part(p)) for p in PARTS)
        out["interactions"] = total
        out["density"] = total / max(1, self.n_users * self.n_items)
        return out

    # ----------------------------------------------------------------------------- identity
    def compute_fingerprint(self) -> str:
        """sha256 over the protocol, its parameters, the id maps and every part's content."""
        h = fingerprint_start(self.protocol, self.params, self.n_users, self.n_items)
        hash_ids(h, [self.users["orig_user_id"]])
        h.update(b"\x1e")
        hash_ids(h, [self.items["orig_item_id"]])
        for p in PARTS:
            df = self.part(p).sort_values(list(FINGERPRINT_ORDER), kind="stable")
            h.update(p.encode())
            for col, dtype in FINGERPRINT_COLUMNS:
                h.update(np.ascontiguousarray(df[col].to_numpy(dtype=dtype)).tobytes())
        return h.hexdigest()

    def compute_catalogue_checksum(self) -> str:
        """sha256 over every column of ``items`` in item-id order: the catalogue fields, ``has_meta``
        and extras (a demo item's ``reference_caption``, an ``image_path``). Kept apart from the
        fingerprint, which identifies the interactions, so that a split's identity does not move
        with its metadata; both are recorded and checked on load."""
        return catalogue_checksum(self.items)

    def check_ids(self, where: str = "") -> None:
        """The tables agree on the id maps: ``users``/``items`` are numbered 0..n-1 and every part's
        ``orig_user_id``/``orig_item_id`` is the original id of its dense id (the fingerprint
        covers the maps and the dense ids; this covers the original ids stored beside them)."""
        for table, col in ((self.users, "user_id"), (self.items, "item_id")):
            if not np.array_equal(table[col].to_numpy(dtype="int64"), np.arange(len(table), dtype="int64")):
                raise SplitIntegrityError(f"split{where}: {col} of the {col[:4]}s table is not 0..{len(table) - 1}")
        frames = {p: self.part(p) for p in PARTS}
        if self.interactions is not None:
            frames["interactions"] = self.interactions
        # the original ids by dense id, converted once for all frames
        maps = [
            (dense, orig, table[orig].astype(str).to_numpy(dtype=object))
            for dense, orig, table in (("user_id", "orig_user_id", self.users), ("item_id", "orig_item_id", self.items))
        ]
        for name, df in frames.items():
            for dense, orig, origs in maps:
                expect = origs[df[dense].to_numpy(dtype="int64")]
                bad = np.flatnonzero(expect != df[orig].astype(str).to_numpy(dtype=object))
                if len(bad):
                    r = int(bad[0])
                    raise SplitIntegrityError(
                        f"split{where}: {name} row {r} has {orig} {df[orig].iloc[r]!r} but {dense} "
                        f"{int(df[dense].iloc[r])} is {expect[r]!r} ({len(bad)} such rows): its files changed "
                        "after it was written"
                    )

    # ----------------------------------------------------------------------------- disk
    def save(self, directory: str | Path, extra_summary: Mapping[str, Any] | None = None) -> Path:
        """Write ``{train,valid,test,items,users}.parquet``, ``split.json`` and ``summary.json``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        # of the items as written (an importer may have added columns, e.g. image paths, since from_parts)
        self.catalogue_sha256 = self.compute_catalogue_checksum()
        for p in PARTS:
            write_parquet(d / f"{p}.parquet", self.part(p))
        write_parquet(d / "items.parquet", self.items)
        write_parquet(d / "users.parquet", self.users)
        if self.interactions is not None:
            write_parquet(d / "interactions.parquet", self.interactions)
        write_split_meta(
            d, self.protocol, self.params, self.fingerprint, self.summary(), extra_summary, self.catalogue_sha256
        )
        return d

    @classmethod
    def load(cls, directory: str | Path, verify: bool = True) -> Split:
        """Load a split written by :meth:`save`; ``verify`` recomputes the fingerprint and the
        catalogue checksum and checks the original ids (:meth:`check_ids`).

        Every way the folder can be unreadable (no or corrupt ``split.json``, a missing or damaged
        parquet file, changed content) is a :class:`SplitIntegrityError` naming the folder.
        """
        d = Path(directory)
        meta_path = d / "split.json"
        if not meta_path.exists():
            raise NotASplitError(f"{d} is not a prepared split (no split.json); run `vlm4rec-bench data prepare`")
        split = cls._read(d)
        if verify:
            split.verify(d)
        elif not split.catalogue_sha256:
            split.catalogue_sha256 = split.compute_catalogue_checksum()
        return split

    @classmethod
    def _read(cls, d: Path) -> Split:
        try:
            meta = read_json(d / "split.json")
            if not isinstance(meta, dict) or not isinstance(meta.get("fingerprint"), str) or "protocol" not in meta:
                raise ValueError("expected a JSON object with protocol and fingerprint")
            parts = {p: pd.read_parquet(d / f"{p}.parquet") for p in PARTS}
            inter = pd.read_parquet(d / "interactions.parquet") if (d / "interactions.parquet").exists() else None
            users, items = pd.read_parquet(d / "users.parquet"), pd.read_parquet(d / "items.parquet")
        except (OSError, ValueError, KeyError) as exc:  # json/arrow errors derive from these
            raise SplitIntegrityError(f"split in {d} cannot be read ({type(exc).__name__}: {exc})") from None
        return cls(
            **parts,
            users=users,
            items=items,
            protocol=meta["protocol"],
            params=meta.get("params", {}),
            fingerprint=meta["fingerprint"],
            interactions=inter,
            catalogue_sha256=str(meta.get("catalogue_sha256") or ""),
        )

    def verify(self, d: Path | str = "") -> None:
        """Raise :class:`SplitIntegrityError` when the content no longer matches what was recorded."""
        where = f" in {d}" if d else ""
        try:
            actual = self.compute_fingerprint()
        except (KeyError, ValueError, TypeError) as exc:
            raise SplitIntegrityError(f"split{where} cannot be read ({type(exc).__name__}: {exc})") from None
        if actual != self.fingerprint:
            raise SplitIntegrityError(
                f"split{where} has fingerprint {actual[:12]}… but split.json records "
                f"{self.fingerprint[:12]}…: its files changed after it was written"
            )
        self.check_ids(where)
        catalogue = self.compute_catalogue_checksum()
        if not self.catalogue_sha256:  # written before catalogue checksums: nothing to check against
            logging.getLogger(__name__).warning(
                "split%s records no catalogue checksum (written by an older version); its items table is "
                "not verified — prepare it again to record one",
                where,
            )
        elif catalogue != self.catalogue_sha256:
            raise SplitIntegrityError(
                f"split{where}: items.parquet has catalogue checksum {catalogue[:12]}… but split.json records "
                f"{self.catalogue_sha256[:12]}…: titles, image URLs or other item fields changed after it was written"
            )
        self.catalogue_sha256 = catalogue


#: the order a part's rows are hashed in, and the columns hashed (with their byte layout)
FINGERPRINT_ORDER: tuple[str, ...] = ("user_id", "item_id", "timestamp")
FINGERPRINT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("user_id", "<i8"),
    ("item_id", "<i8"),
    ("rating", "<f4"),
    ("timestamp", "<i8"),
)


def fingerprint_start(protocol: str, params: Mapping[str, Any], n_users: int, n_items: int) -> Any:
    """A sha256 fed with a split's header; the id maps and the parts follow (see
    :meth:`Split.compute_fingerprint`, and the out-of-core writer that streams the same bytes)."""
    header = {"schema": SCHEMA_VERSION, "protocol": protocol, "params": params, "n_users": n_users, "n_items": n_items}
    return hashlib.sha256(json.dumps(header, sort_keys=True, default=str).encode())


def hash_ids(h: Any, chunks: Iterable[Iterable[Any]]) -> None:
    """Feed ``"\\x1f".join`` of all ids (given in consecutive chunks) to ``h``."""
    first = True
    for chunk in chunks:
        ids = list(map(str, chunk))
        if not ids:
            continue
        if not first:
            h.update(b"\x1f")
        h.update("\x1f".join(ids).encode())
        first = False


def catalogue_checksum(items: pd.DataFrame) -> str:
    """:meth:`Split.compute_catalogue_checksum` of an item table (also used by the out-of-core writer)."""
    h = hashlib.sha256()
    items = items.sort_values("item_id", kind="stable")
    for col in sorted(map(str, items.columns)):
        h.update(b"\x1c" + col.encode())
        h.update("\x1f".join(_canonical(v) for v in items[col]).encode("utf-8", "surrogatepass"))
    return h.hexdigest()


def write_split_meta(
    directory: Path,
    protocol: str,
    params: Mapping[str, Any],
    fingerprint: str,
    summary: Mapping[str, Any],
    extra_summary: Mapping[str, Any] | None = None,
    catalogue_sha256: str = "",
) -> None:
    """``split.json`` and ``summary.json`` of a split whose parquet files are written."""
    meta = {
        "schema": SCHEMA_VERSION,
        "protocol": protocol,
        "params": params,
        "fingerprint": fingerprint,
        "catalogue_sha256": catalogue_sha256,
        "n_users": summary["n_users"],
        "n_items": summary["n_items"],
    }
    write_json(directory / "split.json", meta)
    full = {"fingerprint": fingerprint, "protocol": protocol, "params": params, "split": dict(summary)}
    if extra_summary:
        full.update(extra_summary)
    write_json(directory / "summary.json", full)


def interactions_to_csr(user_ids: np.ndarray, item_ids: np.ndarray, n_users: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR of (user, item) pairs: ``indices[indptr[u]:indptr[u+1]]`` are u's items, sorted, unique."""
    import torch

    u = np.asarray(user_ids, dtype=np.int64)
    i = np.asarray(item_ids, dtype=np.int64)
    if len(u):
        pairs = np.unique(np.stack([u, i], axis=1), axis=0)
        u, i = pairs[:, 0], pairs[:, 1]
    counts = np.bincount(u, minlength=n_users) if len(u) else np.zeros(n_users, dtype=np.int64)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    return torch.from_numpy(indptr), torch.from_numpy(np.ascontiguousarray(i))


def _canonical(value: Any) -> str:
    """One catalogue cell as text that survives a parquet round trip: lists and arrays alike,
    every missing value (None, NaN, NA) alike, whole floats as integers."""
    if value is None or value is pd.NA or value is pd.NaT:
        return "\x00"
    if isinstance(value, str):
        return "s" + value
    if isinstance(value, (bool, np.bool_)):
        return "b1" if value else "b0"
    if isinstance(value, (int, np.integer)):
        return f"n{int(value)}"
    if isinstance(value, (float, np.floating)):
        f = float(value)
        if math.isnan(f):
            return "\x00"
        return f"n{int(f)}" if f.is_integer() and abs(f) < 2**53 else f"n{f!r}"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "l" + "\x1d".join(_canonical(v) for v in value) + "\x1e"
    if isinstance(value, bytes):
        return "y" + value.hex()
    return "o" + str(value)


def _order(present: np.ndarray, order: Sequence[str] | None, what: str) -> np.ndarray:
    if order is None:
        return np.array(sorted(map(str, present)), dtype=object)
    order_arr = np.array([str(x) for x in order], dtype=object)
    if len(set(order_arr)) != len(order_arr):
        raise ValueError(f"{what}_order has duplicate ids")
    missing = set(map(str, present)) - set(order_arr)
    if missing:
        example = sorted(missing)[:5]
        raise ValueError(f"{len(missing)} {what} ids in the parts are not in {what}_order, e.g. {example}")
    return order_arr


def item_table(items: np.ndarray, catalogue: pd.DataFrame | None) -> pd.DataFrame:
    """The split's item table: dense ids in the order of ``items``, catalogue fields joined
    (empty, ``has_meta`` false, for items the catalogue lacks)."""
    base = pd.DataFrame({"item_id": np.arange(len(items), dtype="int64"), "orig_item_id": items})
    cat = catalogue if catalogue is not None else empty_catalogue([])
    missing = [c for c in CATALOGUE_COLUMNS if c not in cat.columns]
    if missing:
        raise ValueError(f"catalogue lacks columns {missing}; has {list(cat.columns)}")
    if cat["item"].duplicated().any():
        raise ValueError("catalogue has duplicate item ids; de-duplicate it in the reader")
    cat = cat.rename(columns={"item": "orig_item_id"})
    cat["orig_item_id"] = cat["orig_item_id"].astype(str)
    merged = base.merge(cat, on="orig_item_id", how="left", indicator=True)
    merged["has_meta"] = merged.pop("_merge").eq("both").to_numpy()
    for col in ("title", "description", "brand"):
        merged[col] = merged[col].fillna("").astype(str)
    for col in ("categories", "image_urls"):
        merged[col] = [list(v) if isinstance(v, (list, tuple, np.ndarray)) else [] for v in merged[col]]
    # a list, not .where(notna, None): that leaves NaN in a column where every URL is missing
    merged["image_url"] = pd.Series(
        [u if isinstance(u, str) and u.strip() else None for u in merged["image_url"]], index=merged.index, dtype=object
    )
    return merged.sort_values("item_id").reset_index(drop=True)
