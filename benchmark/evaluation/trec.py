"""TREC qrels and run files: read (every bad line reported with file and line number) and write.

Formats (whitespace-separated; blank lines are counted as notes and ignored)

- qrels: ``user 0 item rel``. ``rel`` is an integer; ``rel > 0`` means relevant. A repeated
  (user, item) pair is a ``duplicate`` problem.
- run: ``user Q0 item rank score tag``. The ranking is rebuilt from the scores; the ``rank`` column
  must be an integer but is otherwise ignored (trec_eval does the same; ranks disagree with scores
  in many real files). A repeated (user, item) pair is a ``duplicate`` problem; NaN scores are
  ``wrong_type``.

Ties (:data:`TIE_RULES`, :func:`rank_run`'s ``ties``):

- ``item-asc`` (default) — score descending, then item id (as a string) **ascending**: the
  project's own rule (the in-process evaluator ranks the lower item id first).
- ``trec_eval`` — exactly what trec_eval (and pytrec_eval) does: the score is held as a 32-bit
  float (trec_eval's ``TEXT_RESULTS.sim`` is a C ``float``, so scores closer than float32 precision
  tie), then score descending, then item id **descending** by byte order (``strcmp`` of the
  docnos, reversed). Use it to reproduce numbers computed with trec_eval.

Runs without tied scores rank identically under both rules (up to the float32 rounding).

Problems raise :class:`~benchmark.data.read_report.BadInputError` (``file:line: kind: detail``) unless
``strict=False``, in which case the line is skipped and counted in the returned
:class:`~benchmark.data.read_report.ReadReport` (for duplicates the first line is kept).
Ids are kept as strings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.data.read_report import ReadReport
from benchmark.io import atomic_open
from benchmark.split import Split

__all__ = ["TIE_RULES", "read_qrels", "read_run", "rank_run", "relevant_from_qrels", "write_run", "write_qrels"]

TIE_RULES: tuple[str, ...] = ("item-asc", "trec_eval")
"""How :func:`rank_run` orders items of equal score (module docstring); the first is the default."""


def _lines(path: Path, report: ReadReport) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of every decodable line; a line that is not UTF-8 is a
    ``malformed`` problem (file and line named) instead of a crash half-way through the file."""
    with open(path, "rb") as fh:
        for no, raw in enumerate(fh, start=1):
            if no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                # a byte-order mark (Windows editors) would otherwise glue itself to the first
                # user id, which then silently matches nothing
                raw = raw[3:]
            try:
                yield no, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                report.lines_read += 1
                report.add("malformed", no, f"not UTF-8 ({exc.reason} at byte {exc.start})")


def _fields(path: Path, report: ReadReport, layout: str) -> Iterator[tuple[int, list[str]]]:
    """Whitespace-split fields of each non-blank line with exactly as many fields as ``layout``
    names; blank and short/long lines are reported, not yielded."""
    n = len(layout.split())
    for no, line in _lines(path, report):
        report.lines_read += 1
        f = line.split()
        if not f:
            report.add("blank", no)
        elif len(f) != n:
            report.add("malformed", no, f"expected {n} fields '{layout}', got {len(f)}: {line.strip()[:80]!r}")
        else:
            yield no, f


def _first_time(seen: set[tuple[str, str]], f: list[str], report: ReadReport, no: int, verb: str) -> bool:
    """True the first time (user, item) occurs; a repeat is reported as ``duplicate``."""
    key = (f[0], f[2])
    if key in seen:
        report.add("duplicate", no, f"user {f[0]} item {f[2]} {verb} twice")
        return False
    seen.add(key)
    return True


def read_qrels(path: str | Path, *, strict: bool = True) -> tuple[pd.DataFrame, ReadReport]:
    """Read ``user 0 item rel`` lines into a frame ``user, item, rel`` (str, str, int64)."""
    p = Path(path)
    report = ReadReport(file=str(p), release="trec", layout="qrels", strict=strict)
    users, items, rels = [], [], []
    seen: set[tuple[str, str]] = set()
    for no, f in _fields(p, report, "user 0 item rel"):
        try:
            rel = int(f[3])
        except ValueError:
            report.add("wrong_type", no, f"relevance {f[3]!r} is not an integer")
            continue
        if not _first_time(seen, f, report, no, "judged"):
            continue
        users.append(f[0])
        items.append(f[2])
        rels.append(rel)
    report.rows_kept = len(users)
    df = pd.DataFrame(
        {
            "user": pd.Series(users, dtype=object),
            "item": pd.Series(items, dtype=object),
            "rel": np.asarray(rels, dtype=np.int64),
        }
    )
    return df, report


def read_run(path: str | Path, *, strict: bool = True) -> tuple[pd.DataFrame, ReadReport]:
    """Read ``user Q0 item rank score tag`` lines; returns ``user, item, score, rank, tag`` as given."""
    p = Path(path)
    report = ReadReport(file=str(p), release="trec", layout="run", strict=strict)
    users, items, scores, ranks, tags = [], [], [], [], []
    seen: set[tuple[str, str]] = set()
    for no, f in _fields(p, report, "user Q0 item rank score tag"):
        try:
            rank = int(f[3])
        except ValueError:
            report.add("wrong_type", no, f"rank {f[3]!r} is not an integer")
            continue
        try:
            score = float(f[4])
        except ValueError:
            report.add("wrong_type", no, f"score {f[4]!r} is not a number")
            continue
        if math.isnan(score):
            report.add("wrong_type", no, "score is NaN")
            continue
        if not _first_time(seen, f, report, no, "listed"):
            continue
        users.append(f[0])
        items.append(f[2])
        scores.append(score)
        ranks.append(rank)
        tags.append(f[5])
    report.rows_kept = len(users)
    df = pd.DataFrame(
        {
            "user": pd.Series(users, dtype=object),
            "item": pd.Series(items, dtype=object),
            "score": np.asarray(scores, dtype=np.float64),
            "rank": np.asarray(ranks, dtype=np.int64),
            "tag": pd.Series(tags, dtype=object),
        }
    )
    return df, report


def rank_run(run: pd.DataFrame, k: int | None = None, *, ties: str = "item-asc") -> pd.DataFrame:
    """Re-rank a run frame per user by score descending, ties by ``ties`` (:data:`TIE_RULES`, see
    the module docstring); new ``rank`` 1..; keep ranks ≤ ``k``. ``score`` is returned as given."""
    if ties not in TIE_RULES:
        raise ValueError(f"unknown tie rule {ties!r}; allowed: {', '.join(TIE_RULES)}")
    df = run.assign(item=run["item"].astype(str))
    if ties == "trec_eval":
        # trec_eval compares C floats, then strcmp(docno) reversed; Python orders str by code
        # point, which for UTF-8 text is the same as byte order.
        key = df.assign(_sim=df["score"].to_numpy(dtype=np.float64).astype(np.float32))
        df = key.sort_values(["user", "_sim", "item"], ascending=[True, False, False], kind="stable")
        df = df.drop(columns="_sim")
    else:
        df = df.sort_values(["user", "score", "item"], ascending=[True, False, True], kind="stable")
    df = df.assign(rank=df.groupby("user", sort=False).cumcount().to_numpy() + 1)
    if k is not None:
        df = df[df["rank"] <= k]
    return df.reset_index(drop=True)


def relevant_from_qrels(qrels: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The relevant ``(user, item)`` pairs (``rel > 0``) and the number of judged users without any."""
    rel = qrels.loc[qrels["rel"] > 0, ["user", "item"]].reset_index(drop=True)
    n_without = int(qrels["user"].nunique() - rel["user"].nunique())
    return rel, n_without


def write_run(
    path: str | Path,
    users: Sequence[Any] | np.ndarray,
    topk: np.ndarray,
    scores: np.ndarray | None = None,
    *,
    tag: str = "run",
    item_labels: np.ndarray | None = None,
) -> Path:
    """Write top-K rows (``topk[i]`` for ``users[i]``, ``-1`` = none) as a TREC run, atomically.

    ``scores`` default to ``K - rank + 1``; ``item_labels[item_id]`` maps dense ids to the ids written.
    Ids must not contain whitespace.
    """
    if any(c.isspace() for c in tag) or not tag:
        raise ValueError(f"run tag must be a non-empty word, got {tag!r}")
    topk = np.asarray(topk)
    if scores is None:
        scores = np.broadcast_to(np.arange(topk.shape[1], 0, -1, dtype=np.float64), topk.shape)
    user_arr = np.asarray(list(users), dtype=object)
    if len(user_arr) != topk.shape[0]:
        raise ValueError(f"{len(user_arr)} users for {topk.shape[0]} top-K rows")
    r, c = np.nonzero(topk >= 0)
    items = topk[r, c]
    names = item_labels[items] if item_labels is not None else items
    out = Path(path)
    with atomic_open(out, "w", encoding="utf-8") as fh:
        for u, i, rank, s in zip(user_arr[r], names, c + 1, np.asarray(scores)[r, c]):
            fh.write(f"{_word(u)} Q0 {_word(i)} {rank} {float(s):.9g} {tag}\n")
    return out


def write_qrels(split: Split, part: str, path: str | Path) -> Path:
    """Write ``split.<part>`` as TREC qrels (original ids, rel 1), to evaluate exported runs against."""
    df = split.part(part)[["orig_user_id", "orig_item_id"]].drop_duplicates()
    out = Path(path)
    with atomic_open(out, "w", encoding="utf-8") as fh:
        for u, i in zip(df["orig_user_id"], df["orig_item_id"]):
            fh.write(f"{_word(u)} 0 {_word(i)} 1\n")
    return out


def _word(x: object) -> str:
    s = str(x)
    if not s or any(c.isspace() for c in s):
        raise ValueError(f"id {s!r} is empty or contains whitespace; TREC files cannot hold it")
    return s
