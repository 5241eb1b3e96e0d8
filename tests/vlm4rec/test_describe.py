"""Describers, prompts, the description cache and Lightning batch inference (tiny LVLMs, CPU)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from fixtures.tiny_models import make_image_split

from benchmark.split import Split
from vlm4rec.cache import DescriptionCache
from vlm4rec.describers import HFDescriber, PrecomputedDescriber
from vlm4rec.inference import run_describe
from vlm4rec.prompts import PromptFieldError, PromptTemplate, get_prompt, template_from_instruction

REPO = Path(__file__).resolve().parents[2]
PAPER_PROMPT = (
    "[INST] <image>\nDescribe this product in detail for an e-commerce recommendation system. Include: visual "
    "appearance, style, color, materials, design features, and any notable characteristics.\nProduct title: {title}\n"
    "Provide a concise but informative description (2-3 sentences). [/INST]"
)


def test_paper_prompt_is_exact_and_default():
    p = get_prompt("paper-v1")
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
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def n_lines() -> int:
        return sum(p.read_bytes().count(b"\n") for p in cache.glob("*/shard-*.jsonl"))

    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and n_lines() < 1:
        time.sleep(0.02)
    assert proc.poll() is None, "the describe run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
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
    # the paper's literal prompt text, whatever chat template a processor ships
    assert paper.use_chat_template is False
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
