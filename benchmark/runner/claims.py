"""``vlm4rec-bench claims``: the paper's published numbers beside ours, and two verdicts per claim.

Each claim gets a **direction** verdict (supported / contradicted / not significant / not
testable) from the test's own statistic, and a **size** verdict (the published relative
improvement inside or outside our CI of it); the rules are in :mod:`benchmark.runner.verdicts`.
The comparisons form one family (by default the claims' distinct comparisons; ``family="run"``
reuses the run's own), corrected together; the report states the family, its size and the
test in words (what its randomness covers: users and training seeds, or the trained models held
fixed). Every claim is judged in each evaluation mode of the run (the leaderboard's
``full-catalogue`` and, when configured, the paper's ``captioned-only``), next to the
differences from the paper that remain (:mod:`benchmark.runner.claims_paper`). Several results
directories are shown side by side, each judged on its own.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from benchmark.errors import ConfigError
from benchmark.runner import claims_paper
from benchmark.runner.results import RunResults


def load_published(name_or_path: str | None = None) -> dict[str, Any]:
    """The shipped published numbers (default: the VLM4Rec paper) or a YAML file of the same shape.

    A file covering several datasets (``datasets: {baby: {dataset, methods, claims}, …}``, as
    MMRec's table) is named with the dataset after a colon, ``mmrec_published:baby``: that
    section's keys over the file's shared ones (``source``, ``protocol_caveats``, ``metrics``).
    """
    name = name_or_path or "vlm4rec_published"
    section = ""
    if not Path(name).exists() and ":" in name:
        name, section = name.rsplit(":", 1)
    if Path(name).exists():
        text = Path(name).read_text(encoding="utf-8")
    else:
        res = resources.files("benchmark") / "paper" / f"{name}.yaml"
        if not res.is_file():
            tables = (resources.files("benchmark") / "paper").iterdir()
            shipped = sorted(p.name.removesuffix(".yaml") for p in tables if p.name.endswith(".yaml"))
            raise ConfigError(f"published {name!r}: no such file or shipped table; shipped: {', '.join(shipped)}")
        text = res.read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    datasets = data.pop("datasets", None)
    if datasets is None:
        if section:
            raise ConfigError(f"published {name!r} covers one dataset; drop ':{section}'")
        return data
    if section not in datasets:
        raise ConfigError(f"published {name!r} covers several datasets: name one, {name}:<{'|'.join(datasets)}>")
    return {**data, **datasets[section]}


def claims_report(
    run_dir: str | Path | RunResults | list[str | Path | RunResults],
    published: str | None = None,
    test: str | None = None,
    correction: str | None = None,
    alpha: float | None = None,
    family: str = "claims",
) -> tuple[str, dict[str, Any]]:
    """Markdown report and a JSON-able dict for one results directory or several side by side.

    Every claim is judged in every evaluation mode of each run (the leaderboard's
    ``full-catalogue`` first; ``claims[i]["modes"][mode]`` for the others, see
    :mod:`benchmark.runner.claims_paper`), with the differences from the paper that remain.
    ``test``/``correction``/``alpha`` default to each run's statistics settings (with
    ``family="run"`` they must not be given: the run's family is the run's settings);
    ``published`` to the first run's ``published`` (the VLM4Rec paper's numbers by default).
    The dict's top-level ``table``/``table_by_mode``/``claims``/``family`` are the first run's
    (``verdict`` is the direction verdict, its earlier name); ``runs`` holds every run's.
    """
    if family == "run" and any(x is not None for x in (test, correction, alpha)):
        raise ValueError("family 'run' uses the run's own test, correction and alpha; drop --test/--correction/--alpha")
    items = run_dir if isinstance(run_dir, list) else [run_dir]
    runs = [r if isinstance(r, RunResults) else RunResults.load(r) for r in items]
    pub = load_published(published or runs[0].config.published)
    settings = {"test": test, "correction": correction, "alpha": alpha}
    per_run = [judge_run(label, results, pub, settings, family) for label, results in zip(run_labels(runs), runs)]
    first = per_run[0]
    keys = ("run_dir", "split_fingerprint", "test", "correction", "alpha", "family", "table", "table_by_mode", "claims")
    report = {k: first[k] for k in keys}
    report["provenance_caveats"] = pub.get("provenance_caveats", [])
    report["runs"] = per_run
    return render_markdown(runs[0], pub, per_run), report


def judge_run(
    label: str, results: RunResults, pub: dict[str, Any], settings: dict[str, Any], family: str
) -> dict[str, Any]:
    """One run's part of the report: its claims judged in each of its evaluation modes."""
    from benchmark.runner.verdicts import judge_claims, with_overrides

    stats = with_overrides(results.config.statistics, **settings)
    modes = claims_paper.modes_of(results)
    judged = {
        mode: judge_claims(results, pub, stats, family, None if mode == claims_paper.FULL else mode) for mode in modes
    }
    verdicts, record = judged[claims_paper.FULL]
    for i, claim in enumerate(pub.get("claims", [])):
        verdicts[i]["differences"] = claims_paper.differences(results, pub, claim)
        verdicts[i]["modes"] = {mode: judged[mode][0][i] for mode in modes[1:]}
    return {
        "label": label,
        "run_dir": str(results.run_dir),
        "split_fingerprint": results.fingerprint,
        "test": stats.test,
        "correction": stats.correction,
        "alpha": stats.alpha,
        "modes": modes,
        "family": record,
        "families_by_mode": {mode: judged[mode][1] for mode in modes},
        "table": side_by_side(pub, results.paper_names(), results.averaged()),
        "table_by_mode": claims_paper.published_vs_modes(results, pub),
        "claims": verdicts,
    }


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
MODES_NOTE = (
    "`full-catalogue`: every item ranked, seen items masked, every test item relevant (the leaderboard's). "
    "`captioned-only`: the paper's protocol (each model's own items, profile from train + valid, no masking, users "
    "without such items skipped, the configured share of test users); in brackets the middle 95% of the mean over "
    "repeated user samples; each model's mean over its own users, as the paper computed them. Claims in "
    "`captioned-only` are tested on the users both methods kept."
)


def render_markdown(results: RunResults, pub: dict[str, Any], per_run: list[dict[str, Any]]) -> str:
    """The claims report as Markdown: runs and families, published-vs-ours, one section per claim."""
    md = [f"# Claims check: {results.config.experiment}", "", f"Published numbers: {pub.get('source', '').strip()}"]
    md += [f"- Paper protocol: {cav}" for cav in pub.get("protocol_caveats", [])]
    md += [f"- Provenance of the published numbers: {cav}" for cav in pub.get("provenance_caveats", [])]
    md += ["", "## Runs and statistics", ""]
    for run in per_run:
        md += run_header(run)
    md += ["", VERDICT_RULES, "", "## Published vs ours", ""]
    md += published_table(per_run)
    if any(len(run["modes"]) > 1 for run in per_run):
        md += ["", MODES_NOTE]
    md += ["", "## Claims", ""]
    for i in range(len(per_run[0]["claims"])):
        md += claim_markdown([(where, c) for run in per_run for where, c in _claim_by_mode(run, i, len(per_run))])
        md += _differences(per_run, i)
    return "\n".join(md) + "\n"


def _where(run: dict[str, Any], mode: str, n_runs: int) -> str:
    return mode if n_runs == 1 else f"{run['label']}, {mode}"


def _claim_by_mode(run: dict[str, Any], i: int, n_runs: int) -> list[tuple[str, dict[str, Any]]]:
    claim = run["claims"][i]
    out = [(_where(run, claims_paper.FULL, n_runs), claim)]
    return out + [(_where(run, mode, n_runs), mc) for mode, mc in claim.get("modes", {}).items()]


def _differences(per_run: list[dict[str, Any]], i: int) -> list[str]:
    if len(per_run) == 1:
        return claims_paper.differences_markdown(per_run[0]["claims"][i].get("differences", [])) + [""]
    out: list[str] = []
    for run in per_run:
        lines = claims_paper.differences_markdown(run["claims"][i].get("differences", []))
        out += [lines[0].replace("from the paper", f"from the paper ({run['label']})", 1), *lines[1:]]
    return out + [""]


def run_header(run: dict[str, Any]) -> list[str]:
    from benchmark.report.labels import CORRECTION_NAMES

    corr = CORRECTION_NAMES.get(run["correction"], run["correction"])
    lines = [f"- **{run['label']}**: `{run['run_dir']}`, split `{run['split_fingerprint'][:12]}`, α = {run['alpha']}."]
    for mode, fam in run["families_by_mode"].items():
        what = (
            f"the claims' {fam.get('n_distinct', 0)} distinct comparisons ({fam.get('n_claim_comparisons', 0)} in "
            "the claims; a pair shared by claims is tested once)"
            if fam.get("id", "claims") == "claims"
            else f'the run\'s own family "{fam.get("id", "")}": {fam.get("description", "")}'
        )
        lines.append(f"  - `{mode}` — family: {what}; {fam.get('size', 0)} tests, {corr} correction.")
    claims = run["claims"] + [mc for c in run["claims"] for mc in c.get("modes", {}).values()]
    lines += [f"  - Test: {t}." for t in sorted({p["test_label"] for c in claims for p in c["pairs"]})]
    return lines


def published_table(per_run: list[dict[str, Any]]) -> list[str]:
    """The published value beside ours in every (run, mode): mean [sample range] (n users)."""
    cols = [(run, mode) for run in per_run for mode in run["modes"]]
    name = (
        (lambda run, mode: f"ours ({mode})")
        if len(per_run) == 1
        else (lambda run, mode: f"ours: {run['label']} ({mode})")
    )
    lines = [
        "| paper method | our model | metric | published | " + " | ".join(name(r, m) for r, m in cols) + " |",
        "|---|---|---|---:|" + "---:|" * len(cols),
    ]
    for i, r in enumerate(per_run[0]["table_by_mode"]):
        cells = []
        for run, mode in cols:
            v = run["table_by_mode"][i].get(mode, {})
            rng = v.get("sample_range")
            extra = f" [{rng[0]:.4f}, {rng[1]:.4f}]" if rng else ""
            cells.append("—" if v.get("mean") is None else f"{v['mean']:.4f}{extra} (n={v['n_users']})")
        lines.append(
            f"| {r['paper_method']} | {r['our_model'] or '—'} | {r['metric']} | {r['published']:.4f} | "
            + " | ".join(cells)
            + " |"
        )
    return lines


def claim_markdown(by_where: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """One claim: its two verdicts wherever it was judged, then every pair's numbers and notes."""
    from benchmark.report.labels import format_percent

    v = by_where[0][1]
    md = [f"### {v['text']}", ""]
    md += [
        f"- `{where}`: direction **{c['direction_verdict']}**, size **{c['size_verdict']}**" for where, c in by_where
    ]
    md += [
        "",
        "| where | pair | Δ mean [CI] | estimate | relative [CI] | published relative | size | p (adj.) | direction |",
        "|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    notes: list[str] = []
    for where, c in by_where:
        for p in c["pairs"]:
            rel = (
                f"{format_percent(p['rel_improvement'])} "
                f"[{format_percent(p['rel_ci_low'])}, {format_percent(p['rel_ci_high'])}]"
            )
            md.append(
                f"| {where} | {p['run']} vs {p['baseline']} ({p['metric']}, n={p['n_users']}) | {p['mean_diff']:+.4f} "
                f"[{p['ci_low']:+.4f}, {p['ci_high']:+.4f}] | {p['estimate']:+.4f} | {rel} | "
                f"{format_percent(p['published_rel'])} | {p['size_verdict']} | {p['p_adjusted']:.3g} | "
                f"{p['direction_verdict']} |"
            )
            if p["mean_disagrees"]:
                notes.append(
                    f"{where}, {p['run']} vs {p['baseline']}: the mean difference ({p['mean_diff']:+.4f}) points the "
                    f"other way from the {p['test']} test's own statistic, which decides the direction."
                )
        if c["missing"] or c["outside_family"]:
            absent = ", ".join(c["missing"] + c["outside_family"])
            notes.append(f"{where}: not tested: {absent} ({c['n_pairs_tested']} of {c['n_pairs_claimed']} pairs).")
    notes += [f"Caveat: {cav}" for cav in v.get("caveats", [])]
    if v.get("published_relative_improvement") is not None:
        notes.append(f"Published relative improvement (stated): {format_percent(v['published_relative_improvement'])}.")
    md += [""] + [f"- {n}" for n in notes]
    return md


def published_frame(published: str | None = None) -> pd.DataFrame:
    pub = load_published(published)
    return pd.DataFrame([{"method": m, **v} for m, v in pub["methods"].items()])
