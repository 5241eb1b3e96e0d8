"""What a tracker (W&B, MLflow) receives from a finished run: tables and summary values, read
from the run directory's own files, so a tracker shows exactly what the reports show.

- the **leaderboard**: the rows of ``leaderboard.md`` as printed (markers ▲/▼, bold/underline
  marks, ``± SD`` seed spread, ``(baseline)``, † and any row mark), parsed from the text that
  :func:`benchmark.report.tables.leaderboard` wrote, beside the plain numbers of
  ``leaderboard.csv`` (same function, ``fmt="csv"``) so a tracker can sort and plot;
- the **statistics**: one row per comparison of ``statistics.json`` (:data:`STATISTICS_COLUMNS`);
- the **subsets** (``subsets.csv``), the **costs** (``costs.json``), and, when the run has them,
  the **search traces** (``search/<model>.parquet``) and the **health warnings** (``health.json``);
- **summary values** per model: ``<model>/<metric@K>`` and, against the baseline,
  ``<model>/<metric@K>_significant_vs_baseline`` (significant and a direction),
  ``…_direction_vs_baseline`` and ``…_p_adjusted_vs_baseline``, so a tracker's own charts and
  filters work.

Every function takes the run directory and returns plain lists and dicts (no tracker import).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: a table as a tracker takes it: column names and rows of plain values
Table = tuple[list[str], list[list[Any]]]

#: the statistics table's columns, each a key of the comparison record (benchmark.stats.RESULT_KEYS)
STATISTICS_COLUMNS: tuple[str, ...] = (
    "run",
    "metric",
    "baseline",
    "test",
    "p",
    "p_adjusted",
    "family",
    "family_size",
    "correction",
    "alpha",
    "mean_run",
    "mean_baseline",
    "mean_diff",
    "ci_low",
    "ci_high",
    "estimate",
    "effect_size",
    "rel_improvement",
    "rel_ci_low",
    "rel_ci_high",
    "significant",
    "direction",
    "n_users",
    "test_label",
)


@dataclass
class RunTables:
    """Everything a tracker logs for one finished run (tables by key, summary values)."""

    tables: dict[str, Table] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def run_tables(run_dir: str | Path) -> RunTables:
    """The tables and summary values of a finished run directory (those its files allow)."""
    d = Path(run_dir)
    out = RunTables()
    costs = _read_json(d / "costs.json")
    if (d / "leaderboard.md").is_file():
        out.tables["leaderboard"] = leaderboard_table(
            (d / "leaderboard.md").read_text(encoding="utf-8"),
            _read_csv_records(d / "leaderboard.csv"),
            (costs or {}).get("models"),
        )
    stats = _read_json(d / "statistics.json") or {}
    comparisons = stats.get("comparisons") or []
    if comparisons:
        out.tables["statistics"] = statistics_table(comparisons)
    for key, table in (
        ("subsets", records_table(_read_csv_records(d / "subsets.csv"))),
        ("costs", costs_table(costs)),
        ("search_traces", search_table(d / "search")),
        ("health_warnings", health_table(_read_json(d / "health.json"))),
    ):
        if table[1]:
            out.tables[key] = table
    metrics = _read_json(d / "metrics.json") or {}
    out.summary = summary_values(metrics.get("means", {}), comparisons, stats.get("baseline"))
    return out


def markdown_table(text: str) -> Table:
    """The first Markdown table in ``text`` as (header, rows of cell strings), ``\\|`` unescaped."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        return [], []
    block = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        block.append(line)
    cells = [_split_row(line) for line in block]
    return cells[0], cells[2:]  # cells[1] is the |---| rule


def _split_row(line: str) -> list[str]:
    parts, cur, i = [], "", 1
    body = line.strip()
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body) and body[i + 1] == "|":
            cur += "|"
            i += 2
            continue
        if ch == "|":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
        i += 1
    return parts


def leaderboard_table(
    markdown: str, numbers: list[dict[str, Any]], costs: Mapping[str, Mapping[str, Any]] | None = None
) -> Table:
    """``leaderboard.md``'s rows as printed, then the CSV's plain numbers of the same row
    (``model``, mean, ``_std``, ``_p_adjusted``, ``_significant``) for sorting, filtering and
    plotting, then, with
    ``costs`` (``costs.json``'s models), the cost as the leaderboard prints it
    (:func:`benchmark.report.labels.format_cost`) and its ``cost_seconds`` and ``energy_kwh``."""
    from benchmark.report.labels import format_cost

    head, rows = markdown_table(markdown)
    if not head:
        return [], []
    extra = list(numbers[0]) if numbers else []
    cost_cols = ["Cost", "cost_seconds", "energy_kwh"] if costs else []
    out = []
    for i, row in enumerate(rows):
        rec = numbers[i] if i < len(numbers) else {}
        cells = row + [_plain(rec.get(k)) for k in extra]
        if costs:
            c = costs.get(str(rec.get("method"))) or {}
            cells += [format_cost(c), _plain(c.get("total_seconds")), _plain(c.get("energy_kwh"))]
        out.append(cells)
    # the CSV's "method" is the plain model name (the printed one may carry "(baseline)", marks)
    return head + ["model" if k == "method" else k for k in extra] + cost_cols, out


def statistics_table(comparisons: list[Mapping[str, Any]]) -> Table:
    """One row per comparison: :data:`STATISTICS_COLUMNS` of each record (the record's ``run``
    is the column ``model``)."""
    columns = ["model" if k == "run" else k for k in STATISTICS_COLUMNS]
    return columns, [[_plain(c.get(k)) for k in STATISTICS_COLUMNS] for c in comparisons]


def records_table(records: list[dict[str, Any]]) -> Table:
    if not records:
        return [], []
    cols = list(records[0])
    return cols, [[_plain(r.get(c)) for c in cols] for r in records]


def costs_table(costs: Mapping[str, Any] | None) -> Table:
    """One row per model from ``costs.json`` (:mod:`benchmark.runner.costs`)."""
    if not costs or not costs.get("models"):
        return [], []
    from benchmark.runner.costs import COST_COLUMNS

    models = costs["models"]
    order = [m for m in costs.get("order", []) if m in models] or list(models)
    return list(COST_COLUMNS), [[m] + [_plain(models[m].get(c)) for c in COST_COLUMNS[1:]] for m in order]


def search_table(search_dir: Path) -> Table:
    """Every model's search trace (``search/<model>.parquet``), one row per trial."""
    files = sorted(search_dir.glob("*.parquet")) if search_dir.is_dir() else []
    if not files:
        return [], []
    import pandas as pd

    frames = [pd.read_parquet(f).assign(model=f.stem) for f in files]
    df = pd.concat(frames, ignore_index=True)
    df = df[["model"] + [c for c in df.columns if c != "model"]]
    return records_table(_records(df))


def health_table(health: Any) -> Table:
    """``health.json``'s warnings (a list, or ``{"warnings": [...]}``): model, check, message."""
    warnings = health.get("warnings", []) if isinstance(health, Mapping) else (health or [])
    rows = [[w.get("model"), w.get("check"), w.get("message")] for w in warnings if isinstance(w, Mapping)]
    return ["model", "check", "message"], rows


def summary_values(
    means: Mapping[str, Mapping[str, float]], comparisons: list[Mapping[str, Any]], baseline: str | None
) -> dict[str, Any]:
    """``<model>/<metric>`` means and, for each comparison against ``baseline``, whether it is a
    finding (significant after correction and with a direction), its direction and adjusted p."""
    out: dict[str, Any] = {}
    for model, vals in means.items():
        for metric, v in vals.items():
            out[f"{model}/{metric}"] = _plain(v)
    for c in comparisons:
        if baseline is not None and c.get("baseline") != baseline:
            continue
        key = f"{c['run']}/{c['metric']}"
        direction = int(c.get("direction") or 0)
        out[f"{key}_significant_vs_baseline"] = bool(c.get("significant")) and direction != 0
        out[f"{key}_direction_vs_baseline"] = direction if c.get("significant") else 0
        out[f"{key}_p_adjusted_vs_baseline"] = _plain(c.get("p_adjusted"))
    return out


def _plain(v: Any) -> Any:
    """JSON-safe: NaN/inf/NA → None, numpy scalars → Python, lists/dicts/arrays → JSON text."""
    if v is None or type(v).__name__ == "NAType":
        return None
    if hasattr(v, "tolist"):  # numpy scalar or array
        v = v.tolist()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, default=str)
    return v


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _read_csv_records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    import pandas as pd

    return _records(pd.read_csv(path))


def _records(df: Any) -> list[dict[str, Any]]:
    """A frame's rows as dicts of plain values at full precision (``to_json`` keeps 10 digits)."""
    return [{k: _plain(v) for k, v in row.items()} for row in df.to_dict("records")]


#: the claims table's columns (one row per claim × evaluation mode × pair, every run of the report)
CLAIMS_COLUMNS: tuple[str, ...] = (
    "run",
    "claim",
    "text",
    "mode",
    "protocol",
    "direction_verdict",
    "size_verdict",
    "pair",
    "metric",
    "published_rel",
    "rel_improvement",
    "rel_ci_low",
    "rel_ci_high",
    "ours",
    "mean_diff",
    "ci_low",
    "ci_high",
    "p_adjusted",
    "family_size",
    "test",
    "pair_direction_verdict",
)


#: the claims table's columns copied from each pair's comparison record
_PAIR_KEYS = (
    "published_rel",
    "rel_improvement",
    "rel_ci_low",
    "rel_ci_high",
    "mean_diff",
    "ci_low",
    "ci_high",
    "p_adjusted",
    "family_size",
    "test",
)


def claims_table(report: Mapping[str, Any]) -> Table:
    """The verdicts of a ``claims`` report (:func:`benchmark.runner.claims.claims_report`'s dict):
    each claim's two verdicts, the published relative improvement beside ours with its CI, the
    corrected p and the protocol (split protocol and evaluation mode), per pair."""
    rows = []
    for run in report.get("runs", []):
        protocol = _split_protocol(run.get("run_dir"))
        for claim in run.get("claims", []):
            for mode, c in [("full-catalogue", claim), *claim.get("modes", {}).items()]:
                pairs = c.get("pairs") or [{}]
                for p in pairs:
                    rec = {
                        "run": run.get("label"),
                        "claim": claim.get("id"),
                        "text": claim.get("text"),
                        "mode": mode,
                        "protocol": protocol,
                        "direction_verdict": c.get("direction_verdict"),
                        "size_verdict": c.get("size_verdict"),
                        "pair": f"{p['run']} vs {p['baseline']}" if p else None,
                        "metric": p.get("metric", claim.get("metric")),
                        "ours": _ours(p),
                        "pair_direction_verdict": p.get("direction_verdict"),
                        **{k: p.get(k) for k in _PAIR_KEYS},
                    }
                    rows.append([_plain(rec.get(k)) for k in CLAIMS_COLUMNS])
    return list(CLAIMS_COLUMNS), rows


def claims_summary(report: Mapping[str, Any]) -> dict[str, Any]:
    """``claims/<id>/direction`` and ``claims/<id>/size`` of the first run, and verdict counts."""
    out: dict[str, Any] = {}
    claims = report.get("claims", [])
    for c in claims:
        out[f"claims/{c['id']}/direction"] = c.get("direction_verdict")
        out[f"claims/{c['id']}/size"] = c.get("size_verdict")
    for verdict in ("supported", "contradicted", "not significant", "not testable"):
        out[f"claims/n_{verdict.replace(' ', '_')}"] = sum(c.get("direction_verdict") == verdict for c in claims)
    return out


def _ours(pair: Mapping[str, Any]) -> str | None:
    """Our relative improvement with its CI, as text: ``+12.3% [+4.0%, +20.1%]``."""
    if not pair or pair.get("rel_improvement") is None:
        return None
    from benchmark.report.labels import format_percent

    return (
        f"{format_percent(pair['rel_improvement'])} "
        f"[{format_percent(pair.get('rel_ci_low'))}, {format_percent(pair.get('rel_ci_high'))}]"
    )


def _split_protocol(run_dir: Any) -> str | None:
    info = _read_json(Path(run_dir) / "split.json") if run_dir else None
    return (info or {}).get("protocol")
