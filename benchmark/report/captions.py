"""What a leaderboard's footnote says and which marks its cells carry.

Markers: a run gets ▲/▼ against the baseline when its comparison is significant after the
family's correction *and* the test's own statistic gives a direction
(:func:`~benchmark.report.labels.direction_of`); a pair stored the other way round (an all-pairs
family keeps each pair once) is read from either side. The footnote names the tests in words
(saying when one holds the trained models fixed), the correction and the family it ran over
(name, size, how many are shown), α, users, the split fingerprint, the seed flag
(:func:`seed_flags`) and, when a results directory mixes code versions, which.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from benchmark.report.labels import (
    CORRECTION_NAMES,
    TEST_NAMES,
    direction_of,
    is_finite,
    latex_escape,
    row_test_phrase,
)

__all__ = ["SEED_MARK", "SEED_SD_SHARE", "caption_info", "footnote", "seed_flags", "seed_std", "significance"]

SEED_MARK = "†"
SEED_SD_SHARE = 0.5
"""A row is marked when a seed SD reaches this share of a comparison's CI half-width."""


def seed_std(spread: Mapping[str, Mapping[str, Mapping[str, float]]] | None, run: str, metric: str) -> float | None:
    if not spread or run not in spread or metric not in spread[run]:
        return None
    s = spread[run][metric].get("std")
    return float(s) if s is not None and is_finite(s) else None


def significance(
    tests: Sequence[Mapping[str, Any]], baseline: str | None, runs: Sequence[str]
) -> tuple[str | None, dict[tuple[str, str], tuple[int, float]]]:
    """Resolve the baseline; map (run, metric) → (+1/−1/0 significant better/worse/not, p_adjusted).

    A marker needs ``significant`` and a non-zero direction from the test's own statistic
    (:func:`~benchmark.report.labels.direction_of`).
    """
    tests = list(tests)
    if baseline is None and tests:
        names = sorted({str(t["baseline"]) for t in tests})
        if len(names) > 1:
            raise ValueError(f"tests compare against several baselines {names}; pass baseline=")
        baseline = names[0]
    if baseline is not None and baseline not in runs:
        raise ValueError(f"baseline {baseline!r} is not among the runs {list(runs)}")
    sig: dict[tuple[str, str], tuple[int, float]] = {}
    used = _against(tests, baseline)
    if tests and not used:
        raise ValueError(f"none of the tests is against baseline {baseline!r}")
    for t in used:
        flipped = t["run"] == baseline  # a pair stored with the baseline as its run
        other = str(t["baseline"] if flipped else t["run"])
        direction = direction_of(t) if t["significant"] else 0
        sig[(other, str(t["metric"]))] = (-direction if flipped else direction, float(t["p_adjusted"]))
    return baseline, sig


def _against(tests: Sequence[Mapping[str, Any]], baseline: str | None) -> list[Mapping[str, Any]]:
    """The comparisons that involve ``baseline`` (an all-pairs family stores each pair once,
    with the earlier model as its baseline, so the baseline can sit on either side)."""
    return [t for t in tests if baseline in (t["baseline"], t["run"])]


def seed_flags(
    tests: Sequence[Mapping[str, Any]],
    spread: Mapping[str, Mapping[str, Mapping[str, float]]] | None,
    metrics: Sequence[str],
) -> set[str]:
    """Models whose seed SD on a shown metric is at least :data:`SEED_SD_SHARE` of the CI
    half-width of one of their comparisons on that metric (as run or as baseline)."""
    flagged: set[str] = set()
    if not spread:
        return flagged
    for t in tests:
        metric = str(t["metric"])
        if metric not in metrics or not (is_finite(t["ci_low"]) and is_finite(t["ci_high"])):
            continue
        half = (float(t["ci_high"]) - float(t["ci_low"])) / 2.0
        for side in (str(t["run"]), str(t["baseline"])):
            std = seed_std(spread, side, metric)
            if std is not None and half > 0 and std >= SEED_SD_SHARE * half:
                flagged.add(side)
    return flagged


def caption_info(cap: dict[str, Any], baseline: str | None, tests: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """What the footnote states: the caption keys, plus, when markers are shown, the tests in
    words, the family and its correction (from the comparisons when they record them)."""
    info = dict(cap)
    used = _against(tests, baseline)
    if not used:
        return info
    for key in ("correction", "alpha"):
        if key not in info and key in used[0]:
            info[key] = used[0][key]
    missing = [k for k in ("correction", "alpha") if k not in info]
    if missing:
        raise ValueError(
            f"caption must give {missing} when tests are shown (these comparison results do not record them)"
        )
    phrases = Counter(row_test_phrase(t) for t in used)
    info["tests_phrase"] = (
        next(iter(phrases))
        if len(phrases) == 1
        else "; ".join(f"{ph} for {n} comparison{'s' if n > 1 else ''}" for ph, n in phrases.items())
    )
    info.setdefault("test", str(used[0]["test"]))
    info.setdefault("n_users", int(used[0]["n_users"]))
    info["family"] = int(used[0].get("family_size", len(used)))
    if "family" in used[0]:
        info["family_name"] = str(used[0]["family"])
    info["n_shown"] = len(used)
    info["baseline"] = baseline
    return info


def footnote(info: Mapping[str, Any], fmt: str) -> str:
    esc = (lambda x: str(x)) if fmt == "md" else latex_escape
    parts: list[str] = []
    up, down = ("▲", "▼") if fmt == "md" else (r"$\uparrow$", r"$\downarrow$")
    if "baseline" in info:
        corr = CORRECTION_NAMES.get(str(info["correction"]), str(info["correction"]))
        alpha_sym = "α" if fmt == "md" else r"$\alpha$"
        family = f"{info['family']} comparisons"
        if info.get("family_name"):
            family = f'the family "{info["family_name"]}" of {family}'
            if info["family"] > info["n_shown"]:
                family += f" ({info['n_shown']} shown here; every comparison is in statistics.md)"
        parts.append(
            f"{up}/{down}: significantly better/worse than {esc(info['baseline'])} "
            f"({esc(info['tests_phrase'])}; two-sided; {esc(corr)} correction over {esc(family)}, "
            f"{alpha_sym} = {info['alpha']})."
        )
    elif any(k in info for k in ("test", "correction", "alpha")):
        test = TEST_NAMES.get(str(info.get("test")), info.get("test", "n/a"))
        text = (
            f"Test: {test}, correction: {info.get('correction', 'n/a')}, "
            f"alpha = {info.get('alpha', 'n/a')}; no significance markers."
        )
        parts.append(esc(text))
    parts.append("Best in bold, second underlined.")
    if info.get("seed_flag"):
        parts.append(
            esc(
                f"± SD over seeds; {SEED_MARK}: a seed SD at least half the CI half-width of one of this model's "
                "comparisons (training randomness is as large as the comparison's uncertainty; more seeds would "
                "narrow it)."
            )
        )
    if "n_users" in info:
        parts.append(
            f"n_users = {info['n_users']}." if fmt == "md" else rf"$n_{{\mathrm{{users}}}}$ = {info['n_users']}."
        )
    if info.get("fingerprint"):
        fp = str(info["fingerprint"])
        parts.append(
            f"Split fingerprint `{fp}`." if fmt == "md" else rf"Split fingerprint \texttt{{{latex_escape(fp[:12])}}}."
        )
    if info.get("code_versions"):
        parts.append(esc("Results mix code versions (--allow-mixed): " + "; ".join(info["code_versions"]) + "."))
    if info.get("note"):
        parts.append(esc(str(info["note"])))
    return " ".join(parts)
