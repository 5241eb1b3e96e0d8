"""VLM4Rec's feature producer for the runner: describe item images, then embed the text.

``vlm4rec-text`` runs the same path as ``vlm4rec-bench describe`` + ``encode``, through the same
settings and factories (:mod:`vlm4rec.config`): a describer (``hf`` LVLM, ``openai`` endpoint,
``precomputed`` file, or none for catalogue text only) fills the description cache through
Lightning batch inference, ``descriptions.jsonl`` and ``coverage.json`` are written, and the
chosen text (``title+description`` by default, the paper's ``f"{title}. {description}"``) is
embedded by a sentence encoder (MiniLM by default) or the CLIP text tower. The coverage report
and the describer/encoder identities go into the features' provenance, so every result says
which models produced its inputs. In a config::

    params: {describer: {kind: hf, preset: llava-next-7b, dtype: 4bit, prompt: paper-v1, max_new_tokens: 150},
             encoder: {kind: minilm}, text: title+description, fallback: drop}
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.errors import BenchError, ConfigError
from benchmark.features import ItemFeatures
from benchmark.io import read_json, write_json
from benchmark.producers import FeatureContext, register_feature_producer
from vlm4rec.config import DESCRIBER_KINDS, DescriberConfig, EncoderConfig
from vlm4rec.texts import FALLBACKS, NO_DESCRIPTION_NEEDED, TEXT_CHOICES

log = logging.getLogger(__name__)


def _resolve(path: str, ctx: FeatureContext) -> Path:
    """Relative paths are looked up in the dataset's raw folder, then the split folder."""
    p = Path(path)
    if p.is_absolute() or p.exists():
        return p
    for base in (ctx.raw_dir, ctx.split_dir):
        if base is not None and (Path(base) / p).exists():
            return Path(base) / p
    raise FileNotFoundError(
        f"descriptions file {path!r} not found (looked in the working directory, {ctx.raw_dir} and {ctx.split_dir})"
    )


def _describe(
    ctx: FeatureContext, cfg: DescriberConfig, fallback: str, batch_size: int, parallel: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run the describer over the split (resumable, cached): the descriptions and their provenance."""
    from vlm4rec.cache import identity_hash
    from vlm4rec.config import build_describer, build_selection
    from vlm4rec.describers.precomputed import read_description_table
    from vlm4rec.inference import output_folder, run_describe

    split = ctx.split
    d = build_describer(cfg, find_file=lambda p: _resolve(p, ctx))
    selection = build_selection(cfg)
    cache_root = Path(ctx.cache_dir) / "descriptions"
    out = cache_root / identity_hash(d.identity())[:20] / output_folder(split, selection)
    t0 = time.perf_counter()
    outcome = run_describe(
        split.items,
        d,
        cache_root,
        out,
        image_root=ctx.raw_dir or ctx.split_dir,
        image_roots=ctx.image_roots,  # the dataset's folders only
        batch_size=batch_size,
        fallback=fallback,
        **parallel,
        split_fingerprint=split.fingerprint,
        progress=ctx.progress,
        selection=selection,
        train=split.train,
    )
    seconds = describe_cost(out, time.perf_counter() - t0, outcome is not None and outcome.n_run > 0)
    desc_path = out / "descriptions.jsonl"
    cov = read_json(out / "coverage.json")
    if outcome is not None:
        log.info("descriptions: %s (coverage %.1f%%)", desc_path, 100 * cov.get("coverage", 0.0))
    extra = {
        "describer": d.identity(),
        "describe_seconds": seconds,
        "descriptions_file": str(desc_path),
        "description_coverage": {
            k: cov.get(k) for k in ("n_items", "status_counts", "action_counts", "coverage", "fallback")
        },
        **({"selection": cov["selection"]} if "selection" in cov else {}),  # the formula, counts, cut
    }
    if d.needs_image:  # a generating describer: its failures are retried, so this result is provisional
        retryable = sum(cov.get("status_counts", {}).get(s, 0) for s in RETRYABLE)
        extra["final"] = retryable == 0
        extra["description_coverage"]["generated_share"] = generated_share(cov)
        extra["description_coverage"]["first_errors"] = first_errors(desc_path)
    return read_description_table(desc_path), extra


#: item statuses a later run retries (a failed request, an item not reached): features made with
#: them are provisional (``final: false``), so the next run describes those items again
RETRYABLE = ("failed_generation", "not_described")
#: item statuses the describer was not meant to describe (no local image, a path outside the
#: allowed folders, left out by the caption selection)
NOT_DESCRIBABLE = ("no_image", "outside_root", "not_selected")
#: what a run does when descriptions cover less than ``min_description_coverage`` of the describable items
LOW_COVERAGE_ACTIONS = ("error", "warn")


class DescriptionCoverageError(BenchError):
    """The describer described too few of the items it could describe (an outage, a broken model)."""


def generated_share(cov: dict[str, Any]) -> float:
    """Described items over describable ones (items with a usable image; 1.0 when there are none)."""
    counts = cov.get("status_counts", {})
    tried = sum(n for status, n in counts.items() if status not in NOT_DESCRIBABLE)
    return counts.get("ok", 0) / tried if tried else 1.0


def first_errors(desc_path: Path, n: int = 3) -> list[str]:
    """The first few distinct errors of ``descriptions.jsonl`` (what the endpoint said)."""
    import json

    out: list[str] = []
    with open(desc_path, encoding="utf-8") as fh:
        for line in fh:
            err = json.loads(line).get("error") if line.strip() else None
            if err and err not in out:
                out.append(str(err)[:200])
                if len(out) >= n:
                    break
    return out


def check_description_coverage(extra: dict[str, Any], floor: float, action: str) -> None:
    """Fail (``action: error``) or warn (``warn``: logged, and listed under the run's leaderboard)
    when a generating describer covered less than ``floor`` of the describable items."""
    cov = extra.get("description_coverage", {})
    share = cov.get("generated_share")
    if share is None or share >= floor:
        return
    counts = ", ".join(f"{k} {v}" for k, v in sorted(cov.get("status_counts", {}).items()))
    errors = "; ".join(cov.get("first_errors") or []) or "none recorded"
    msg = (
        f"the describer described {share:.1%} of the items it could describe (floor {floor:.0%}; {counts}; "
        f"first errors: {errors}). Failed items are retried on the next run; "
        "to accept this, set the feature's min_description_coverage or on_low_coverage: warn"
    )
    if action == "error":
        raise DescriptionCoverageError(msg)
    log.warning("%s", msg)
    extra.setdefault("warnings", []).append(msg)


def describe_cost(out: Path, seconds: float, described: bool) -> float | None:
    """Wall seconds spent describing the items of ``out`` (a descriptions folder), kept in its
    ``cost.json`` and added up over resumed runs: a later run that finds the descriptions made
    counts what they cost then (``None``: made before costs were recorded)."""
    path = out / "cost.json"
    total = read_json(path).get("describe_seconds") if path.is_file() else None
    if described:
        total = round((total or 0.0) + seconds, 3)
        write_json(path, {"describe_seconds": total})
    return total


@register_feature_producer("vlm4rec-text")
def vlm4rec_text(
    ctx: FeatureContext,
    describer: DescriberConfig | None = None,
    encoder: EncoderConfig | None = None,
    text: str = "title+description",
    fallback: str = "title",
    describe_batch_size: int = 8,
    devices: int = 1,
    encode_batch_size: int = 64,
    num_nodes: int = 1,
    strategy: str | None = None,
    min_description_coverage: float = 0.9,
    on_low_coverage: str = "error",
) -> ItemFeatures:
    """Descriptions (optional) → text choice → sentence/CLIP-text embeddings, cached by provenance.

    ``describer``/``encoder`` are :class:`~vlm4rec.config.DescriberConfig` /
    :class:`~vlm4rec.config.EncoderConfig` (mappings in YAML); without a describer only the
    catalogue's own text can be embedded (``text: title`` or ``catalogue``).
    ``describe_batch_size`` drives the describe step's Lightning run, ``encode_batch_size`` the
    encoder; ``devices``, ``num_nodes`` and ``strategy`` (Lightning's; default ``ddp`` when there
    is more than one process) run both steps over several processes.

    A generating describer (``hf``, ``openai``) must describe at least
    ``min_description_coverage`` of the items that have a usable image: below it the run fails
    (``on_low_coverage: error``, the default: an endpoint outage must not become the result) or
    warns (``warn``: logged and listed under the leaderboard). Items that failed are retried by
    the next run, and features made with failures are provisional (not reused by the next run).
    """
    from vlm4rec.config import build_encoder
    from vlm4rec.encoders import encode_items

    if text not in TEXT_CHOICES:
        raise ConfigError(f"text: {text!r} is not allowed; allowed values: {', '.join(TEXT_CHOICES)}")
    if fallback not in FALLBACKS:
        raise ConfigError(f"fallback: {fallback!r} is not allowed; allowed values: {', '.join(FALLBACKS)}")
    if on_low_coverage not in LOW_COVERAGE_ACTIONS:
        raise ConfigError(
            f"on_low_coverage: {on_low_coverage!r} is not allowed; allowed values: {', '.join(LOW_COVERAGE_ACTIONS)}"
        )
    if not 0.0 <= min_description_coverage <= 1.0:
        raise ConfigError(f"min_description_coverage: a share in [0, 1], got {min_description_coverage}")
    desc_table, extra = None, {}
    parallel: dict[str, Any] = {"devices": devices, "num_nodes": num_nodes, "strategy": strategy}
    if describer is not None:
        desc_table, extra = _describe(ctx, describer, fallback, describe_batch_size, parallel)
        check_description_coverage(extra, min_description_coverage, on_low_coverage)
    elif text not in NO_DESCRIPTION_NEEDED:
        raise ConfigError(
            f"text: {text!r} needs descriptions: set `describer` (kind {', '.join(DESCRIBER_KINDS)}); "
            f"without one, use one of {', '.join(NO_DESCRIPTION_NEEDED)}"
        )
    enc = build_encoder(encoder or EncoderConfig(), device=None if ctx.device == "cpu" else ctx.device)
    return encode_items(
        ctx.split.items,
        desc_table,
        enc,
        text=text,
        fallback=fallback,
        name="text",
        cache_dir=Path(ctx.cache_dir) / "embeddings",
        batch_size=encode_batch_size,
        progress=ctx.progress,
        split_fingerprint=ctx.split.fingerprint,
        extra_provenance=extra,
        **parallel,
    )
