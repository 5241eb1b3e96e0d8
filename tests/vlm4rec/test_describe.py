"""Describers, prompts, the description cache and Lightning batch inference (tiny LVLMs, CPU)."""

from __future__ import annotations

import ast
import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
from fixtures.killing import kill_when
from fixtures.tiny_models import make_image_split

from benchmark.split import Split
from vlm4rec.cache import DescriptionCache
from vlm4rec.describers import HFDescriber, PrecomputedDescriber
from vlm4rec.inference import run_describe
from vlm4rec.prompts import PromptFieldError, PromptTemplate, get_prompt, template_from_instruction

REPO = Path(__file__).resolve().parents[2]
# Copied verbatim from tyvalencia/enhancing-mm-rec-sys @ 66d74f005ce9faaa1d685e5ea75640b9736704f9,
# scripts/generate_llava_next_summaries.py lines 69-72 (generate_batch_summaries), the f-string
# as it stands in the file (its first line ends with "system. " — a space before the line break):
PAPER_SOURCE = '''f"""[INST] <image>\\nDescribe this product in detail for an e-commerce recommendation system. 
Include: visual appearance, style, color, materials, design features, and any notable characteristics.
Product title: {title}
Provide a concise but informative description (2-3 sentences). [/INST]"""'''  # noqa: W291 (the file's own space)
# what that f-string evaluates to, with {title} left as the placeholder
PAPER_PROMPT = ast.literal_eval(PAPER_SOURCE[1:])


def test_paper_prompt_is_exact_and_default():
    p = get_prompt("paper-v1")
    assert "system. \nInclude:" in PAPER_PROMPT and PAPER_PROMPT.startswith("[INST] <image>\nDescribe")
    assert p.raw == PAPER_PROMPT
    assert p.render({"title": "Red Mug"}, raw=True) == PAPER_PROMPT.format(title="Red Mug")
    assert p.fields == ("title",)


def test_prompt_fields_and_unknown_field_error():
    t = template_from_instruction("t", "Title: {title}; brand {brand}; in {categories}")
    row = {"title": "Lamp", "brand": "Acme", "categories": ["Home", "Lighting"]}
    assert t.render(row) == "Title: Lamp; brand Acme; in Home > Lighting"
    bad = PromptTemplate("bad", 1, "Colour: {colour}", "[INST] <image>\n{colour} [/INST]")
    with pytest.raises(PromptFieldError, match="colour.*available"):
        bad.render(row)
    assert bad.sha256 != t.sha256


def _split(tmp_path, **kw) -> Split:
    return Split.load(make_image_split(tmp_path, **kw))


@pytest.mark.slow
def test_tiny_llava_describes_split_with_coverage_and_resume(tmp_path, tiny_llava_dir):
    split = _split(tmp_path, n_items=8, n_users=2, missing=(3,), broken=(5,))
    d = HFDescriber(str(tiny_llava_dir), max_new_tokens=6)
    out = run_describe(
        split.items,
        d,
        tmp_path / "cache",
        tmp_path / "out",
        image_root=tmp_path / "split",
        batch_size=3,
        progress=False,
    )
    assert d.use_chat_template is False  # no chat template: raw prompt text used as-is
    rows = [json.loads(x) for x in out.descriptions_path.read_text().splitlines()]
    assert [r["item_id"] for r in rows] == list(range(8))
    by_item = {r["item"]: r for r in rows}
    assert by_item["I003"]["status"] == "no_image" and by_item["I003"]["action"] == "fallback_title"
    assert by_item["I005"]["status"] == "undecodable_image"
    ok = [r for r in rows if r["status"] == "ok"]
    assert len(ok) == 6 and all(isinstance(r["description"], str) and r["description"] for r in ok)
    assert out.coverage["status_counts"] == {"ok": 6, "no_image": 1, "undecodable_image": 1}
    assert out.n_run == 7
    # every cached success has at most max_new_tokens new tokens
    entries = DescriptionCache(tmp_path / "cache", d.identity()).merged_entries()
    assert all(0 < e["n_new_tokens"] <= 6 for e in entries if e["text"] is not None)
    # resume: nothing left to do, same output
    again = run_describe(
        split.items,
        d,
        tmp_path / "cache",
        tmp_path / "out2",
        image_root=tmp_path / "split",
        batch_size=3,
        progress=False,
        fallback="drop",
    )
    assert again.n_run == 0
    rows2 = [json.loads(x) for x in again.descriptions_path.read_text().splitlines()]
    assert [r["description"] for r in rows2] == [r["description"] for r in rows]
    assert again.coverage["action_counts"] == {"use": 6, "fallback_title": 0, "drop": 2}


def test_tiny_qwen2_vl_uses_chat_template_batched(tmp_path, tiny_qwen_dir):
    split = _split(tmp_path, n_items=4, n_users=1)
    d = HFDescriber(str(tiny_qwen_dir), max_new_tokens=4)
    out = run_describe(
        split.items,
        d,
        tmp_path / "cache",
        tmp_path / "out",
        image_root=tmp_path / "split",
        batch_size=4,
        progress=False,
    )
    assert d.use_chat_template is True
    rec_text = d.text_input(type("R", (), {"fields": {"title": "X"}})())
    assert "<|vision_start|><|image_pad|><|vision_end|>" in rec_text and "Product title: X" in rec_text
    assert out.coverage["status_counts"] == {"ok": 4}


def test_cache_torn_line_detected_ignored_and_repaired(tmp_path):
    c = DescriptionCache(tmp_path, {"describer": "t"})
    c.append(0, [{"key": "a", "item": "A", "text": "x"}, {"key": "b", "item": "B", "text": "y"}])
    with open(c.shard_path(0), "ab") as fh:
        fh.write(b'{"key": "c", "item": "C", "te')  # a write cut short by a kill
    merged, report = c.read()
    assert set(merged) == {"a", "b"} and report.torn == [(c.shard_path(0).name, 3)] and not report.corrupt
    c.append(0, [{"key": "c", "item": "C", "text": "z"}])
    lines = c.shard_path(0).read_bytes().decode().splitlines()
    assert [json.loads(x)["key"] for x in lines] == ["a", "b", "c"]
    merged, report = c.read()
    assert set(merged) == {"a", "b", "c"} and not report.torn


def test_cache_merge_is_deterministic(tmp_path):
    c = DescriptionCache(tmp_path, {"describer": "t"})
    c.append(1, [{"key": "k", "item": "B", "text": None, "error": "boom"}, {"key": "j", "item": "A", "text": "one"}])
    c.append(0, [{"key": "j", "item": "A", "text": "zero"}])
    c.append(2, [{"key": "k", "item": "B", "text": "late success"}])
    merged, report = c.read()
    assert merged["j"]["text"] == "zero"  # first success in shard-name order
    assert merged["k"]["text"] == "late success"  # a success beats an earlier failure
    assert [e["item"] for e in c.merged_entries()] == ["A", "B"]
    assert report.n_duplicates == 0 or report.n_duplicates == 1


def test_precomputed_describer_and_cli(tmp_path, capsys):
    from benchmark.cli import main

    split_dir = make_image_split(tmp_path, n_items=6, n_users=2, missing=(1,))
    refs = tmp_path / "reference_captions.jsonl"
    refs.write_text(
        "".join(
            json.dumps({"parent_asin": f"I{i:03d}", "caption": f"caption {i}", "source": "t"}) + "\n"
            for i in (0, 1, 2, 3)
        )
    )
    assert (
        main(
            [
                "describe",
                str(split_dir),
                "--describer",
                "precomputed",
                "--descriptions-file",
                str(refs),
                "--out",
                str(tmp_path / "d"),
                "--fallback",
                "drop",
                "--no-progress",
            ]
        )
        == 0
    )
    printed = json.loads(capsys.readouterr().out)
    rows = pd.read_json(tmp_path / "d" / "descriptions.jsonl", lines=True)
    # item I001 has no image but the precomputed file needs none
    assert rows.set_index("item").loc["I001", "description"] == "caption 1"
    assert printed["status_counts"] == {"ok": 4, "failed_generation": 2}
    assert printed["action_counts"]["drop"] == 2
    d = PrecomputedDescriber(refs)
    assert d.needs_image is False and d.identity()["file_sha256"]


def test_cli_hf_requires_model(tmp_path):
    from benchmark.cli import main

    split_dir = make_image_split(tmp_path, n_items=4, n_users=1)
    assert main(["describe", str(split_dir), "--describer", "hf"]) == 2


def test_4bit_without_bitsandbytes_is_a_clear_error(monkeypatch):
    import builtins

    from vlm4rec.describers.hf import QuantizationUnavailable, bnb_4bit_config

    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name == "bitsandbytes":
            raise ImportError("No module named 'bitsandbytes'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(QuantizationUnavailable, match=r"vlm4rec-bench\[quant\]"):
        bnb_4bit_config()


@pytest.mark.slow
def test_killed_describe_resumes_exactly_once(tmp_path, tiny_llava_dir):
    n_items = 10
    split_dir = make_image_split(tmp_path, n_items=n_items, n_users=3)
    cache = tmp_path / "cache"
    argv = [
        "describe",
        str(split_dir),
        "--describer",
        "hf",
        "--model",
        str(tiny_llava_dir),
        "--batch-size",
        "1",
        "--max-new-tokens",
        "24",
        "--min-new-tokens",
        "24",
        "--cache",
        str(cache),
        "--out",
        str(tmp_path / "out"),
        "--no-progress",
    ]
    code = f"import sys; from benchmark.cli import main; sys.exit(main({argv!r}))"
    env = dict(os.environ, PYTHONPATH=str(REPO))

    def n_lines() -> int:
        return sum(p.read_bytes().count(b"\n") for p in cache.glob("*/shard-*.jsonl"))

    kill_when([sys.executable, "-c", code], lambda: n_lines() >= 1, env=env, timeout_s=120)
    done_at_kill = n_lines()
    assert 1 <= done_at_kill < n_items
    # resume in-process with the same flags
    from benchmark.cli import main

    assert main(argv) == 0
    shard_lines = [ln for p in sorted(cache.glob("*/shard-*.jsonl")) for ln in p.read_text().splitlines()]
    entries = [json.loads(ln) for ln in shard_lines]  # every line parses: no corrupt line
    items = [e["item"] for e in entries]
    assert sorted(items) == [f"I{i:03d}" for i in range(n_items)]  # each item described exactly once
    rows = pd.read_json(tmp_path / "out" / "descriptions.jsonl", lines=True)
    assert (rows["status"] == "ok").all() and len(rows) == n_items


def test_precomputed_items_sharing_an_image_or_lacking_one_keep_their_own_text(tmp_path):
    """The precomputed text is looked up by item id: two items without an image (or with the same
    image file) must not share one cache entry, or one item's text silently becomes the other's."""
    import shutil

    split_dir = make_image_split(tmp_path, n_items=6, n_users=2, missing=(1, 4))
    split = Split.load(split_dir)
    items = split.items.copy()
    # item I003 points at I000's image file: same bytes, same sha256
    shutil.copy(split_dir / "images" / "I000.png", split_dir / "images" / "I003.png")
    refs = tmp_path / "refs.jsonl"
    refs.write_text("".join(json.dumps({"item": f"I{i:03d}", "description": f"caption {i}"}) + "\n" for i in range(6)))
    out = run_describe(
        items,
        PrecomputedDescriber(refs),
        tmp_path / "cache",
        tmp_path / "out",
        image_root=split_dir,
        batch_size=2,
        progress=False,
    )
    rows = {json.loads(x)["item"]: json.loads(x)["description"] for x in out.descriptions_path.read_text().splitlines()}
    assert rows == {f"I{i:03d}": f"caption {i}" for i in range(6)}
    assert out.n_run == 6


def test_preset_is_the_paper_setting_and_an_explicit_dtype_replaces_4bit(tiny_llava_dir):
    from benchmark.cli import build_parser
    from vlm4rec.cli import describer_config
    from vlm4rec.config import build_describer

    paper = HFDescriber.from_preset("llava-next-7b", model=str(tiny_llava_dir))
    assert (paper.quantization, paper.dtype, paper.generation.as_dict()) == (
        "4bit",
        "fp16",
        {"max_new_tokens": 150, "do_sample": False},
    )
    # the paper's literal prompt text, whatever chat template a processor ships, and its output rule
    assert paper.use_chat_template is False
    assert paper.output == "after-last-inst" and paper.identity()["output"] == "after-last-inst"
    assert "output" not in HFDescriber(str(tiny_llava_dir)).identity()  # other describers keep their cache keys
    parser = build_parser()

    def built(*extra):
        return build_describer(
            describer_config(
                parser.parse_args(
                    ["describe", "x", "--preset", "llava-next-7b", "--model", str(tiny_llava_dir), *extra]
                )
            )
        )

    assert (built().quantization, built().dtype) == ("4bit", "fp16")
    assert (built("--dtype", "4bit").quantization, built("--dtype", "4bit").dtype) == ("4bit", "fp16")
    # what the missing-bitsandbytes error tells the user to do must give a plain fp16 model
    assert (built("--dtype", "fp16").quantization, built("--dtype", "fp16").dtype) == (None, "fp16")
    assert (built("--dtype", "bf16").quantization, built("--dtype", "bf16").dtype) == (None, "bf16")
    assert built("--chat-template", "yes").use_chat_template is True
    # the runner's producer passes dtype="auto": that keeps the preset (4-bit)
    assert HFDescriber.from_preset("llava-next-7b", model=str(tiny_llava_dir), dtype="auto").quantization == "4bit"


def test_auto_dtype_is_resolved_into_the_cache_identity(tiny_llava_dir):
    """fp16 (GPU) and fp32 (CPU) greedy outputs differ, so ``auto`` must not key both alike."""
    cpu = HFDescriber(str(tiny_llava_dir), dtype="auto", device="cpu")
    assert cpu.identity()["dtype"] == "fp32"
    assert HFDescriber(str(tiny_llava_dir), dtype="auto", device="cuda:0").identity()["dtype"] == "fp16"
    assert HFDescriber(str(tiny_llava_dir), quantization="4bit").identity()["dtype"] == "fp16"
    assert cpu.identity() != HFDescriber(str(tiny_llava_dir), dtype="fp16", device="cpu").identity()


def test_after_last_inst_is_the_papers_output_rule():
    """generate_llava_next_summaries.py line 95: ``summary.split("[/INST]")[-1].strip()``."""
    from vlm4rec.describers.hf import after_last_inst

    assert after_last_inst("[INST] \nDescribe … (2-3 sentences). [/INST] A red mug. ") == "A red mug."
    assert after_last_inst("[INST] x [/INST] A mug [/INST] with a handle") == "with a handle"
    assert after_last_inst("no marker at all ") == "no marker at all"


@pytest.mark.slow
def test_paper_output_rule_on_a_tiny_llava(tmp_path, tiny_llava_dir):
    """The describer with the paper's settings gives what the paper's ``generate_batch_summaries``
    (generate_llava_next_summaries.py lines 66-98) gives, written out here step by step: the raw
    prompts, ``processor(text=prompts, images=images, padding=True)``, greedy ``generate``,
    ``batch_decode(outputs, skip_special_tokens=True)`` of the *whole* sequences, text after the
    last "[/INST]". The tiny model's word-piece tokenizer gets "[INST]"/"[/INST]" as plain tokens
    so that decoding gives them back as written, as Mistral's does; on it, decoding the new tokens
    alone differs (a word piece "##x" right after "[/INST]"), which is why the rule is kept."""
    import shutil

    import torch
    from tokenizers import AddedToken
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from vlm4rec.inference import ItemDataset, plan_items

    model_dir = tmp_path / "llava-inst"
    shutil.copytree(tiny_llava_dir, model_dir)
    proc = AutoProcessor.from_pretrained(model_dir)
    proc.tokenizer.add_tokens([AddedToken(t, normalized=False) for t in ("[INST]", "[/INST]")])
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    model.resize_token_embeddings(len(proc.tokenizer))
    proc.save_pretrained(model_dir)
    model.save_pretrained(model_dir)

    split = _split(tmp_path, n_items=4, n_users=2)
    d = HFDescriber(str(model_dir), max_new_tokens=5, use_chat_template=False, output="after-last-inst", device="cpu")
    plans = plan_items(split.items, d, DescriptionCache(tmp_path / "c", d.identity()), tmp_path / "split")
    records = [ItemDataset(plans)[i] for i in range(len(plans))]
    ours = [r.text for r in d.describe(records)]

    # the paper's steps, on the same loaded model and processor
    prompts = [get_prompt("paper-v1").render(r.fields, raw=True) for r in records]
    assert all(p.startswith("[INST] <image>\nDescribe") for p in prompts)
    inputs = d.processor(text=prompts, images=[r.image for r in records], padding=True, return_tensors="pt")
    inputs.pop("token_type_ids", None)
    with torch.no_grad():
        outputs = d.model.generate(
            **inputs, max_new_tokens=5, do_sample=False, pad_token_id=d.processor.tokenizer.pad_token_id
        )
    summaries = d.processor.batch_decode(outputs, skip_special_tokens=True)
    assert ours == [summary.split("[/INST]")[-1].strip() for summary in summaries]
