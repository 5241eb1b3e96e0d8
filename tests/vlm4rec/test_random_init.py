"""The random-weight LLaVA-NeXT builder the captioning perf script times with."""

from __future__ import annotations

import pytest
import torch


def test_7b_is_the_published_architecture():
    """llava-hf/llava-v1.6-mistral-7b-hf: 7.57B parameters (its model card), Mistral-7B text, ViT-L/14-336."""
    from transformers import LlavaNextForConditionalGeneration

    from vlm4rec.random_init import llava_next_config

    cfg = llava_next_config("7b")
    assert type(cfg.text_config).__name__ == "MistralConfig"
    assert (cfg.text_config.hidden_size, cfg.text_config.num_hidden_layers, cfg.text_config.vocab_size) == (
        4096,
        32,
        32064,
    )
    assert (cfg.vision_config.image_size, cfg.vision_config.patch_size) == (336, 14)
    assert cfg.image_token_index < cfg.text_config.vocab_size  # the offline tokenizer's <image> fits
    with torch.device("meta"):  # shapes only: no memory, no weights
        model = LlavaNextForConditionalGeneration(cfg)
    assert round(sum(p.numel() for p in model.parameters()) / 1e9, 2) == 7.57


def test_tiny_loads_like_a_checkpoint(tiny_llava_dir):
    from vlm4rec.describers import HFDescriber
    from vlm4rec.random_init import SIZES

    assert set(SIZES) == {"tiny", "7b"}
    d = HFDescriber(str(tiny_llava_dir), max_new_tokens=4, min_new_tokens=4, device="cpu")
    d.setup()
    assert sum(p.numel() for p in d.model.parameters()) < 5_000_000
    assert d.model.config.text_config.num_hidden_layers == 2


def test_unknown_size_names_the_available_ones(tmp_path):
    from vlm4rec.random_init import build_random_llava_next

    with pytest.raises(ValueError, match="unknown LLaVA-NeXT size '13b'; available: tiny, 7b"):
        build_random_llava_next(tmp_path, "13b")
