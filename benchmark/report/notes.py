"""What a leaderboard says besides its numbers: how each model was tuned, and its health warnings.

Built from plain data (search summaries, the policy, warning dicts), so any reader of saved
results can render them:

- the **caption** states the tuning policy and the budget every tuned model had (equal unless an
  entry overrides it, and then it says so), and which models were not tuned;
- **row marks**: a model with a health warning gets :data:`HEALTH_MARK` (md) / ``!`` (LaTeX);
- under a Markdown table, the budget each tuned model used with its chosen parameters, and the
  list of warnings; LaTeX carries them in the caption; CSV gets columns ``tuned_trials``,
  ``tuned_pruned``, ``tuned_params`` (JSON) and ``health`` (the failed checks, ``;``-separated).

Wall time is left out on purpose (the trace has it): a leaderboard does not depend on it.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from benchmark.report.labels import md_escape

HEALTH_MARK = "⚠"
LATEX_HEALTH_MARK = r"\textsuperscript{!}"
SAMPLER_NAMES = {"grid": "grid", "random": "random", "tpe": "TPE"}


@dataclass
class LeaderboardNotes:
    """Everything :func:`render` adds to a leaderboard (empty: nothing is added)."""

    policy: Mapping[str, Any] | None = None
    search: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    untuned: Sequence[str] = ()
    warnings: Sequence[Mapping[str, Any]] = ()

    def __bool__(self) -> bool:
        return bool(self.policy or self.warnings)

    def flagged(self) -> dict[str, list[str]]:
        """Model → the checks it failed (in order)."""
        out: dict[str, list[str]] = {}
        for w in self.warnings:
            checks = out.setdefault(str(w["model"]), [])
            if w["check"] not in checks:
                checks.append(str(w["check"]))
        return out

    def row_marks(self, fmt: str) -> dict[str, str]:
        mark = LATEX_HEALTH_MARK if fmt == "latex" else f" {HEALTH_MARK}"
        return {m: mark for m in self.flagged()} if fmt in ("md", "latex") else {}


def budget_caption(notes: LeaderboardNotes) -> str:
    """One sentence on the tuning policy and the budgets (empty without a policy)."""
    p = notes.policy
    if not p:
        return ""
    budget = _budget_text(p.get("trials"), p.get("timeout_s"))
    text = (
        f"Hyper-parameters tuned on validation {p.get('metric')} only (Optuna, "
        f"{SAMPLER_NAMES.get(str(p.get('sampler')), p.get('sampler'))} sampler"
        f"{', median pruning' if p.get('pruning') else ''}), budget {budget} per tuned model"
    )
    overrides = {
        m: s["budget_policy"]
        for m, s in notes.search.items()
        if s.get("budget_policy") and s["budget_policy"] != budget
    }
    text += (
        "; overrides: " + ", ".join(f"{m} {b}" for m, b in overrides.items())
        if overrides
        else " (the same for every tuned model)"
    )
    if any(s.get("exhaustive") for s in notes.search.values()):
        text += "; spaces no larger than the budget searched exhaustively"
    text += "."
    if notes.untuned:
        text += " Not tuned: " + ", ".join(notes.untuned) + "."
    return text


def search_lines(notes: LeaderboardNotes) -> list[str]:
    """Per tuned model: trials used (pruned, failed), the chosen trial and its parameters."""
    lines = []
    for model, s in notes.search.items():
        used = f"{s['trials']} trials"
        extra = [f"{s[k]} {k}" for k in ("pruned", "failed") if s.get(k)]
        if s.get("exhaustive"):
            extra.append("exhaustive")
        params = ", ".join(f"{k}={_value(v)}" for k, v in s["best_params"].items())
        lines.append(
            f"{model}: {used}{' (' + ', '.join(extra) + ')' if extra else ''}; chose trial {s['best_trial']} "
            f"({params}), validation {s['metric']} {s['best_value']:.4f}"
        )
    return lines


def health_lines(notes: LeaderboardNotes) -> list[str]:
    return [f"{w['model']} — {w['check']}: {w['message']}" for w in notes.warnings]


def render(text: str, fmt: str, notes: LeaderboardNotes) -> str:
    """Add the notes to a rendered leaderboard (Markdown: lists under the table; CSV: columns;
    LaTeX: nothing here, its notes go into the caption through :func:`latex_note`)."""
    if not notes:
        return text
    if fmt == "csv":
        return annotate_csv(text, notes)
    if fmt != "md":
        return text
    block: list[str] = []
    tuning = search_lines(notes)
    if tuning:
        block += ["", "**Tuning** (budget used and the configuration chosen on validation):", ""]
        block += [f"- {md_escape(line)}" for line in tuning]
    warnings = health_lines(notes)
    if warnings:
        block += [
            "",
            f"**Health warnings** ({HEALTH_MARK} on the row; warnings, not errors: `run --strict-health` "
            "makes them errors):",
            "",
        ]
        block += [f"- {md_escape(line)}" for line in warnings]
    return text + "\n".join(block) + "\n" if block else text


def latex_note(notes: LeaderboardNotes) -> str:
    """Tuning and warnings as caption text for LaTeX (plain text: the caption escapes it)."""
    parts = []
    tuning = search_lines(notes)
    if tuning:
        parts.append("Chosen configurations: " + "; ".join(tuning) + ".")
    warnings = health_lines(notes)
    if warnings:
        parts.append("Rows marked ! have health warnings: " + "; ".join(warnings) + ".")
    return " ".join(parts)


def caption_note(notes: LeaderboardNotes, fmt: str) -> str:
    """The caption's ``note`` in ``fmt``: the budgets, plus (LaTeX) the tuning and warnings."""
    return " ".join(t for t in (budget_caption(notes), latex_note(notes) if fmt == "latex" else "") if t)


def leaderboard_with_notes(
    means: Mapping[str, Mapping[str, float]],
    tests: Sequence[Mapping[str, Any]],
    notes: LeaderboardNotes,
    *,
    fmt: str,
    caption: Mapping[str, Any],
    **table: Any,
) -> str:
    """:func:`benchmark.report.tables.leaderboard` (``table``: its other keyword arguments) with
    ``notes``: the :func:`caption_note` in the caption, the health marks on the rows, then
    :func:`render` (Markdown lists, CSV columns)."""
    from benchmark.report.tables import leaderboard

    note = caption_note(notes, fmt)
    text = leaderboard(
        means,
        tests,
        fmt=fmt,
        caption={**caption, "note": note} if note else caption,
        row_marks=notes.row_marks(fmt),
        **table,
    )
    return render(text, fmt, notes)


def annotate_csv(text: str, notes: LeaderboardNotes) -> str:
    """The leaderboard CSV with the tuning and health columns added (by ``method``)."""
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)  # the numbers stay as written
    flagged = notes.flagged()
    s = notes.search
    df["tuned_trials"] = pd.array([s[m]["trials"] if m in s else None for m in df["method"]], dtype="Int64")
    df["tuned_pruned"] = pd.array([s[m]["pruned"] if m in s else None for m in df["method"]], dtype="Int64")
    df["tuned_params"] = [json.dumps(s[m]["best_params"], sort_keys=True) if m in s else "" for m in df["method"]]
    df["health"] = ["; ".join(flagged.get(m, [])) for m in df["method"]]
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()


def _budget_text(trials: Any, timeout_s: Any) -> str:
    parts = [f"{trials} trials"] if trials is not None else []
    if timeout_s is not None:
        parts.append(f"{float(timeout_s):g} s")
    return " / ".join(parts) or "unbounded"


def _value(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else json.dumps(v) if isinstance(v, (list, dict)) or v is None else str(v)
