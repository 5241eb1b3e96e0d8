"""Results of several splits in one table: a column group per dataset, markers within each.

:func:`group_datasets` puts run directories into datasets by split fingerprint (one fingerprint =
one set of users, so paired tests are possible only inside a group); :func:`build_table`
matches models across datasets by name, computes each dataset's comparisons with
:func:`benchmark.stats.compare` (the same tests, seeds and pairs as a one-split leaderboard) and
then applies **one** correction over every comparison of the table, so a marker's family is the
whole table, as the caption says. The rendering is :mod:`benchmark.report.multidataset`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import BenchError
from benchmark.runner.results import RunResults

__all__ = ["Dataset", "MultiTable", "build_table", "group_datasets"]


@dataclass
class Dataset:
    """The runs of one split: its column-group label and the run directory of each model."""

    label: str
    fingerprint: str
    protocol: str
    owners: dict[str, RunResults] = field(default_factory=dict)

    @property
    def models(self) -> list[str]:
        return list(self.owners)


@dataclass
class MultiTable:
    """Everything a multi-dataset leaderboard shows (see :mod:`benchmark.report.multidataset`).

    ``means[dataset][model][metric]``; ``spread`` likewise (seed spread, ``{"std": …}``);
    ``tests``: comparison records (:data:`benchmark.stats.RESULT_KEYS` plus ``dataset``) with
    ``p_adjusted`` from one correction over all of them; ``missing``: (model, dataset) cells
    without results, shown "—".
    """

    datasets: list[str]
    models: list[str]
    metrics: list[str]
    means: dict[str, dict[str, dict[str, float]]]
    spread: dict[str, dict[str, dict[str, Any]]]
    tests: list[dict[str, Any]]
    baseline: str | None
    n_users: dict[str, int]
    fingerprints: dict[str, str]
    protocols: dict[str, str]
    test: str = "auto"
    correction: str = "holm"
    alpha: float = 0.05
    no_baseline: list[str] = field(default_factory=list)
    """Datasets where the baseline has no results (no markers there)."""

    @property
    def missing(self) -> list[tuple[str, str]]:
        return [(m, d) for m in self.models for d in self.datasets if m not in self.means[d]]


def group_datasets(results: Sequence[RunResults]) -> list[Dataset]:
    """Run directories grouped by split fingerprint, in the order given; a group's label is its
    dataset config's ``name`` (with the protocol, then the fingerprint, added when labels clash).

    Raises:
        BenchError: a model that appears twice within one split.
    """
    groups: dict[str, Dataset] = {}
    for r in results:
        ds = groups.setdefault(r.fingerprint, Dataset(r.config.dataset.name, r.fingerprint, r.config.dataset.protocol))
        for m in r.models:
            if m in ds.owners:
                raise BenchError(
                    f"model {m!r} appears in more than one results directory of split {r.fingerprint[:12]}"
                )
            ds.owners[m] = r
    out = list(groups.values())
    for attempt in (lambda d: f"{d.label} ({d.protocol})", lambda d: f"{d.label} [{d.fingerprint[:8]}]"):
        labels = [d.label for d in out]
        for d in out:
            if labels.count(d.label) > 1:
                d.label = attempt(d)
    return out


def build_table(
    datasets: Sequence[Dataset],
    *,
    models: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
    baseline: str | None = None,
    test: str = "auto",
    correction: str = "holm",
    alpha: float = 0.05,
    pairs: str = "baseline",
) -> MultiTable:
    """Means, seed spread and comparisons of ``models`` on every dataset (module docstring).

    ``models``: default every model in order of first appearance; ``metrics``: default the
    metric columns every dataset has, in the first dataset's order; ``baseline``: default the
    first run's configured baseline when it has results somewhere, else the first model.

    Raises:
        BenchError: unknown model or metric, a baseline with no results at all.
    """
    from benchmark.stats import adjust_pvalues

    all_models = list(dict.fromkeys(m for d in datasets for m in d.models))
    chosen = list(models) if models else all_models
    unknown = [m for m in chosen if m not in all_models]
    if unknown:
        raise BenchError(f"unknown model(s) {unknown}; available: {', '.join(all_models)}")
    columns = _common_metrics(datasets)
    shown = list(metrics) if metrics else columns
    bad = [m for m in shown if m not in columns]
    if bad:
        raise BenchError(f"metric column(s) {bad} are not in every dataset; common to all: {', '.join(columns)}")
    first = next(iter(datasets[0].owners.values()))
    base = baseline or (first.config.baseline if first.config.baseline in chosen else chosen[0])
    if base not in chosen:
        raise BenchError(f"baseline {base!r} is not among the models: {', '.join(chosen)}")
    table = MultiTable(
        [d.label for d in datasets], chosen, shown, {}, {}, [], base, {}, {}, {}, test, correction, alpha
    )
    for d in datasets:
        present = [m for m in chosen if m in d.owners]
        table.means[d.label] = {m: {c: float(d.owners[m].per_user(m)[c].mean()) for c in shown} for m in present}
        table.spread[d.label] = {m: d.owners[m].spread(m) for m in present}
        table.n_users[d.label] = len(d.owners[present[0]].per_user(present[0])) if present else 0
        table.fingerprints[d.label], table.protocols[d.label] = d.fingerprint, d.protocol
        if base not in present:
            table.no_baseline.append(d.label)
            continue
        if len(present) > 1:
            # Each dataset's raw p-values; the correction is applied once over the whole table below.
            rows = _dataset_tests(d, present, base, shown, test, alpha, pairs)
            table.tests += [{**r, "dataset": d.label} for r in rows]
    if table.tests:
        adjusted = adjust_pvalues([t["p"] for t in table.tests], correction)
        family = f"table: {len(datasets)} datasets"
        for t, pa in zip(table.tests, adjusted):
            t.update(p_adjusted=float(pa), significant=bool(pa <= alpha), correction=correction)
            t.update(family=family, family_size=len(table.tests))
    return table


def _dataset_tests(
    d: Dataset, models: list[str], base: str, metrics: list[str], test: str, alpha: float, pairs: str
) -> list[dict[str, Any]]:
    """One dataset's comparisons (every seed of every model; no correction yet)."""
    from benchmark.stats import compare

    frames: dict[str, Any] = {}
    seeds: dict[str, list[int | None]] = {}
    for m in models:
        f, s = d.owners[m].seed_inputs([m])
        frames[m], seeds[m] = f[m], s[m]
    try:
        return compare(
            frames, baseline=base, metrics=metrics, test=test, correction="none", alpha=alpha, pairs=pairs, seeds=seeds
        )
    except ValueError as exc:  # e.g. user sets that differ between models of one split
        raise BenchError(f"{d.label}: {exc}") from None


def _common_metrics(datasets: Sequence[Dataset]) -> list[str]:
    """Metric columns present in every dataset's per-user frames, in the first one's order."""
    per_dataset = []
    for d in datasets:
        cols: set[str] = set()
        order: list[str] = []
        for m, r in d.owners.items():
            for c in r.per_user(m).columns:
                if c != "user_id" and c not in cols:
                    cols.add(c)
                    order.append(c)
        per_dataset.append(order)
    common = set.intersection(*(set(o) for o in per_dataset)) if per_dataset else set()
    return [c for c in per_dataset[0] if c in common] if per_dataset else []
