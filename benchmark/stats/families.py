"""Which comparisons are made and corrected together (a *family*), and how each is described.

A family is the set of (run, baseline, metric) comparisons whose p-values are adjusted by one
multiple-comparison correction. :func:`benchmark.stats.compare` makes one family per call:

* ``"baseline"`` — every run against one baseline, on every metric (the leaderboard's default);
* ``"all-pairs"`` — every run against every other, each unordered pair once (the earlier run in
  the given order is the baseline of the pair), on every metric;
* an explicit list of ``(run, baseline)`` pairs (the claims report: the claims' pairs, each
  counted once however many claims share it).

The adjusted p-value of a comparison depends on its family, so two reports agree on a pair
exactly when their families are the same; :func:`family_record` is what they print and store.
Each comparison's test is also named in plain words, saying which randomness it covers
(:func:`test_label`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "COMPARISONS",
    "all_pairs",
    "baseline_pairs",
    "dedupe_pairs",
    "family_record",
    "resolve_pairs",
    "test_label",
]

COMPARISONS: tuple[str, ...] = ("baseline", "all-pairs")
"""The families a results directory can be summarised with (``statistics.comparisons``)."""

_TEST_WORDS = {
    "t": "paired t-test",
    "wilcoxon": "Wilcoxon signed-rank test",
    "randomization": "paired randomization test",
    "bootstrap": "paired bootstrap test",
}


def baseline_pairs(runs: Sequence[str], baseline: str) -> list[tuple[str, str]]:
    """``(run, baseline)`` for every run but the baseline, in order."""
    return [(r, baseline) for r in runs if r != baseline]


def all_pairs(runs: Sequence[str]) -> list[tuple[str, str]]:
    """Every unordered pair once, as ``(later run, earlier run)`` in the given order."""
    runs = list(dict.fromkeys(runs))
    return [(runs[j], runs[i]) for i in range(len(runs)) for j in range(i + 1, len(runs))]


def dedupe_pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The pairs with each unordered pair kept once (first orientation seen), in order.

    A test is two-sided and symmetric, so ``(a, b)`` and ``(b, a)`` are one comparison: counting
    it twice would make the correction stricter for no reason.
    """
    seen: set[frozenset[str]] = set()
    out: list[tuple[str, str]] = []
    for run, base in pairs:
        if run == base:
            raise ValueError(f"a run cannot be compared with itself: {run!r}")
        key = frozenset((run, base))
        if key not in seen:
            seen.add(key)
            out.append((run, base))
    return out


def _side(n_seeds: int, seeds: Sequence[int | None]) -> str:
    if n_seeds >= 2:
        return f"{n_seeds} seeds"
    if seeds and seeds[0] is None:
        return "one fixed model"
    return "1 seed, its training randomness not counted"


def test_label(test: str, seeds_run: Sequence[int | None], seeds_baseline: Sequence[int | None]) -> str:
    """The test of one comparison in plain words, with what its randomness covers.

    ``seeds_*`` are the sides' seed ids (``[None]``: one model without a seed, e.g. an untrained
    method or a table of unknown origin).
    """
    n_run, n_base = len(seeds_run), len(seeds_baseline)
    trained = any(s is not None for s in [*seeds_run, *seeds_baseline])
    if test == "mixed" and max(n_run, n_base) >= 2:
        return (
            "linear mixed model over users and training seeds "
            f"(run: {_side(n_run, seeds_run)}; baseline: {_side(n_base, seeds_baseline)})"
        )
    words = "paired t-test" if test == "mixed" else _TEST_WORDS.get(test, test)
    if not trained:
        return f"{words} over users"
    return (
        f"{words} over users, conditional on the trained models "
        f"(per-user means over {n_run} and {n_base} seed(s); training randomness not counted)"
    )


def family_record(rows: Sequence[Mapping[str, Any]], description: str = "") -> dict[str, Any]:
    """The definition of the family of ``rows`` (one :func:`benchmark.stats.compare` call), as
    stored in ``statistics.json`` and printed under tables: id, size, correction, alpha, the
    pairs and metrics it holds and the tests used."""
    if not rows:
        return {}
    first = rows[0]
    pairs = list(dict.fromkeys((str(r["run"]), str(r["baseline"])) for r in rows))
    return {
        "id": first["family"],
        "size": int(first["family_size"]),
        "correction": first["correction"],
        "alpha": first["alpha"],
        "pairs": [list(p) for p in pairs],
        "metrics": list(dict.fromkeys(str(r["metric"]) for r in rows)),
        "tests": sorted({str(r["test"]) for r in rows}),
        "description": description
        or f"{len(rows)} comparisons ({len(pairs)} pair(s) × {len(set(r['metric'] for r in rows))} metric(s))",
    }


def resolve_pairs(
    per_user_by_run: Mapping[str, object],
    baseline: str | None,
    runs: Sequence[str] | None,
    pairs: str | Sequence[tuple[str, str]],
) -> tuple[list[tuple[str, str]], list[str], str, str]:
    """The pairs one :func:`benchmark.stats.compare` call tests (see its ``pairs``): returns
    ``(pairs, runs in alignment order — the reference first, default family name, the word for
    the reference in error messages)``."""
    names = list(runs) if runs is not None else list(per_user_by_run)
    unknown = [r for r in names if r not in per_user_by_run]
    if unknown:
        raise ValueError(f"unknown run(s) {unknown}; known: {sorted(per_user_by_run)}")
    if isinstance(pairs, str):
        if pairs == "baseline":
            if baseline is None or baseline not in per_user_by_run:
                raise ValueError(f"baseline {baseline!r} is not among the runs: {sorted(per_user_by_run)}")
            listed = baseline_pairs(names, baseline)
            return listed, [baseline, *(r for r, _ in listed)], f"vs {baseline}", "baseline"
        if pairs == "all-pairs":
            if baseline is not None and baseline in per_user_by_run:
                names = [baseline, *(r for r in names if r != baseline)]
            return all_pairs(names), list(dict.fromkeys(names)), "all pairs", "run"
        raise ValueError(f"unknown pairs {pairs!r}; allowed: 'baseline', 'all-pairs' or a list of (run, baseline)")
    listed = [(str(r), str(b)) for r, b in pairs]
    seen: set[frozenset[str]] = set()
    for r, b in listed:
        for name in (r, b):
            if name not in per_user_by_run:
                raise ValueError(f"unknown run {name!r} in pair ({r!r}, {b!r}); known: {sorted(per_user_by_run)}")
        if r == b or frozenset((r, b)) in seen:
            raise ValueError(f"pair ({r!r}, {b!r}) compares a run with itself or is listed twice")
        seen.add(frozenset((r, b)))
    models = list(dict.fromkeys(name for pair in listed for name in (pair[1], pair[0])))
    return listed, models, "custom", "run"
