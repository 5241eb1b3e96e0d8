"""Per-user tables in, aligned arrays out: the one place where runs are matched user by user.

A run is given as one per-user table (one model, or values already averaged over seeds) or as
a sequence of per-user tables, one per training seed. Every table of every run must hold the
same users (``user_id``, no duplicates), numeric and finite metric values. The result holds, per
run, a ``[seeds × users × metrics]`` array with users sorted by ``user_id`` (so the input row
order never matters) and the seed ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["USER_COL", "Aligned", "RunInput", "align_runs", "select_metrics"]

USER_COL = "user_id"

RunInput = pd.DataFrame | Sequence[pd.DataFrame]
"""One per-user table, or one per seed."""


@dataclass(frozen=True)
class Aligned:
    """Runs matched user by user (see the module docstring)."""

    users: np.ndarray
    metrics: list[str]
    cubes: dict[str, np.ndarray]
    """run → ``[seeds × users × metrics]``."""
    seeds: dict[str, list[int | None]]
    """run → its seed ids (``[None]`` for a single table given without seeds)."""

    @property
    def n_users(self) -> int:
        return int(self.users.shape[0])

    def means(self, run: str) -> np.ndarray:
        """``[users × metrics]`` the run's per-user values averaged over its seeds."""
        return np.asarray(self.cubes[run].mean(axis=0))

    def n_seeds(self, run: str) -> int:
        return int(self.cubes[run].shape[0])


def select_metrics(reference: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    """The metric columns to test: as given, or ``reference``'s columns other than ``user_id``."""
    columns: list[Any] = [c for c in reference.columns if c != USER_COL]
    out = list(metrics) if metrics is not None else columns
    if not out:
        raise ValueError("no metric columns to compare")
    if len(set(out)) != len(out):
        raise ValueError(f"metrics listed twice: {out}")
    return out


def first_table(value: RunInput) -> pd.DataFrame:
    """The table of a run (the first seed's when several are given)."""
    if isinstance(value, pd.DataFrame):
        return value
    frames = list(value)
    if not frames:
        raise ValueError("a run given as a list of per-seed tables needs at least one table")
    return frames[0]


def align_runs(
    per_user_by_run: Mapping[str, RunInput],
    runs: Sequence[str],
    metrics: Sequence[str],
    seeds: Mapping[str, Sequence[int | None]] | None = None,
    reference_label: str = "baseline",
) -> Aligned:
    """Align ``runs`` (the first is the reference whose users everyone must hold).

    ``seeds`` optionally names the seeds of runs given as lists of tables (default ``0..S−1``;
    a single table gets ``[None]``). ``reference_label`` words the error for differing users
    (``"run 'a' does not hold the same users as baseline 'b'"``).
    """
    ref = runs[0]
    first = _frames(per_user_by_run[ref], ref)
    users, _ = _values(first[0], _name(ref, 0, len(first)), metrics, None)
    if len(users) < 2:
        raise ValueError(f"need at least 2 users for a paired test, got {len(users)}")
    cubes: dict[str, np.ndarray] = {}
    seed_ids: dict[str, list[int | None]] = {}
    for r in runs:
        frames = _frames(per_user_by_run[r], r)
        against = (users, f"{reference_label} {ref!r}")
        cubes[r] = np.stack([_values(f, _name(r, i, len(frames)), metrics, against)[1] for i, f in enumerate(frames)])
        seed_ids[r] = _seed_ids(r, per_user_by_run[r], len(frames), seeds)
    return Aligned(users, list(metrics), cubes, seed_ids)


def _frames(value: RunInput, run: str) -> list[pd.DataFrame]:
    if isinstance(value, pd.DataFrame):
        return [value]
    frames = list(value)
    if not frames:
        raise ValueError(f"run {run!r}: no per-user table")
    return frames


def _name(run: str, i: int, n: int) -> str:
    return f"run {run!r}" if n == 1 else f"run {run!r} (seed table {i})"


def _seed_ids(run: str, value: RunInput, n: int, seeds: Mapping[str, Sequence[int | None]] | None) -> list[int | None]:
    if seeds is not None and run in seeds:
        ids = list(seeds[run])
        if len(ids) != n:
            raise ValueError(f"run {run!r}: {len(ids)} seed id(s) for {n} per-user table(s)")
        return ids
    return [None] if isinstance(value, pd.DataFrame) else list(range(n))


def _values(
    df: pd.DataFrame, name: str, metrics: Sequence[str], against: tuple[np.ndarray, str] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Users and ``[users × metrics]`` values of one table, checked; sorted by user, or in the
    order of ``against``'s users (then the same set is required)."""
    if USER_COL not in df.columns:
        raise ValueError(f"{name}: no {USER_COL!r} column (columns: {list(df.columns)})")
    missing = [m for m in metrics if m not in df.columns]
    if missing:
        raise ValueError(f"{name} lacks metric column(s) {missing}")
    ids = df[USER_COL]
    dup = ids.duplicated()
    if dup.any():
        raise ValueError(f"{name}: {int(dup.sum())} duplicate user_id row(s), e.g. {ids[dup].iloc[0]!r}")
    table = df.set_index(USER_COL)[list(metrics)]
    if against is None:
        try:
            table = table.sort_index()
        except TypeError:  # unorderable mixed ids: keep the given order
            pass
        users = table.index.to_numpy()
    else:
        users, ref_name = against
        index = pd.Index(users)
        n_missing = len(index.difference(table.index))
        n_extra = len(table.index.difference(index))
        if n_missing or n_extra:
            raise ValueError(
                f"{name} does not hold the same users as {ref_name}: {n_missing + n_extra} user(s) differ "
                f"({n_missing} missing from the run, {n_extra} not in the {ref_name.split()[0]})"
            )
        table = table.reindex(index)
    try:
        vals = table.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: metric columns must be numeric ({exc})") from exc
    bad = ~np.isfinite(vals)
    if bad.any():
        col = int(np.nonzero(bad.any(axis=0))[0][0])
        raise ValueError(f"{name}: {int(bad.sum())} non-finite value(s), e.g. in {list(metrics)[col]!r}")
    return users, vals
