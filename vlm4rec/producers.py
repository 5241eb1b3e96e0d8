"""VLM4Rec's feature producer for the runner: describe item images, then embed the text.

``vlm4rec-text`` runs the same path as ``vlm4rec-bench describe`` + ``encode``: a describer
(``hf`` LVLM, ``openai`` endpoint, ``precomputed`` file, or none for catalogue text only) fills
the description cache through Lightning batch inference, ``descriptions.jsonl`` and
``coverage.json`` are written, and the chosen text (``title+description`` by default, the
paper's ``f"{title}. {description}"``) is embedded by a sentence encoder (MiniLM by default) or
the CLIP text tower. The coverage report and the describer/encoder identities go into the
features' provenance, so every result says which models produced its inputs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from benchmark.features import ItemFeatures
from benchmark.io import read_json
from benchmark.producers import FeatureContext, register_feature_producer

log = logging.getLogger(__name__)

DESCRIBERS = ("hf", "openai", "precomputed")


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


def build_describer(
    describer: str,
    *,
    descriptions: str | None,
    model: str | None,
    preset: str | None,
    prompt: str,
    dtype: str,
    max_new_tokens: int,
    base_url: str | None,
    api_key_env: str,
    ctx: FeatureContext,
):
    from vlm4rec.describers import HFDescriber, OpenAIDescriber, PrecomputedDescriber

    if describer == "precomputed":
        if not descriptions:
            raise ValueError("describer 'precomputed' needs `descriptions` (a JSONL/Parquet file)")
        return PrecomputedDescriber(_resolve(descriptions, ctx), prompt=prompt)
    if describer == "openai":
        if not base_url or not model:
            raise ValueError("describer 'openai' needs `base_url` and `model`")
        return OpenAIDescriber(base_url, model, prompt=prompt, api_key_env=api_key_env, max_new_tokens=max_new_tokens)
    if describer == "hf":
        quant = "4bit" if dtype == "4bit" else None
        dt = "fp16" if dtype == "4bit" else dtype
        if preset:
            return HFDescriber.from_preset(
                preset, model=model, prompt=prompt, dtype=dt, quantization=quant, max_new_tokens=max_new_tokens
            )
        if not model:
            raise ValueError("describer 'hf' needs `model` (a local path or hub id) or `preset`")
        return HFDescriber(model, prompt=prompt, dtype=dt, quantization=quant, max_new_tokens=max_new_tokens)
    raise ValueError(f"unknown describer {describer!r}; allowed: {', '.join(DESCRIBERS)}")


@register_feature_producer("vlm4rec-text")
def vlm4rec_text(
    ctx: FeatureContext,
    describer: str | None = None,
    descriptions: str | None = None,
    model: str | None = None,
    preset: str | None = None,
    prompt: str = "paper-v1",
    dtype: str = "auto",
    max_new_tokens: int = 150,
    batch_size: int = 8,
    devices: int = 1,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    encoder: str = "minilm",
    encoder_model: str | None = None,
    clip_pretrained: str | None = "openai",
    text: str = "title+description",
    fallback: str = "title",
    encode_batch_size: int = 64,
) -> ItemFeatures:
    """Descriptions (optional) → text choice → sentence/CLIP-text embeddings, cached by provenance."""
    from vlm4rec.describers.precomputed import read_description_table
    from vlm4rec.encoders import encode_items, make_encoder
    from vlm4rec.texts import NO_DESCRIPTION_NEEDED, TEXT_CHOICES

    if text not in TEXT_CHOICES:
        raise ValueError(f"unknown text choice {text!r}; allowed: {', '.join(TEXT_CHOICES)}")
    split = ctx.split
    desc_table = None
    extra: dict[str, Any] = {}
    if describer is not None:
        from vlm4rec.cache import identity_hash
        from vlm4rec.inference import run_describe

        d = build_describer(
            describer,
            descriptions=descriptions,
            model=model,
            preset=preset,
            prompt=prompt,
            dtype=dtype,
            max_new_tokens=max_new_tokens,
            base_url=base_url,
            api_key_env=api_key_env,
            ctx=ctx,
        )
        cache_root = Path(ctx.cache_dir) / "descriptions"
        out = cache_root / identity_hash(d.identity())[:20] / f"split-{split.fingerprint[:12]}"
        outcome = run_describe(
            split.items,
            d,
            cache_root,
            out,
            image_root=ctx.raw_dir or ctx.split_dir,
            batch_size=batch_size,
            devices=devices,
            fallback=fallback,
            split_fingerprint=split.fingerprint,
            progress=ctx.progress,
        )
        desc_path = out / "descriptions.jsonl"
        desc_table = read_description_table(desc_path)
        cov = read_json(out / "coverage.json")
        extra = {
            "describer": d.identity(),
            "descriptions_file": str(desc_path),
            "description_coverage": {
                k: cov.get(k) for k in ("n_items", "status_counts", "action_counts", "coverage", "fallback")
            },
        }
        if outcome is not None:
            log.info("descriptions: %s (coverage %.1f%%)", desc_path, 100 * cov.get("coverage", 0.0))
    elif text not in NO_DESCRIPTION_NEEDED:
        raise ValueError(
            f"text {text!r} needs descriptions: set `describer` (hf, openai or precomputed); "
            f"without one, use one of {', '.join(NO_DESCRIPTION_NEEDED)}"
        )
    kw: dict[str, Any] = {}
    if encoder == "clip":
        kw["pretrained"] = clip_pretrained
    enc = make_encoder(encoder, encoder_model, device=None if ctx.device == "cpu" else ctx.device, **kw)
    return encode_items(
        split.items,
        desc_table,
        enc,
        text=text,
        fallback=fallback,
        name="text",
        cache_dir=Path(ctx.cache_dir) / "embeddings",
        batch_size=encode_batch_size,
        progress=ctx.progress,
        split_fingerprint=split.fingerprint,
        extra_provenance=extra,
    )
