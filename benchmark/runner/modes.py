"""Evaluation modes beyond the leaderboard's: evaluated per unit, written beside it, summarised.

A unit is always evaluated in ``full-catalogue`` (its ``test`` / ``valid`` means and
``units/KEY.parquet``, what the leaderboard and its statistics use). Every further mode of
``evaluation.modes`` adds, per unit, ``units/KEY.test.<mode>.parquet`` (per-user test metrics
of that mode) and ``record["modes"][mode]`` (means, users evaluated and skipped, how the
profile was built, the user sample and its spread); the summary stage writes ``modes.json`` and
``modes.md`` (each mode's means per model, seed-averaged, with the sampling spread).

``captioned-only`` (:mod:`benchmark.evaluation.captioned`): the model's profile is rebuilt from
train + valid with ``model.use_history(split, parts) -> bool`` (after the full-catalogue
evaluation, which uses the train profile); a model without it (or returning False: no profile
made from the history) keeps its own and the record says ``profile: "the model's own (no use_history)"``. Every user with a test row is scored; the
per-user file holds the recorded sample, ``sampling`` the spread over repeated samples.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from benchmark.evaluation.captioned import (
    EVALUATION_MODES,
    evaluate_captioned,
    part_users,
    sample_users,
    sampling_spread,
)
from benchmark.evaluation.metrics import METRIC_NAMES
from benchmark.features import ItemFeatures
from benchmark.io import atomic_open, write_json
from benchmark.runner.config import EvaluationConfig
from benchmark.split import Split

PAPER_PROFILE_PARTS = ("train", "valid")


@dataclass
class ModeResult:
    """One unit in one extra mode: the per-user table to write and the record entry."""

    per_user: pd.DataFrame
    record: dict[str, Any]


def extra_modes(ev: EvaluationConfig) -> list[str]:
    """The configured modes after the leaderboard's (``full-catalogue``)."""
    return [m for m in ev.modes if m != EVALUATION_MODES[0]]


def evaluate_modes(
    model: Any, split: Split, feats: Mapping[str, ItemFeatures], ev: EvaluationConfig
) -> dict[str, ModeResult]:
    """Evaluate ``model`` (fitted, already evaluated in ``full-catalogue``) in every extra mode."""
    out: dict[str, ModeResult] = {}
    for mode in extra_modes(ev):
        if mode == "captioned-only":
            out[mode] = captioned_only(model, split, feats, ev)
    return out


def captioned_only(model: Any, split: Split, feats: Mapping[str, ItemFeatures], ev: EvaluationConfig) -> ModeResult:
    """The paper's protocol for one unit (see module docstring)."""
    cs = ev.captioned
    if hasattr(model, "use_history") and model.use_history(split, PAPER_PROFILE_PARTS):
        profile = "+".join(PAPER_PROFILE_PARTS)
    else:  # e.g. BPR, popularity, learned user embeddings: nothing made from the history to rebuild
        profile = "the model's own (no use_history)"
    candidates = feats[cs.feature].mask.numpy() if cs.feature else None
    full = evaluate_captioned(
        model,
        split,
        "test",
        ks=tuple(ev.ks),
        metrics=tuple(m for m in ev.metrics if m in METRIC_NAMES),  # accuracy only in the extra modes
        candidates=candidates,
        batch_size=ev.batch_size,
        device=ev.device,
    )
    population = part_users(split, "test")
    chosen = sample_users(population, cs.user_fraction, cs.sample_seed)
    sampled = full.per_user[full.per_user["user_id"].isin(chosen)].reset_index(drop=True)
    cols = [c for c in sampled.columns if c != "user_id"]
    record = {
        "test": {c: float(sampled[c].mean()) if len(sampled) else float("nan") for c in cols},
        "n_users": int(len(sampled)),
        "n_sampled": int(len(chosen)),
        "n_users_all": int(full.n_users),
        "skipped_all": full.info["skipped"],
        "candidates": full.info["candidates"],
        "profile": profile,
        "sampling": sampling_spread(full.per_user, population, cs.user_fraction, cs.sample_seed, cs.sample_repeats),
    }
    return ModeResult(sampled, record)


# ---------------------------------------------------------------------------------- summary
def modes_summary(results: Any, models: list[str], metric_cols: list[str]) -> dict[str, Any]:
    """``modes.json`` content: per extra mode, per model, the seed-averaged means and n users,
    and the sampling spread (seed-averaged over the model's units)."""
    out: dict[str, Any] = {}
    for mode in extra_modes(results.config.evaluation):
        rows: dict[str, Any] = {}
        for m in models:
            units = [u for u in results.units[m] if mode in u.modes]
            if not units:
                continue
            per_user = results.per_user(m, mode=mode)
            recs = [u.record["modes"][mode] for u in units]
            rows[m] = {
                "means": {c: float(per_user[c].mean()) if len(per_user) else None for c in metric_cols},
                "n_users": int(len(per_user)),
                "profile": recs[0]["profile"],
                "candidates": recs[0]["candidates"],
                "skipped_all": recs[0]["skipped_all"],
                "sampling": _average_sampling([r["sampling"] for r in recs], metric_cols),
            }
        out[mode] = {"settings": _settings(results.config.evaluation, mode), "models": rows}
    return out


def _settings(ev: EvaluationConfig, mode: str) -> dict[str, Any]:
    if mode == "captioned-only":
        cs = ev.captioned
        return {
            "feature": cs.feature,
            "user_fraction": cs.user_fraction,
            "sample_seed": cs.sample_seed,
            "sample_repeats": cs.sample_repeats,
        }
    return {}


def _average_sampling(spreads: list[dict[str, Any]], metric_cols: list[str]) -> dict[str, Any]:
    """The per-metric sampling spread averaged over a model's seeds (one seed: as recorded)."""
    keys = ("all_users", "recorded_sample", "mean", "sd", "p2.5", "p97.5", "min", "max")
    out = {k: spreads[0][k] for k in ("user_fraction", "sample_seed", "population", "sample_size", "repeats")}
    out["metrics"] = {}
    for c in metric_cols:
        vals = [s["metrics"].get(c, {}) for s in spreads]
        out["metrics"][c] = {
            k: float(np.mean([v[k] for v in vals])) if all(v.get(k) is not None for v in vals) else None for k in keys
        }
    return out


def write_modes(results: Any, models: list[str], metric_cols: list[str]) -> dict[str, Any] | None:
    """Write ``modes.json`` and ``modes.md`` when the run has extra modes."""
    summary = modes_summary(results, models, metric_cols)
    if not summary:
        return None
    write_json(results.run_dir / "modes.json", summary)
    with atomic_open(results.run_dir / "modes.md", "w", encoding="utf-8") as fh:
        fh.write(modes_markdown(summary, metric_cols))
    return summary


def modes_markdown(summary: dict[str, Any], metric_cols: list[str]) -> str:
    """One table per extra mode: means per model, users, and the spread of a sample's mean."""
    md: list[str] = []
    for mode, body in summary.items():
        st = body["settings"]
        md += [f"## Evaluation mode `{mode}`", ""]
        if mode == "captioned-only":
            md += [
                "The VLM4Rec paper's protocol (`scripts/evaluate_all_final.py`): each model ranks only the items it "
                "has a representation for"
                + (f" ∩ the items of `{st['feature']}`" if st["feature"] else "")
                + "; relevant = the user's test items among them; profile from train + valid; seen items not "
                f"removed; users without such items skipped; {100 * st['user_fraction']:g}% of the test users "
                f"(seed {st['sample_seed']}). `spread` = the middle 95% of the mean over {st['sample_repeats']} "
                "other samples of that size.",
                "",
            ]
        head = "| model | users | profile | " + " | ".join(f"{c} | {c} spread" for c in metric_cols) + " |"
        md += [head, "|---|---:|---|" + "---:|---:|" * len(metric_cols)]
        for m, r in body["models"].items():
            cells = []
            for c in metric_cols:
                v = r["means"].get(c)
                sp = r["sampling"]["metrics"].get(c, {})
                cells.append("—" if v is None else f"{v:.4f}")
                lo, hi = sp.get("p2.5"), sp.get("p97.5")
                cells.append("—" if lo is None or hi is None else f"[{lo:.4f}, {hi:.4f}]")
            md.append(f"| {m} | {r['n_users']} | {r['profile']} | " + " | ".join(cells) + " |")
        md.append("")
    return "\n".join(md)
