"""One describer/encoder factory: the command line and the runner's producer build the same thing
from the same settings; every shipped config's feature params validate against the producers."""

from __future__ import annotations

import json

import pytest

from benchmark.errors import BadInputError, ConfigError
from benchmark.producers import PRODUCERS
from benchmark.runner.config import load_config, shipped_configs
from vlm4rec.config import DescriberConfig, EncoderConfig, build_describer, build_encoder


def _from_flags(*flags: str) -> DescriberConfig:
    from benchmark.cli import build_parser
    from vlm4rec.cli import describer_config

    return describer_config(build_parser().parse_args(["describe", "split", *flags]))


def _from_yaml(describer: dict) -> DescriberConfig:
    return PRODUCERS.check_params("vlm4rec-text", {"describer": describer}, "features[0].params")["describer"]


def test_flags_and_config_fill_the_same_settings(tiny_llava_dir):
    flags = _from_flags(
        "--preset", "llava-next-7b", "--model", str(tiny_llava_dir), "--dtype", "fp16", "--min-new-tokens", "3",
        "--max-new-tokens", "9", "--revision", "main", "--chat-template", "yes",
    )  # fmt: skip
    yaml = _from_yaml(
        {
            "kind": "hf",
            "preset": "llava-next-7b",
            "lvlm": str(tiny_llava_dir),
            "dtype": "fp16",
            "min_new_tokens": 3,
            "max_new_tokens": 9,
            "revision": "main",
            "chat_template": "yes",
        }
    )
    assert flags == yaml
    a, b = build_describer(flags), build_describer(yaml)
    assert a.identity() == b.identity()
    assert (a.quantization, a.dtype, a.use_chat_template) == (None, "fp16", True)
    assert a.generation.as_dict() == {"max_new_tokens": 9, "min_new_tokens": 3, "do_sample": False}
    assert a.requested_revision == "main"


def test_openai_settings_reach_the_producer_too():
    """Before: only the CLI could set concurrency, timeout and retries."""
    yaml = _from_yaml(
        {"kind": "openai", "lvlm": "served", "base_url": "http://127.0.0.1:9/v1", "concurrency": 3, "timeout": 5,
         "retries": 1, "api_key_env": "MY_KEY", "max_new_tokens": 40},
    )  # fmt: skip
    flags = _from_flags(
        "--describer", "openai", "--lvlm", "served", "--base-url", "http://127.0.0.1:9/v1", "--concurrency", "3",
        "--timeout", "5", "--retries", "1", "--api-key-env", "MY_KEY", "--max-new-tokens", "40",
    )  # fmt: skip
    assert yaml == flags
    d = build_describer(yaml)
    assert (d.model, d.max_concurrency, d.timeout, d.max_retries, d.api_key_env, d.max_new_tokens) == (
        "served",
        3,
        5.0,
        1,
        "MY_KEY",
        40,
    )


def test_unset_settings_keep_the_preset_and_defaults_match_the_paper(tiny_llava_dir):
    paper = build_describer(DescriberConfig(preset="llava-next-7b", lvlm=str(tiny_llava_dir)))
    assert (paper.quantization, paper.dtype, paper.use_chat_template) == ("4bit", "fp16", False)
    assert paper.generation.as_dict() == {"max_new_tokens": 150, "do_sample": False}
    plain = build_describer(DescriberConfig(lvlm=str(tiny_llava_dir)))
    assert plain.generation.max_new_tokens == 150 and plain.quantization is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kind": "hf"}, r"describer\.lvlm: kind 'hf' needs lvlm.*--lvlm/--model.*or preset"),
        ({"kind": "openai", "lvlm": "m"}, r"describer\.base_url: kind 'openai' needs base_url \(--base-url\)"),
        ({"kind": "openai", "base_url": "http://x"}, r"describer\.lvlm: kind 'openai' needs base_url"),
        ({"kind": "precomputed"}, r"describer\.descriptions_file: kind 'precomputed' needs it"),
        ({"kind": "precomputed", "descriptions_file": "f", "dtype": "4bit"}, r"describer\.dtype: not used by kind"),
        ({"kind": "openai", "lvlm": "m", "base_url": "u", "min_new_tokens": 2}, r"min_new_tokens: not used by"),
        ({"lvlm": "m", "min_new_tokens": 9, "max_new_tokens": 4}, r"min_new_tokens: 9 exceeds max_new_tokens 4"),
        ({"lvlm": "m", "dtype": "int8"}, r"describer\.dtype: 'int8' is not allowed; allowed values: auto, fp32"),
        ({"lvlm": "m", "prompt": "nope"}, r"describer\.prompt: 'nope' is not allowed; allowed values: paper-v1"),
        ({"kind": "vllm"}, r"describer\.kind: 'vllm' is not allowed; allowed values: hf, openai, precomputed"),
        ({"lvlm": "m", "model": "x"}, r"describer\.model: unknown key; allowed keys here: api_key_env"),
    ],
)
def test_describer_settings_errors_name_the_key(settings, message):
    with pytest.raises(ConfigError, match=message):
        from benchmark.configuration import from_dict

        from_dict(DescriberConfig, settings, "describer")


def test_cli_errors_are_one_line_with_the_flag(tmp_path, caplog):
    from fixtures.tiny_models import make_image_split

    from benchmark.cli import main

    split_dir = make_image_split(tmp_path, n_items=4, n_users=1)
    assert main(["describe", str(split_dir), "--describer", "openai", "--model", "m"]) == 2
    assert "--base-url" in caplog.text
    # a flag the chosen describer ignores is an error, not silently dropped
    refs = tmp_path / "refs.jsonl"
    refs.write_text(json.dumps({"item": "I000", "description": "x"}) + "\n")
    argv = ["describe", str(split_dir), "--describer", "precomputed", "--descriptions-file", str(refs)]
    assert main([*argv, "--dtype", "4bit"]) == 2
    assert "describe.dtype: not used by kind 'precomputed'" in caplog.text
    refs.write_text('{"item": "I000", "descr')
    assert main(argv) == 2
    assert f"{refs}:1: malformed" in caplog.text


def test_precomputed_file_is_looked_up_by_the_caller_and_missing_one_names_the_key(tmp_path):
    refs = tmp_path / "raw" / "captions.jsonl"
    refs.parent.mkdir()
    refs.write_text(json.dumps({"parent_asin": "A", "caption": "a red mug"}) + "\n")
    cfg = DescriberConfig(kind="precomputed", descriptions_file="captions.jsonl")
    d = build_describer(cfg, find_file=lambda p: tmp_path / "raw" / p)
    assert d.texts == {"A": "a red mug"}
    with pytest.raises(ConfigError, match=r"describer\.descriptions_file: descriptions file .* does not exist"):
        build_describer(cfg)
    refs.write_text(json.dumps({"parent_asin": "A"}) + "\n")
    with pytest.raises(BadInputError, match="missing_field: needs an id column"):
        build_describer(cfg, find_file=lambda p: tmp_path / "raw" / p)


def test_encoder_config(tmp_path):
    import open_clip

    from benchmark.configuration import from_dict

    with pytest.raises(ConfigError, match=r"encoder\.pretrained: not used by kind 'minilm'"):
        from_dict(EncoderConfig, {"kind": "minilm", "pretrained": "laion2b"}, "encoder")
    with pytest.raises(ConfigError, match=r"encoder\.kind: 'bert' is not allowed; allowed values: minilm, clip"):
        from_dict(EncoderConfig, {"kind": "bert"}, "encoder")
    cfg = {
        "embed_dim": 8,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 16, "head_width": 8, "patch_size": 16},
        "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
    }
    (tmp_path / "tiny-clip-cfg-test.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "tiny-clip-cfg-test.json")
    enc = build_encoder(EncoderConfig(kind="clip", model="tiny-clip-cfg-test", pretrained="none"), device="cpu")
    assert enc.identity()["pretrained"] is None and enc.encode(["a mug"], progress=False).shape == (1, 8)


def test_producer_params_take_config_objects_and_reject_the_old_flat_keys():
    checked = PRODUCERS.check_params(
        "vlm4rec-text",
        {"describer": {"kind": "precomputed", "descriptions_file": "f.jsonl"}, "encoder": {"kind": "minilm"}},
    )
    assert checked["describer"] == DescriberConfig(kind="precomputed", descriptions_file="f.jsonl")
    assert checked["encoder"] == EncoderConfig(kind="minilm")
    for old in ("model", "preset", "encoder_model", "clip_pretrained", "descriptions"):
        with pytest.raises(ConfigError, match=f"{old}: unknown parameter of feature producer 'vlm4rec-text'"):
            PRODUCERS.check_params("vlm4rec-text", {old: "x"}, "features[0].params")
    with pytest.raises(ConfigError, match=r"features\[0\]\.params\.describer: expected a mapping"):
        PRODUCERS.check_params("vlm4rec-text", {"describer": "hf"}, "features[0].params")


@pytest.mark.parametrize("name", sorted(shipped_configs()))
def test_every_shipped_configs_feature_params_validate(name):
    cfg = load_config(name)
    for i, f in enumerate(cfg.features):
        checked = PRODUCERS.check_params(f.producer, f.params, f"features[{i}].params")
        if f.producer == "vlm4rec-text" and checked.get("describer") is not None:
            d = checked["describer"]
            assert d.kind in ("hf", "precomputed")
            if d.kind == "hf":  # the paper's setting: LLaVA-NeXT 7B, 4-bit, paper prompt, 150 tokens
                assert (d.preset, d.dtype, d.prompt) == ("llava-next-7b", "4bit", "paper-v1")
                assert d.max_new_tokens in (None, 150)
