"""The paper-specific parts of the claims report: every claim in every evaluation mode of the
run, and the differences from the paper that remain next to each claim.

:mod:`benchmark.runner.claims` owns the verdict rules; this module gives it

- :func:`mode_frames` — the per-user frames of one evaluation mode (``full-catalogue``: the
  leaderboard's; ``captioned-only``: the paper's protocol, :mod:`benchmark.evaluation.captioned`);
- :func:`paired` — two models' frames on the users both evaluated: in ``captioned-only`` each
  model skips the users without its own items, as the paper's script does, so a paired test
  runs on the users both keep (the means in the published-vs-ours table stay each model's own,
  over its own users, as the paper computed them);
- :func:`published_vs_modes` — the published value beside ours in each mode (and the middle 95%
  of a 1%-sample's mean);
- :func:`differences` — per claim, what still differs from the paper: the data (dataset source /
  recipe), each method's representation, training loss and profile aggregation against the
  published data's ``method_provenance`` expectations, and the published data's
  ``provenance_caveats``.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from benchmark.registry import MODELS
from benchmark.runner.results import RunResults

FULL = "full-catalogue"
#: registered models that score by a mean profile of item vectors (``normalize_items`` applies)
PROFILE_MODELS = ("vlm4rec", "text-only", "vision-only", "naive-fusion", "concat-fusion")
#: roles a feature can have, and the params that name it (a one-feature model's ``feature`` has
#: whichever role the paper's method expects: text for text-only, image for vision-only)
ROLES = {"text": ("text_feature", "feature"), "image": ("image_feature", "feature")}


def modes_of(results: RunResults) -> list[str]:
    """The evaluation modes the run has results in: the leaderboard's first."""
    return [FULL, *results.modes()]


def mode_frames(results: RunResults, mode: str) -> dict[str, pd.DataFrame]:
    """Seed-averaged per-user frames of every model in ``mode``."""
    return results.averaged() if mode == FULL else results.averaged(mode=mode)


def paired(a: pd.DataFrame, b: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``a`` and ``b`` restricted to the users both have (unchanged when they already agree)."""
    if len(a) == len(b) and a["user_id"].equals(b["user_id"]):
        return a, b
    common = set(a["user_id"]) & set(b["user_id"])
    keep = lambda df: df[df["user_id"].isin(common)].reset_index(drop=True)  # noqa: E731
    return keep(a), keep(b)


def published_vs_modes(results: RunResults, pub: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per (published method, metric): the published value, ours in each mode (the
    model's own mean and users), and for ``captioned-only`` the 95% range of a sample's mean."""
    names = results.paper_names()
    frames = {mode: mode_frames(results, mode) for mode in modes_of(results)}
    rows = []
    for method, vals in pub["methods"].items():
        ours = names.get(method)
        for metric, published in vals.items():
            row: dict[str, Any] = {"paper_method": method, "our_model": ours, "metric": metric, "published": published}
            for mode, per_model in frames.items():
                f = per_model.get(ours) if ours else None
                if f is None or metric not in f.columns or ours is None:
                    row[mode] = {"mean": None, "n_users": None}
                    continue
                row[mode] = {"mean": float(f[metric].mean()), "n_users": int(len(f))}
                if mode != FULL:
                    row[mode]["sample_range"] = _sample_range(results, ours, mode, metric)
            rows.append(row)
    return rows


def _sample_range(results: RunResults, model: str, mode: str, metric: str) -> list[float] | None:
    """The middle 95% of the mean over repeated user samples (first seed's record)."""
    units = [u for u in results.units.get(model, []) if mode in u.modes]
    if not units:
        return None
    m = units[0].record["modes"][mode].get("sampling", {}).get("metrics", {}).get(metric, {})
    return [m["p2.5"], m["p97.5"]] if "p2.5" in m else None


# ------------------------------------------------------------------------------- differences
def differences(results: RunResults, pub: dict[str, Any], claim: dict[str, Any]) -> list[str]:
    """What still differs from the paper for ``claim`` (see module docstring), in plain words."""
    out = [data_difference(results, pub)]
    names = results.paper_names()
    expected = pub.get("method_provenance", {})
    for method in [claim["better"], *claim["than"]]:
        ours = names.get(method)
        if ours is None:
            out.append(f"{method}: no row in these results")
            continue
        out += [f"{method} ({ours}): {d}" for d in method_differences(results, ours, expected.get(method, {}))]
    return [d for d in out if d]


def data_difference(results: RunResults, pub: dict[str, Any]) -> str:
    """The dataset against the paper's (Align-MacridVAE Clothing; ``recipe: align-macridvae``)."""
    ds = results.config.dataset
    if ds.source == "align-macridvae":
        return ""  # the paper's own split files
    if ds.recipe == "align-macridvae":
        return ""  # rebuilt from the raw files exactly (benchmark.prepare.recipes)
    what = f"source {ds.source}" + (f", protocol {ds.protocol}" if ds.source in ("files", "demo") else "")
    return f"data: {what}, not the paper's ({pub.get('dataset', 'see the published data').strip()})"


def method_differences(results: RunResults, model_name: str, expected: dict[str, Any]) -> list[str]:
    """Our model entry against the paper method's ``expects`` (producers of its features, loss,
    aggregation); plus the entry's own ``note``."""
    mc = next((m for m in results.config.models if m.name == model_name), None)
    if mc is None:
        return []
    want = expected.get("expects", {})
    producers = {f.name: f.producer for f in results.config.features}
    defaults = {k: p.default for k, p in MODELS.parameters(mc.model).items()} if mc.model in MODELS else {}
    params = {**defaults, **mc.params}
    out: list[str] = []
    if "model" in want and mc.model != want["model"]:
        out.append(f"model: ours {mc.model}, the paper's {want['model']}")
    for role, keys in ROLES.items():
        if role not in want:
            continue
        name = next((params[k] for k in keys if isinstance(params.get(k), str)), None)
        got = producers.get(str(name), "imported") if name else None
        if got != want[role]:
            out.append(f"{role}: ours `{name}` from {got or 'no feature'}, the paper's from {want[role]}")
    if "loss" in want and params.get("loss", want["loss"]) != want["loss"]:
        out.append(f"loss: ours {params.get('loss')}, the paper's {want['loss']} (its self-contrastive loss)")
    if mc.model in PROFILE_MODELS and params.get("normalize_items", True) and want.get("raw_mean", False):
        out.append(
            "aggregation: ours averages L2-normalised item vectors, the paper averages the raw vectors "
            "(normalize_items: false matches it)"
        )
    if expected.get("ours_note"):
        out.append(str(expected["ours_note"]))
    if mc.note:
        out.append(f"note: {mc.note}")
    return out


def differences_markdown(items: list[str]) -> list[str]:
    """The "remaining differences" lines under a claim."""
    if not items:
        return ["- Remaining differences from the paper: none recorded."]
    return ["- Remaining differences from the paper:", *[f"  - {d}" for d in items]]


def modes_table_markdown(rows: list[dict[str, Any]], modes: list[str]) -> list[str]:
    """The published-vs-ours table with one column per evaluation mode."""
    head = "| paper method | our model | metric | published | " + " | ".join(f"ours ({m})" for m in modes) + " |"
    md = [head, "|---|---|---|---:|" + "---:|" * len(modes)]
    for r in rows:
        cells = []
        for m in modes:
            v = r.get(m, {})
            if v.get("mean") is None:
                cells.append("—")
                continue
            rng = v.get("sample_range")
            extra = f" [{rng[0]:.4f}, {rng[1]:.4f}]" if rng else ""
            cells.append(f"{v['mean']:.4f}{extra} (n={v['n_users']})")
        md.append(
            f"| {r['paper_method']} | {r['our_model'] or '—'} | {r['metric']} | {r['published']:.4f} | "
            + " | ".join(cells)
            + " |"
        )
    return md
