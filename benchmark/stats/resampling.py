"""Vectorised resampling engines shared by every comparison of a table.

Both engines draw their random matrices in chunks of rows whose size depends only on the
number of users, so for a given seed a column's result does not depend on which other columns
(runs, metrics) are processed with it, and memory stays bounded (about ``CHUNK_ELEMENTS``
float64 values per chunk) however many users and resamples there are. Each chunk is one BLAS
matrix product ``[chunk × users] @ [users × columns]``.
"""

from __future__ import annotations

import numpy as np

# ~32 MiB of float64 per chunk: large enough for BLAS to be efficient, small enough to stay flat.
CHUNK_ELEMENTS = 1 << 22


def _chunk_rows(n_users: int, n_resamples: int) -> int:
    return int(max(1, min(n_resamples, CHUNK_ELEMENTS // max(1, n_users))))


def signflip_pvalues(diffs: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Two-sided paired sign-flip (randomization) p-value for each column of ``diffs``.

    ``diffs`` is ``[n_users × k]`` per-user differences (run − baseline). Under H0 each user's
    difference is symmetric about 0, so its sign is exchangeable. With ``R = n_resamples``
    random sign vectors (shared by all columns), the statistic ``|mean d|`` and the +1
    correction (Phipson & Smyth 2010)::

        p = (1 + #{ r : |mean(s_r · d)| ≥ |mean(d)| − tol }) / (1 + R)

    ``tol`` (1e-9 × max|d|) keeps float round-off from turning an exact tie (e.g. the all-flip
    vector) into a miss. All-zero differences give p = 1.
    """
    d = np.ascontiguousarray(diffs, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"diffs must be 2-D [users × columns], got shape {d.shape}")
    n, k = d.shape
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be ≥ 1, got {n_resamples}")
    total = d.sum(axis=0)
    observed = np.abs(total)
    tol = 1e-9 * np.abs(d).max(axis=0, initial=0.0)
    hits = np.zeros(k, dtype=np.int64)
    rows = _chunk_rows(n, n_resamples)
    n_bytes = (n + 7) // 8
    done = 0
    while done < n_resamples:
        r = min(rows, n_resamples - done)
        # One random bit per (resample, user): 1 = flip the sign of that user's difference.
        bits = np.unpackbits(rng.integers(0, 256, size=(r, n_bytes), dtype=np.uint8), axis=1, count=n)
        # Sum with flipped signs = total − 2 · (sum of flipped entries); compare sums, not means.
        flipped = total - 2.0 * (bits.astype(np.float64) @ d)
        hits += np.count_nonzero(np.abs(flipped) >= observed - tol, axis=0)
        done += r
    return (1.0 + hits) / (1.0 + n_resamples)


def bootstrap_means(values: np.ndarray, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Column means of ``values`` ``[n_users × k]`` over ``n_resamples`` paired bootstrap samples.

    Each bootstrap sample draws ``n_users`` users with replacement; the same users are used for
    every column, so differences and ratios between columns stay paired. Returns
    ``[n_resamples × k]``.
    """
    v = np.ascontiguousarray(values, dtype=np.float64)
    if v.ndim != 2:
        raise ValueError(f"values must be 2-D [users × columns], got shape {v.shape}")
    n, k = v.shape
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be ≥ 1, got {n_resamples}")
    out = np.empty((n_resamples, k), dtype=np.float64)
    rows = _chunk_rows(n, n_resamples)
    done = 0
    while done < n_resamples:
        r = min(rows, n_resamples - done)
        idx = rng.integers(0, n, size=(r, n))
        idx += (np.arange(r, dtype=idx.dtype) * n)[:, None]
        # Multiplicity of each user in each resample, then one matrix product for all columns.
        counts = np.bincount(idx.ravel(), minlength=r * n).reshape(r, n).astype(np.float64)
        out[done : done + r] = (counts @ v) / n
        done += r
    return out
