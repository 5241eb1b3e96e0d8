"""The protocol-sensitivity report (:mod:`benchmark.runner.sensitivity`) as Markdown or JSON:
both leaderboards (:func:`benchmark.report.tables.leaderboard`, with the seed spread), then one
table of each model's value under A and B, its change and its rank under each, then Kendall's τ
between the two orders with its CI."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from benchmark.report.labels import format_percent, md_escape, metric_label

if TYPE_CHECKING:
    from benchmark.runner.sensitivity import SensitivityReport

__all__ = ["SENSITIVITY_FORMATS", "render_sensitivity"]

SENSITIVITY_FORMATS: tuple[str, ...] = ("md", "json")


def render_sensitivity(rep: SensitivityReport, fmt: str = "md", digits: int = 4) -> str:
    if fmt not in SENSITIVITY_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; allowed: {', '.join(SENSITIVITY_FORMATS)}")
    if fmt == "json":
        return json.dumps(rep.to_dict(), indent=2, default=float) + "\n"
    from benchmark.report.tables import leaderboard

    out = [f"# Protocol sensitivity: {md_escape(rep.labels[0])} vs {md_escape(rep.labels[1])}", ""]
    for i, side in enumerate("AB"):
        cap = {"title": f"{side}: {rep.labels[i]}", "n_users": rep.n_users[i], "fingerprint": rep.fingerprints[i][:12]}
        out += [
            leaderboard(rep.means[i], fmt="md", metrics=rep.metrics, caption=cap, spread=rep.spread[i], digits=digits),
            "",
        ]
    m = rep.metric
    out += [
        f"**Change on {metric_label(m)}** (B − A; rank 1 = best under each protocol)",
        "",
        "| Method | A | B | B − A | relative | rank A | rank B |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for model in rep.models:
        d, rel = rep.change(model, m)
        out.append(
            f"| {md_escape(model)} | {rep.means[0][model][m]:.{digits}f} | {rep.means[1][model][m]:.{digits}f} | "
            f"{d:+.{digits}f} | {format_percent(rel)} | {rep.ranks[0][model]:g} | {rep.ranks[1][model]:g} |"
        )
    t = rep.tau
    out += [
        "",
        f"Kendall's τ-b between the two orders on {metric_label(m)}: **{t['tau']:.3f}** "
        f"({100 * t['ci_level']:.0f}% CI [{t['ci_low']:.3f}, {t['ci_high']:.3f}], percentile bootstrap over users with "
        f"{t['n_resamples']} resamples, each side resampled; {t['n_models']} models; p = {t['p']:.3g}).",
    ]
    for label, models in rep.only.items():
        out.append(f"Only under {md_escape(label)} (not compared): {', '.join(map(md_escape, models))}.")
    return "\n".join(out) + "\n"
