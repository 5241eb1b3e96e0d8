"""Claim verdicts: every published claim judged on its direction **and** on its size.

A claim says that one method beats others on a metric (``better``, ``than``, ``metric`` in the
published-numbers YAML). Each (better, other) pair is a comparison; the direction comes from the
test's own statistic (:mod:`benchmark.stats.compare`), oriented so that +1 means "better beats
other".

Direction verdict of a claim:

- ``contradicted`` — some pair is significant after correction with direction −1 (one is
  enough, even when other methods of the claim are missing);
- ``not testable`` — a method of the claim has no results (or the pair is outside the chosen
  family), and nothing contradicts it;
- ``supported`` — every pair significant with direction +1;
- ``not significant`` — otherwise.

Size verdict of a pair: the published relative improvement (the claim's stated size, or else
``published(better) / published(other) − 1`` from the published numbers) lies ``inside`` or
``outside`` our CI of the relative improvement, or ``n/a`` (no published size, or no CI). Of a
claim: ``outside`` when any pair is outside, ``inside`` when every pair with a size is inside,
``n/a`` when none has one. "Beats BERT by 54.9%" measured at +19.7% [+17.9%, +21.8%] is direction
``supported``, size ``outside``.

Families (``family``): ``claims`` (default) — the claims' comparisons, each distinct (metric,
pair) counted once however many claims share it, corrected together; ``run`` — the run's own
family (its ``statistics`` section: against the baseline or all pairs), so a pair's adjusted
p-value is the one in the run's ``statistics.json``; claim pairs outside it are not testable.

Evaluation modes (``mode``): the leaderboard's (``None``, full catalogue) or an extra one of the
run (``captioned-only``, the paper's protocol; :mod:`benchmark.runner.modes`). There each model
skips the users without its own items, so every pair is tested on the users both models kept
(all seeds of both), and the family is always the claims' (the run's statistics are the
leaderboard's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # annotations only: `claims --help` reads FAMILIES without importing the runner (and torch)
    from benchmark.runner.config import StatisticsConfig
    from benchmark.runner.results import RunResults

__all__ = ["FAMILIES", "ClaimPair", "claim_pairs", "judge_claims", "oriented", "size_verdict"]

FAMILIES: tuple[str, ...] = ("claims", "run")


@dataclass(frozen=True)
class ClaimPair:
    """One comparison a claim makes, in our model names."""

    claim: str
    metric: str
    better: str
    other: str

    @property
    def key(self) -> tuple[str, frozenset[str]]:
        """What makes two claims' comparisons the same test: the metric and the unordered pair."""
        return (self.metric, frozenset((self.better, self.other)))


def claim_pairs(
    pub: Mapping[str, Any], paper_to_ours: Mapping[str, str], present: Sequence[str]
) -> tuple[list[ClaimPair], dict[str, list[str]]]:
    """Every testable pair of every claim, and per claim the paper's methods without results."""
    pairs: list[ClaimPair] = []
    missing: dict[str, list[str]] = {}
    for claim in pub.get("claims", []):
        better = paper_to_ours.get(claim["better"])
        absent = [claim["better"]] if better not in present else []
        for o in claim["than"]:
            ours = paper_to_ours.get(o)
            if ours not in present:
                absent.append(o)
            elif better in present:
                pairs.append(ClaimPair(claim["id"], claim["metric"], str(better), str(ours)))
        missing[claim["id"]] = absent
    return pairs, missing


def family_rows(
    results: RunResults, pairs: Sequence[ClaimPair], statistics: StatisticsConfig, family: str, mode: str | None = None
) -> tuple[dict[tuple[str, frozenset[str]], dict[str, Any]], dict[str, Any]]:
    """The comparison row of every distinct claim pair under ``family``, and the family's record."""
    from benchmark.stats import family_record

    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; allowed: {', '.join(FAMILIES)}")
    distinct = list({p.key: p for p in pairs}.values())
    if family == "run" and mode is None:
        from benchmark.runner.stages.summary import compare_models

        models = results.models
        available = [c for c in results.per_user(models[0]).columns if c != "user_id"]
        # the summary stage's columns: the config's metric@k columns (all present in a real run)
        metrics = [c for c in results.config.metric_columns if c in available] or available
        base = statistics.baseline if statistics.baseline in models else results.baseline
        rows = compare_models(results, statistics, models, metrics, base)
        record = family_record(rows)
    else:
        rows = _claims_family(results, distinct, statistics, mode)
        record = family_record(rows, f"{len(rows)} distinct claim comparisons ({len(pairs)} in the claims)")
    by_key = {(str(r["metric"]), frozenset((str(r["run"]), str(r["baseline"])))): r for r in rows}
    record["n_claim_comparisons"] = len(pairs)
    record["n_distinct"] = len(distinct)
    return by_key, record


def _claims_family(
    results: RunResults, distinct: Sequence[ClaimPair], statistics: StatisticsConfig, mode: str | None
) -> list[dict[str, Any]]:
    """Each distinct pair tested (other as baseline) on the users both models hold in ``mode``,
    then corrected as one family."""
    from benchmark.stats import adjust_pvalues, compare

    if not distinct:
        return []
    rows: list[dict[str, Any]] = []
    for p in distinct:
        frames, seeds = results.seed_inputs([p.better, p.other], mode)
        rows += compare(
            common_users(frames),
            metrics=[p.metric],
            test=statistics.test,
            correction="none",
            alpha=statistics.alpha,
            n_resamples=statistics.n_resamples,
            pairs=[(p.better, p.other)],
            seeds=seeds,
        )
    adjusted = adjust_pvalues([r["p"] for r in rows], statistics.correction)
    for r, pa in zip(rows, adjusted):
        r.update(p_adjusted=float(pa), significant=bool(pa <= statistics.alpha), family="claims")
        r.update(family_size=len(rows), correction=statistics.correction, alpha=float(statistics.alpha))
    return rows


def common_users(frames: Mapping[str, Any]) -> dict[str, Any]:
    """Every model's frames (one, or one per seed) restricted to the users all of them hold
    (unchanged when they already agree: the leaderboard's mode evaluates every user)."""
    import pandas as pd

    tables = [f for v in frames.values() for f in ([v] if isinstance(v, pd.DataFrame) else v)]
    users = set(tables[0]["user_id"])
    for t in tables[1:]:
        users &= set(t["user_id"])
    if all(len(t) == len(users) for t in tables):
        return dict(frames)

    def keep(df: pd.DataFrame) -> pd.DataFrame:
        return df[df["user_id"].isin(users)].reset_index(drop=True)

    return {m: keep(v) if isinstance(v, pd.DataFrame) else [keep(f) for f in v] for m, v in frames.items()}


def oriented(row: Mapping[str, Any], better: str) -> dict[str, Any]:
    """``row`` as "``better`` against the other": a row stored the other way round has its
    differences, CIs, estimate and direction negated and its relative improvement inverted
    (``1/(1 + r) − 1``, with the CI's ends swapped — exact for percentile CIs)."""
    out = dict(row)
    if row["run"] == better:
        return out
    out["run"], out["baseline"] = row["baseline"], row["run"]
    out["mean_run"], out["mean_baseline"] = row["mean_baseline"], row["mean_run"]
    for key in ("mean_diff", "estimate"):
        out[key] = -float(row[key])
    out["ci_low"], out["ci_high"] = -float(row["ci_high"]), -float(row["ci_low"])
    out["direction"] = -int(row["direction"])
    out["n_seeds"] = {"run": row["n_seeds"]["baseline"], "baseline": row["n_seeds"]["run"]}
    out["seeds"] = {"run": row["seeds"]["baseline"], "baseline": row["seeds"]["run"]}
    inv = _inverse_ratio
    out["rel_improvement"] = inv(row["rel_improvement"])
    out["rel_ci_low"], out["rel_ci_high"] = inv(row["rel_ci_high"]), inv(row["rel_ci_low"])
    return out


def _inverse_ratio(r: Any) -> float:
    r = float(r)
    return 1.0 / (1.0 + r) - 1.0 if r == r and r != -1.0 else float("nan")


def size_verdict(published_rel: float | None, lo: float, hi: float) -> str:
    """``inside`` / ``outside`` our CI ``[lo, hi]`` of the relative improvement, or ``n/a``."""
    if published_rel is None or not (lo == lo and hi == hi):
        return "n/a"
    return "inside" if lo <= published_rel <= hi else "outside"


def pair_direction(p: Mapping[str, Any]) -> str:
    """A pair's own direction verdict (the claim-level rules applied to one comparison)."""
    if p["significant"] and p["direction"] < 0:
        return "contradicted"
    if p["significant"] and p["direction"] > 0:
        return "supported"
    return "not significant"


def claim_direction(pairs: Sequence[Mapping[str, Any]], untestable: bool) -> str:
    """The direction verdict of a claim (module docstring)."""
    if any(p["significant"] and p["direction"] < 0 for p in pairs):
        return "contradicted"
    if untestable or not pairs:
        return "not testable"
    if all(p["significant"] and p["direction"] > 0 for p in pairs):
        return "supported"
    return "not significant"


def claim_size(pairs: Sequence[Mapping[str, Any]]) -> str:
    sizes = [p["size_verdict"] for p in pairs if p["size_verdict"] != "n/a"]
    if not sizes:
        return "n/a"
    return "outside" if "outside" in sizes else "inside"


def published_rel(
    claim: Mapping[str, Any], pub: Mapping[str, Any], paper_other: str
) -> tuple[float | None, str | None]:
    """The published relative improvement of ``claim['better']`` over ``paper_other`` and where
    it comes from (the claim's stated size, or the published numbers of both methods)."""
    stated = claim.get("published_relative_improvement")
    if stated is not None:
        return float(stated), "stated in the claim"
    methods = pub.get("methods", {})
    b = methods.get(claim["better"], {}).get(claim["metric"])
    o = methods.get(paper_other, {}).get(claim["metric"])
    if b is None or o is None or float(o) == 0.0:
        return None, None
    return float(b) / float(o) - 1.0, "from the published numbers"


def judge_claims(
    results: RunResults,
    pub: Mapping[str, Any],
    statistics: StatisticsConfig,
    family: str = "claims",
    mode: str | None = None,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every claim with its pairs (oriented better-vs-other, each with its published size, size
    verdict and direction verdict) and its two verdicts; also the family's record. ``mode``: an
    extra evaluation mode of the run (module docstring)."""
    names = results.paper_names()
    present = results.models if mode is None else [m for m in results.models if results.seed_frames(m, mode)]
    pairs, missing = claim_pairs(pub, names, present)
    rows, record = family_rows(results, pairs, statistics, family, mode)
    ours_to_paper = {v: k for k, v in names.items()}
    verdicts = []
    for claim in pub.get("claims", []):
        tested, outside_family = [], []
        for p in (q for q in pairs if q.claim == claim["id"]):
            row = rows.get(p.key)
            if row is None:
                outside_family.append(ours_to_paper.get(p.other, p.other))
                continue
            tested.append(_pair_result(oriented(row, p.better), claim, pub, ours_to_paper.get(p.other, p.other)))
        verdicts.append(
            {
                "id": claim["id"],
                "text": claim["text"],
                "metric": claim["metric"],
                "missing": missing[claim["id"]],
                "outside_family": outside_family,
                "published_relative_improvement": claim.get("published_relative_improvement"),
                "caveats": list(claim.get("caveats", [])),
                "pairs": tested,
                "n_pairs_tested": len(tested),
                "n_pairs_claimed": len(claim["than"]),
                "direction_verdict": claim_direction(tested, bool(missing[claim["id"]] or outside_family)),
                "size_verdict": claim_size(tested),
            }
        )
        verdicts[-1]["verdict"] = verdicts[-1]["direction_verdict"]  # the key's earlier name
    return verdicts, record


def _pair_result(
    row: dict[str, Any], claim: Mapping[str, Any], pub: Mapping[str, Any], paper_other: str
) -> dict[str, Any]:
    rel, source = published_rel(claim, pub, paper_other)
    row["published_rel"], row["published_rel_source"] = rel, source
    row["size_verdict"] = size_verdict(rel, float(row["rel_ci_low"]), float(row["rel_ci_high"]))
    row["direction_verdict"] = pair_direction(row)
    mean_sign = (row["mean_diff"] > 0) - (row["mean_diff"] < 0)
    row["mean_disagrees"] = bool(row["direction"] != 0 and mean_sign != 0 and mean_sign != row["direction"])
    return row


def with_overrides(statistics: StatisticsConfig, **changes: Any) -> StatisticsConfig:
    """The run's statistics settings with the given (non-None) overrides."""
    return replace(statistics, **{k: v for k, v in changes.items() if v is not None})
