"""``vlm4rec-bench claims``: the paper's published numbers beside ours, and two verdicts per claim.

Each claim gets a **direction** verdict (supported / contradicted / not significant / not
testable) from the test's own statistic, and a **size** verdict (the published relative
improvement inside or outside our CI of it); the rules are in :mod:`benchmark.runner.verdicts`.
The comparisons form one family (by default the claims' distinct comparisons; ``family="run"``
reuses the run's own), corrected together; the report states the family, its size and the
test in words (what its randomness covers: users and training seeds, or the trained models held
fixed). Several results directories (e.g. the same experiment under two evaluation protocols)
are shown side by side, each judged on its own.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from benchmark.runner.results import RunResults


def load_published(name_or_path: str | None = None) -> dict[str, Any]:
    """The shipped published numbers (default: the VLM4Rec paper) or a YAML file of the same shape."""
    if name_or_path and Path(name_or_path).exists():
        text = Path(name_or_path).read_text(encoding="utf-8")
    else:
        res = resources.files("benchmark") / "paper" / f"{name_or_path or 'vlm4rec_published'}.yaml"
        text = res.read_text(encoding="utf-8")
    return yaml.safe_load(text)


def claims_report(
    run_dir: str | Path | RunResults | list[str | Path | RunResults],
    published: str | None = None,
    test: str | None = None,
    correction: str | None = None,
    alpha: float | None = None,
    family: str = "claims",
) -> tuple[str, dict[str, Any]]:
    """Markdown report and a JSON-able dict for one results directory or several side by side.

    ``test``/``correction``/``alpha`` default to each run's statistics settings (with
    ``family="run"`` they must not be given: the run's family is the run's settings);
    ``published`` to the first run's ``published`` (the VLM4Rec paper's numbers by default).
    The dict's top-level ``table``/``claims`` are the first run's (``verdict`` is the direction
    verdict, its earlier name); ``runs`` holds every run's.
    """
    from benchmark.runner.verdicts import judge_claims, with_overrides

    if family == "run" and any(x is not None for x in (test, correction, alpha)):
        raise ValueError("family 'run' uses the run's own test, correction and alpha; drop --test/--correction/--alpha")
    items = run_dir if isinstance(run_dir, list) else [run_dir]
    runs = [r if isinstance(r, RunResults) else RunResults.load(r) for r in items]
    pub = load_published(published or runs[0].config.published)
    labels = run_labels(runs)
    per_run = []
    for label, results in zip(labels, runs):
        stats = with_overrides(results.config.statistics, test=test, correction=correction, alpha=alpha)
        verdicts, record = judge_claims(results, pub, stats, family)
        per_run.append(
            {
                "label": label,
                "run_dir": str(results.run_dir),
                "split_fingerprint": results.fingerprint,
                "test": stats.test,
                "correction": stats.correction,
                "alpha": stats.alpha,
                "family": record,
                "table": side_by_side(pub, results.paper_names(), results.averaged()),
                "claims": verdicts,
            }
        )
    first = per_run[0]
    report = {k: first[k] for k in ("run_dir", "split_fingerprint", "test", "correction", "alpha", "table", "claims")}
    report["family"] = first["family"]
    report["runs"] = per_run
    return render_markdown(runs[0], pub, per_run), report


def run_labels(runs: list[RunResults]) -> list[str]:
    """A short name per run: the experiment, with the run directory's name when two share it."""
    names = [r.config.experiment for r in runs]
    return [f"{n} ({r.run_dir.name})" if names.count(n) > 1 else n for n, r in zip(names, runs)]


def side_by_side(
    pub: dict[str, Any], paper_to_ours: dict[str, str], per_model: dict[str, pd.DataFrame]
) -> list[dict[str, Any]]:
    """One row per (published method, metric): the paper's value beside our mean (or ``None``)."""
    rows = []
    for method, vals in pub["methods"].items():
        ours = paper_to_ours.get(method)
        for metric, pv in vals.items():
            ov = float(per_model[ours][metric].mean()) if ours in per_model and metric in per_model[ours] else None
            rows.append({"paper_method": method, "our_model": ours, "metric": metric, "published": pv, "ours": ov})
    return rows


VERDICT_RULES = (
    "Direction: *supported* = every pair significantly better after correction; *contradicted* = some pair "
    "significantly worse; *not testable* = a method has no results here (or its pair is outside the family); "
    "*not significant* = otherwise. The direction is the test's own (the sign of R⁺ − R⁻ for Wilcoxon, the "
    "bootstrap CI for the bootstrap, the mean difference otherwise). Size: the published relative improvement "
    "(stated in the claim, else computed from the published numbers of both methods) *inside* or *outside* our "
    "CI of the relative improvement; *n/a* without a published size."
)


def render_markdown(results: RunResults, pub: dict[str, Any], per_run: list[dict[str, Any]]) -> str:
    """The claims report as Markdown: runs and families, published-vs-ours, one section per claim."""
    md = [f"# Claims check: {results.config.experiment}", "", f"Published numbers: {pub.get('source', '').strip()}"]
    md += [f"- Paper protocol: {cav}" for cav in pub.get("protocol_caveats", [])]
    md += ["", "## Runs and statistics", ""]
    for run in per_run:
        md += run_header(run)
    md += ["", VERDICT_RULES, "", "## Published vs ours", ""]
    md += published_table(per_run)
    md += ["", "## Claims", ""]
    for i in range(len(per_run[0]["claims"])):
        md += claim_markdown([(run["label"], run["claims"][i]) for run in per_run])
    return "\n".join(md) + "\n"


def run_header(run: dict[str, Any]) -> list[str]:
    from benchmark.report.labels import CORRECTION_NAMES

    fam = run["family"]
    tests = sorted({p["test_label"] for c in run["claims"] for p in c["pairs"]})
    corr = CORRECTION_NAMES.get(run["correction"], run["correction"])
    what = (
        f"the claims' {fam.get('n_distinct', 0)} distinct comparisons ({fam.get('n_claim_comparisons', 0)} in the "
        "claims; a pair shared by claims is tested once)"
        if fam.get("id") == "claims"
        else f'the run\'s own family "{fam.get("id", "")}": {fam.get("description", "")}'
    )
    lines = [
        f"- **{run['label']}**: `{run['run_dir']}`, split `{run['split_fingerprint'][:12]}`. Family: {what}; "
        f"{fam.get('size', 0)} tests, {corr} correction, α = {run['alpha']}."
    ]
    lines += [f"  - Test: {t}." for t in tests]
    return lines


def published_table(per_run: list[dict[str, Any]]) -> list[str]:
    labels = [run["label"] for run in per_run]
    head = "| paper method | our model | metric | published | " + " | ".join(f"ours: {lab}" for lab in labels) + " |"
    lines = [head, "|---|---|---|---:|" + "---:|" * len(labels)]
    for i, r in enumerate(per_run[0]["table"]):
        ours = [run["table"][i]["ours"] for run in per_run]
        cells = " | ".join("—" if v is None else f"{v:.4f}" for v in ours)
        lines.append(
            f"| {r['paper_method']} | {r['our_model'] or '—'} | {r['metric']} | {r['published']:.4f} | {cells} |"
        )
    return lines


def claim_markdown(by_run: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One claim: its verdicts per run, then every pair's numbers and notes."""
    from benchmark.report.labels import format_percent

    v = by_run[0][1]
    md = [f"### {v['text']}", ""]
    md += [
        f"- **{label}**: direction **{c['direction_verdict']}**, size **{c['size_verdict']}**" for label, c in by_run
    ]
    md += [
        "",
        "| run | pair | Δ mean [CI] | estimate | relative [CI] | published relative | size | p (adj.) | direction |",
        "|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    notes: list[str] = []
    for label, c in by_run:
        for p in c["pairs"]:
            rel = f"{format_percent(p['rel_improvement'])} [{format_percent(p['rel_ci_low'])}, {format_percent(p['rel_ci_high'])}]"
            md.append(
                f"| {label} | {p['run']} vs {p['baseline']} ({p['metric']}) | {p['mean_diff']:+.4f} "
                f"[{p['ci_low']:+.4f}, {p['ci_high']:+.4f}] | {p['estimate']:+.4f} | {rel} | "
                f"{format_percent(p['published_rel'])} | {p['size_verdict']} | {p['p_adjusted']:.3g} | "
                f"{p['direction_verdict']} |"
            )
            if p["mean_disagrees"]:
                notes.append(
                    f"{label}, {p['run']} vs {p['baseline']}: the mean difference ({p['mean_diff']:+.4f}) points the "
                    f"other way from the {p['test']} test's own statistic, which decides the direction."
                )
        if c["missing"] or c["outside_family"]:
            absent = ", ".join(c["missing"] + c["outside_family"])
            notes.append(f"{label}: not tested here: {absent} ({c['n_pairs_tested']} of {c['n_pairs_claimed']} pairs).")
    notes += [f"Caveat: {cav}" for cav in v.get("caveats", [])]
    if v.get("published_relative_improvement") is not None:
        notes.append(f"Published relative improvement (stated): {format_percent(v['published_relative_improvement'])}.")
    md += [""] + [f"- {n}" for n in notes] + [""]
    return md


def published_frame(published: str | None = None) -> pd.DataFrame:
    pub = load_published(published)
    return pd.DataFrame([{"method": m, **v} for m, v in pub["methods"].items()])
