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

from benchmark.errors import ConfigError
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
    return read_description_table(desc_path), extra


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
) -> ItemFeatures:
    """Descriptions (optional) → text choice → sentence/CLIP-text embeddings, cached by provenance.

    ``describer``/``encoder`` are :class:`~vlm4rec.config.DescriberConfig` /
    :class:`~vlm4rec.config.EncoderConfig` (mappings in YAML); without a describer only the
    catalogue's own text can be embedded (``text: title`` or ``catalogue``).
    ``describe_batch_size`` drives the describe step's Lightning run, ``encode_batch_size`` the
    encoder; ``devices``, ``num_nodes`` and ``strategy`` (Lightning's; default ``ddp`` when there
    is more than one process) run both steps over several processes.
    """
    from vlm4rec.config import build_encoder
    from vlm4rec.encoders import encode_items

    if text not in TEXT_CHOICES:
        raise ConfigError(f"text: {text!r} is not allowed; allowed values: {', '.join(TEXT_CHOICES)}")
    if fallback not in FALLBACKS:
        raise ConfigError(f"fallback: {fallback!r} is not allowed; allowed values: {', '.join(FALLBACKS)}")
    desc_table, extra = None, {}
    parallel: dict[str, Any] = {"devices": devices, "num_nodes": num_nodes, "strategy": strategy}
    if describer is not None:
        desc_table, extra = _describe(ctx, describer, fallback, describe_batch_size, parallel)
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
