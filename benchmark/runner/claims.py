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
    run_dir: str | Path | RunResults,
    published: str | None = None,
    test: str | None = None,
    correction: str | None = None,
    alpha: float | None = None,
) -> tuple[str, dict[str, Any]]:
    """Markdown report and a JSON-able dict for one results directory.

    ``test``/``correction``/``alpha`` default to the run's statistics settings; ``published``
    to the run's ``published`` (the VLM4Rec paper's numbers by default).
    """
    results = run_dir if isinstance(run_dir, RunResults) else RunResults.load(run_dir)
    st = results.config.statistics
    settings: dict[str, Any] = {
        "test": test or st.test,
        "correction": correction or st.correction,
        "alpha": alpha if alpha is not None else st.alpha,
    }
    pub = load_published(published or results.config.published)
    per_model = results.averaged()
    names = results.paper_names()
    rows = side_by_side(pub, names, per_model)
    verdicts, n_pairs = claim_verdicts(pub, names, per_model, **settings)
    # every claim in every evaluation mode of the run, and what still differs from the paper
    by_mode = {
        mode: claim_verdicts(pub, names, claims_paper.mode_frames(results, mode), **settings)
        for mode in claims_paper.modes_of(results)[1:]
    }
    for i, (v, claim) in enumerate(zip(verdicts, pub.get("claims", []))):
        v["differences"] = claims_paper.differences(results, pub, claim)
        v["modes"] = {mode: mode_verdicts[i] for mode, (mode_verdicts, _) in by_mode.items()}
    report = {
        "run_dir": str(results.run_dir),
        "split_fingerprint": results.fingerprint,
        **settings,
        "table": rows,
        "table_by_mode": claims_paper.published_vs_modes(results, pub),
        "claims": verdicts,
        "provenance_caveats": pub.get("provenance_caveats", []),
    }
    return render_markdown(results, pub, report["table_by_mode"], verdicts, n_pairs, settings), report


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


def claim_verdicts(
    pub: dict[str, Any],
    paper_to_ours: dict[str, str],
    per_model: dict[str, pd.DataFrame],
    *,
    test: str,
    correction: str,
    alpha: float,
) -> tuple[list[dict[str, Any]], int]:
    """Every claim with its tested pairs (corrected together over all claims) and its verdict;
    also the number of pairs tested."""
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
        pairs += [(claim["id"], claim["metric"], better, o) for o in others if better in per_model and o in per_model]
    results = tested_pairs(pairs, per_model, test=test, correction=correction, alpha=alpha)
    for v, claim in zip(verdicts, pub.get("claims", [])):
        better = paper_to_ours.get(claim["better"])
        keys = [(v["id"], better, paper_to_ours.get(o)) for o in claim["than"]]
        v["pairs"] = [results[k] for k in keys if k in results]
        v["n_pairs_tested"] = len(v["pairs"])
        v["n_pairs_claimed"] = len(claim["than"])
        v["verdict"] = verdict(v["pairs"], bool(v["missing"]))
    return verdicts, len(pairs)


def tested_pairs(
    pairs: list[tuple[str, str, str, str]],
    per_model: dict[str, pd.DataFrame],
    *,
    test: str,
    correction: str,
    alpha: float,
) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Each (claim, metric, better, other) pair tested with ``other`` as the baseline, then the
    p-values corrected jointly (one family: all pairs of all claims)."""
    from benchmark.stats import adjust_pvalues, compare

    if not pairs:
        return {}
    raw = []
    for cid, metric, better, other in pairs:
        a, b = claims_paper.paired(per_model[better], per_model[other])  # captioned-only: users both keep
        r = compare(
            {better: a, other: b},
            baseline=other,
            metrics=[metric],
            test=test,
            correction="none",
            alpha=alpha,
        )[0]
        raw.append(((cid, better, other), r))
    adj = adjust_pvalues([r["p"] for _, r in raw], correction)
    return {key: dict(r, p_adjusted=float(pa), significant=bool(pa <= alpha)) for (key, r), pa in zip(raw, adj)}


def verdict(pairs: list[dict[str, Any]], missing: bool) -> str:
    """The verdict rule of the module docstring."""
    if any(p["significant"] and p["mean_diff"] < 0 for p in pairs):
        return "contradicted"
    if missing:
        return "not testable"
    if all(p["significant"] and p["mean_diff"] > 0 for p in pairs):
        return "supported"
    return "not supported"


def render_markdown(
    results: RunResults,
    pub: dict[str, Any],
    rows: list[dict[str, Any]],
    verdicts: list[dict[str, Any]],
    n_pairs: int,
    settings: dict[str, Any],
) -> str:
    """The claims report as Markdown: header, published-vs-ours table, one section per claim."""
    md = [
        f"# Claims check: {results.config.experiment}",
        "",
        f"Results: `{results.run_dir}` · split fingerprint `{results.fingerprint[:12]}` · test: {settings['test']}, "
        f"correction: {settings['correction']} over all {n_pairs} claim comparisons, α = {settings['alpha']}",
        "",
        f"Published numbers: {pub.get('source', '').strip()}",
        "",
    ]
    md += [f"- Paper protocol: {cav}" for cav in pub.get("protocol_caveats", [])]
    md += [f"- Provenance of the published numbers: {cav}" for cav in pub.get("provenance_caveats", [])]
    modes = claims_paper.modes_of(results)
    md += ["", "## Published vs ours", ""]
    md += claims_paper.modes_table_markdown(rows, modes)
    if len(modes) > 1:
        md += [
            "",
            "`full-catalogue`: every item ranked, seen items masked, every test item relevant (the leaderboard's). "
            "`captioned-only`: the paper's protocol (each model's own items, profile from train + valid, no "
            "masking, users without such items skipped, the configured share of test users); in brackets the "
            "middle 95% of the mean over repeated user samples; each model's mean over its own users, as the "
            "paper computed them.",
        ]
    md += ["", "## Claims", ""]
    for v in verdicts:
        md += claim_markdown(v)
    return "\n".join(md) + "\n"


def claim_markdown(v: dict[str, Any]) -> list[str]:
    md = [f"### {v['text']} — **{v['verdict']}**"]
    if v["missing"]:
        md.append(
            f"Methods without a row in these results: {', '.join(v['missing'])}. "
            f"Tested {v['n_pairs_tested']} of {v['n_pairs_claimed']} comparisons."
        )
    md += pair_lines(v.get("pairs", []))
    if v.get("published_relative_improvement") is not None:
        md.append(f"- Published relative improvement: {100 * v['published_relative_improvement']:+.1f}%")
    for mode, mv in v.get("modes", {}).items():
        md.append(f"- In `{mode}`: **{mv['verdict']}** (paired over the users both methods evaluate)")
        md += ["  " + line for line in pair_lines(mv.get("pairs", []))]
    md += claims_paper.differences_markdown(v.get("differences", []))
    md.append("")
    return md


def pair_lines(pairs: list[dict[str, Any]]) -> list[str]:
    """One line per tested pair: difference with CI, relative improvement, adjusted p."""
    md = []
    for p in pairs:
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
    return md


def published_frame(published: str | None = None) -> pd.DataFrame:
    pub = load_published(published)
    return pd.DataFrame([{"method": m, **v} for m, v in pub["methods"].items()])
