"""``vlm4rec-bench claims``: the paper's published numbers beside ours, and a verdict per claim.

A claim says that one method beats others on a metric. For each pair we run the paired test
chosen for the experiment (default t-test) on per-user values, Holm-corrected over *all* pairs
of all claims, and report the mean difference with its 95% CI and the relative improvement
with its CI. Verdicts:

- ``supported``: every "better > other" difference is positive and significant after correction
  (and, when the paper states a size, our relative improvement CI is reported beside it);
- ``contradicted``: at least one pair is significant in the opposite direction;
- ``not supported``: neither (no significant difference for some pair);
- ``not testable``: a method of the claim has no row in these results (``paper_name`` in the
  config maps our models to the paper's labels) and the pairs that can be tested do not
  contradict it; those pairs are still shown. One significant contradiction is enough for
  ``contradicted`` even when other methods are missing.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from benchmark.io import read_json


def load_published(name_or_path: str | None = None) -> dict[str, Any]:
    """The shipped published numbers (default: the VLM4Rec paper) or a YAML file of the same shape."""
    if name_or_path and Path(name_or_path).exists():
        text = Path(name_or_path).read_text(encoding="utf-8")
    else:
        res = resources.files("benchmark") / "paper" / f"{name_or_path or 'vlm4rec_published'}.yaml"
        text = res.read_text(encoding="utf-8")
    return yaml.safe_load(text)


def claims_report(
    run_dir: str | Path,
    published: str | None = None,
    test: str | None = None,
    correction: str | None = None,
    alpha: float | None = None,
) -> tuple[str, dict[str, Any]]:
    """Markdown report and a JSON-able dict for one results directory."""
    from benchmark.runner.pipeline import load_units
    from benchmark.stats import aggregate_seeds, compare

    rdir = Path(run_dir)
    cfg = yaml.safe_load((rdir / "config.resolved.yaml").read_text(encoding="utf-8"))
    stats_cfg = cfg.get("statistics", {})
    test = test or stats_cfg.get("test", "t")
    correction = correction or stats_cfg.get("correction", "holm")
    alpha = alpha if alpha is not None else stats_cfg.get("alpha", 0.05)
    pub = load_published(published or cfg.get("published"))
    paper_to_ours = {m["paper_name"]: m["name"] for m in cfg["models"] if m.get("paper_name")}
    _, frames = load_units(rdir)
    per_model = {m: aggregate_seeds(fs)[0] for m, fs in frames.items()}
    fingerprint = read_json(rdir / "split.json")["fingerprint"]

    # --- side-by-side table
    rows = []
    for method, vals in pub["methods"].items():
        ours = paper_to_ours.get(method)
        for metric, pv in vals.items():
            ov = float(per_model[ours][metric].mean()) if ours in per_model and metric in per_model[ours] else None
            rows.append({"paper_method": method, "our_model": ours, "metric": metric, "published": pv, "ours": ov})

    # --- every pair of every claim, corrected together
    pairs: list[tuple[str, str, str, str]] = []  # (claim id, metric, better, other) in our names
    verdicts: list[dict[str, Any]] = []
    for claim in pub.get("claims", []):
        better = paper_to_ours.get(claim["better"])
        others = [paper_to_ours.get(o) for o in claim["than"]]
        missing = [claim["better"]] if better not in per_model else []
        missing += [o for o, ours in zip(claim["than"], others) if ours not in per_model]
        verdicts.append(
            {
                "id": claim["id"],
                "text": claim["text"],
                "metric": claim["metric"],
                "missing": missing,
                "published_relative_improvement": claim.get("published_relative_improvement"),
            }
        )
        for o in others:
            if better in per_model and o in per_model:
                pairs.append((claim["id"], claim["metric"], better, o))
    results: dict[tuple[str, str, str], dict[str, Any]] = {}
    if pairs:
        # one family: compare each (better, other) with `other` as the baseline, then re-correct jointly
        raw = []
        for cid, metric, better, other in pairs:
            r = compare(
                {better: per_model[better], other: per_model[other]},
                baseline=other,
                metrics=[metric],
                test=test,
                correction="none",
                alpha=alpha,
            )[0]
            raw.append(((cid, better, other), r))
        from benchmark.stats import adjust_pvalues

        adj = adjust_pvalues([r["p"] for _, r in raw], correction)
        for (key, r), pa in zip(raw, adj):
            r = dict(r, p_adjusted=float(pa), significant=bool(pa <= alpha))
            results[key] = r
    for v in verdicts:
        claim = next(c for c in pub["claims"] if c["id"] == v["id"])
        better = paper_to_ours.get(claim["better"])
        prs = [
            results[(v["id"], better, paper_to_ours.get(o))]
            for o in claim["than"]
            if (v["id"], better, paper_to_ours.get(o)) in results
        ]
        v["pairs"] = prs
        v["n_pairs_tested"] = len(prs)
        v["n_pairs_claimed"] = len(claim["than"])
        if any(p["significant"] and p["mean_diff"] < 0 for p in prs):
            v["verdict"] = "contradicted"
        elif v["missing"]:
            v["verdict"] = "not testable"
        elif all(p["significant"] and p["mean_diff"] > 0 for p in prs):
            v["verdict"] = "supported"
        else:
            v["verdict"] = "not supported"

    md = [
        f"# Claims check: {cfg.get('experiment')}",
        "",
        f"Results: `{rdir}` · split fingerprint `{fingerprint[:12]}` · test: {test}, correction: {correction} "
        f"over all {len(pairs)} claim comparisons, α = {alpha}",
        "",
        f"Published numbers: {pub.get('source', '').strip()}",
        "",
    ]
    for cav in pub.get("protocol_caveats", []):
        md.append(f"- Paper protocol: {cav}")
    md += [
        "",
        "## Published vs ours",
        "",
        "| paper method | our model | metric | published | ours |",
        "|---|---|---|---:|---:|",
    ]
    for r in rows:
        ours = "—" if r["ours"] is None else f"{r['ours']:.4f}"
        md.append(f"| {r['paper_method']} | {r['our_model'] or '—'} | {r['metric']} | {r['published']:.4f} | {ours} |")
    md += ["", "## Claims", ""]
    for v in verdicts:
        md.append(f"### {v['text']} — **{v['verdict']}**")
        if v["missing"]:
            md.append(
                f"Methods without a row in these results: {', '.join(v['missing'])}. "
                f"Tested {v['n_pairs_tested']} of {v['n_pairs_claimed']} comparisons."
            )
        for p in v.get("pairs", []):
            rel = p.get("rel_improvement")
            rel_s = (
                "n/a"
                if rel is None or rel != rel
                else (f"{100 * rel:+.1f}% [{100 * p['rel_ci_low']:+.1f}%, {100 * p['rel_ci_high']:+.1f}%]")
            )
            md.append(
                f"- {p['run']} vs {p['baseline']} ({p['metric']}): diff {p['mean_diff']:+.4f} "
                f"[{p['ci_low']:+.4f}, {p['ci_high']:+.4f}], relative {rel_s}, p_adj = {p['p_adjusted']:.3g}"
                f"{' (significant)' if p['significant'] else ''}"
            )
        if v.get("published_relative_improvement") is not None:
            md.append(f"- Published relative improvement: {100 * v['published_relative_improvement']:+.1f}%")
        md.append("")
    report = {
        "run_dir": str(rdir),
        "split_fingerprint": fingerprint,
        "test": test,
        "correction": correction,
        "alpha": alpha,
        "table": rows,
        "claims": verdicts,
    }
    return "\n".join(md) + "\n", report


def published_frame(published: str | None = None) -> pd.DataFrame:
    pub = load_published(published)
    return pd.DataFrame([{"method": m, **v} for m, v in pub["methods"].items()])
