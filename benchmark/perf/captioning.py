"""Captioning throughput: VLM4Rec's batched HF describer vs the paper's own captioning code.

    python -m benchmark.perf.captioning [--model-dir DIR | --size tiny|7b] [--batch-sizes 1,8,32]
                                        [--dtypes fp16,4bit] [--n-items N] [--max-new-tokens N] [--tiny]

For each dtype it times, in the same run and on the same images and prompts, two references and
ours:

- ``paper-script`` — the paper's setting (tyvalencia/enhancing-mm-rec-sys @ 66d74f0,
  ``scripts/generate_llava_next_summaries.py::generate_batch_summaries``): batches of 8 (its
  ``batch_size`` for 7b), the raw ``[INST] <image>\n… [/INST]`` prompts, ``processor(text=prompts,
  images=images, padding=True)``, greedy ``generate``, ``batch_decode`` of the whole sequences
  and the text after the last ``[/INST]``. Its ``4bit`` row (nf4, double quantisation, fp16
  compute: the script's ``BitsAndBytesConfig``) is the paper's actual configuration, measured
  where bitsandbytes and CUDA are available;
- ``one-item-loop`` — ``processor`` + ``generate`` + decode per item, the slowest sensible way;
- ``vlm4rec-batched`` — our ``vlm4rec.describers.HFDescriber`` at each batch size.

The ``vs paper`` column divides by the ``paper-script`` row of the same dtype. Output length is forced
(``min_new_tokens = max_new_tokens``) so every configuration generates the same number of tokens
and the ratio compares like with like. Reports items/s, generated tokens/s and peak memory
(``torch.cuda.max_memory_allocated`` on a GPU, else the process's peak RSS from ``getrusage``,
which never decreases within a run).

With no ``--model-dir`` it builds a random-weight LLaVA-NeXT of ``--size`` with
:func:`vlm4rec.random_init.build_random_llava_next`: ``7b`` (the llava-hf/llava-v1.6-mistral-7b-hf
architecture, the default on a GPU) or ``tiny`` (the default without CUDA; ``--tiny`` is
``--size tiny``, a CPU smoke run in fp32 where 4-bit is skipped and reported as such). With
lengths fixed, throughput does not depend on the weight values.

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
from typing import Any

import numpy as np
import torch
from PIL import Image

log = logging.getLogger("benchmark.perf.captioning")


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
    """One item at a time, processor → generate → decode (the second reference)."""
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


PAPER_BATCH_SIZE = 8  # generate_llava_next_summaries.py MODEL_CONFIGS["7b"]["batch_size"]


def paper_script(describer, records, max_new_tokens: int, batch_size: int = PAPER_BATCH_SIZE) -> tuple[int, int]:
    """The paper's ``generate_batch_summaries``, step by step, on the loaded model (the reference)."""
    from vlm4rec.prompts import get_prompt

    model, proc = describer.model, describer.processor
    template = get_prompt("paper-v1")
    n_tokens = 0
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        prompts = [template.render(r.fields, raw=True) for r in batch]
        inputs = proc(text=prompts, images=[r.image for r in batch], padding=True, return_tensors="pt")
        inputs.pop("token_type_ids", None)
        inputs = inputs.to(describer.device)
        if model.dtype in (torch.float16, torch.bfloat16):
            inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
        with torch.no_grad():
            outputs = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                min_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=proc.tokenizer.pad_token_id,
            )
        [s.split("[/INST]")[-1].strip() for s in proc.batch_decode(outputs, skip_special_tokens=True)]
        n_tokens += int(outputs.shape[0] * (outputs.shape[1] - inputs["input_ids"].shape[1]))
    return len(records), n_tokens


def describe_batched(d: Any, records: list, batch_size: int) -> int:
    """``d.describe`` over ``records`` in batches of ``batch_size`` (the timed body of the
    ``vlm4rec-batched`` rows here and in :mod:`benchmark.perf.gpu_check`); returns the number of
    generated tokens. ``RuntimeError`` on the first item whose generation failed."""
    n_tok = 0
    for s in range(0, len(records), batch_size):
        res = d.describe(records[s : s + batch_size])
        bad = [r.error for r in res if r.error is not None]  # blank text still counts tokens
        if bad:
            raise RuntimeError(f"generation failed: {bad[0]}")
        n_tok += sum(r.n_new_tokens or 0 for r in res)
    return n_tok


def time_describer(d: Any, records: list, dtype: str, max_new: int, batch_sizes: list[int], cuda: bool) -> list[Result]:
    """The paper's script, the one-item loop, then our batched ``describe`` at each batch size,
    on one loaded describer."""
    d.setup()
    d.describe(records[:1])  # warm-up (kernels, allocator) outside the timings
    results = []
    for method, fn, bs in (("paper-script", paper_script, PAPER_BATCH_SIZE), ("one-item-loop", paper_loop, 1)):
        _reset_peak(cuda)
        t0 = time.perf_counter()
        n, tok = fn(d, records, max_new)
        results.append(Result(method, dtype, bs, time.perf_counter() - t0, n, tok, _peak_mb(cuda)))
    for bs in batch_sizes:
        _reset_peak(cuda)
        t0 = time.perf_counter()
        n_tok = describe_batched(d, records, bs)
        results.append(
            Result("vlm4rec-batched", dtype, bs, time.perf_counter() - t0, len(records), n_tok, _peak_mb(cuda))
        )
    return results


def run(args: argparse.Namespace) -> list[Result]:
    """Build (or load) the model, then time every dtype of ``args.dtypes``."""
    from vlm4rec.describers.hf import HFDescriber, QuantizationUnavailable, bnb_4bit_config
    from vlm4rec.random_init import build_random_llava_next

    cuda = torch.cuda.is_available() and args.size != "tiny"
    tmp = tempfile.TemporaryDirectory(prefix="perf-captioning-")
    if args.model_dir:
        model_dir = Path(args.model_dir)
    else:
        print(f"building a random-weight LLaVA-NeXT of size {args.size} …", flush=True)
        model_dir = build_random_llava_next(Path(tmp.name) / f"llava-next-{args.size}-random", args.size)
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
        results.extend(time_describer(d, records, dtype, max_new, args.batch_sizes, cuda))
        del d
        gc.collect()
        if cuda:
            torch.cuda.empty_cache()
    tmp.cleanup()
    return results


def report(results: list[Result], device: str) -> str:
    lines = [
        f"device: {device}",
        "(paper-script: the paper's generate_batch_summaries, batch 8; its 4bit row is the paper's own setting)",
        f"{'method':<16} {'dtype':<5} {'batch':>5} {'items':>5} {'sec':>8} {'items/s':>9} {'tok/s':>9} "
        f"{'peak MB':>9} {'vs paper':>9}",
    ]
    base = {r.dtype: r for r in results if r.method == "paper-script"}
    for r in results:
        ratio = r.items_per_s / base[r.dtype].items_per_s if r.dtype in base else float("nan")
        lines.append(
            f"{r.method:<16} {r.dtype:<5} {r.batch_size:>5} {r.items:>5} {r.seconds:>8.2f} "
            f"{r.items_per_s:>9.2f} {r.tokens_per_s:>9.1f} {r.peak_mem_mb:>9.0f} {ratio:>8.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from vlm4rec.random_init import SIZES

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model-dir", help="a local image-text-to-text model (default: a random-weight LLaVA-NeXT of --size)"
    )
    p.add_argument(
        "--size", choices=tuple(SIZES), help="random LLaVA-NeXT size (default: 7b on a GPU, tiny without CUDA)"
    )
    p.add_argument("--batch-sizes", default="1,8,32")
    p.add_argument("--dtypes", default="fp16,4bit")
    p.add_argument("--n-items", type=int, default=64)
    p.add_argument("--max-new-tokens", type=int, help="forced output length (default 150; 8 on the tiny model)")
    p.add_argument("--tiny", action="store_true", help="= --size tiny: a CPU smoke run (for tests)")
    args = p.parse_args(argv)
    if args.tiny:
        args.size = "tiny"
    if args.size is None:
        args.size = "7b" if torch.cuda.is_available() else "tiny"
    if args.size != "tiny" and not torch.cuda.is_available() and not args.model_dir:
        p.error(f"--size {args.size} is built in fp16 on a CUDA device; without one use --size tiny")
    args.batch_sizes = [int(x) for x in args.batch_sizes.split(",") if x]
    args.dtypes = [x.strip() for x in args.dtypes.split(",") if x.strip()]
    logging.basicConfig(level=logging.WARNING)
    cuda = torch.cuda.is_available() and args.size != "tiny"
    device = torch.cuda.get_device_name(0) if cuda else f"cpu ({torch.get_num_threads()} threads)"
    results = run(args)
    print(report(results, device))
    return 0


if __name__ == "__main__":
    sys.exit(main())
