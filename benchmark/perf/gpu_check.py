"""The GPU numbers of the README in one run of under 8 minutes (an H200-class machine).

    python -m benchmark.perf.gpu_check [--out results.json] [--budget-s 450]
    python -m benchmark.perf.gpu_check --smoke          # the same steps at CPU size (tests)

1. **Evaluator at 1M users × 200k items** on the GPU (:mod:`benchmark.perf.evaluation`'s
   integer-id problem, 64-d factors, K = 10/20/50): ours and the floor (matmul + mask + top-K),
   seconds and peak GPU memory of the evaluation itself.
2. **Captioning** with the full-size LLaVA-NeXT-7B architecture and random weights
   (:func:`vlm4rec.random_init.build_random_llava_next`, ``7b``), output forced to 150 tokens:
   the paper's one-item loop, then VLM4Rec's batched describer at batch 1, 8 and 32, in fp16 and —
   when ``bitsandbytes`` imports — 4-bit NF4. Items/s, generated tokens/s, peak GPU memory, the
   speed-up over the one-item loop and the projected time for the 38,493-item Clothing catalogue.
   Item counts per configuration are small (``--loop-items``, ``--items``) so the whole run fits
   the budget; 4-bit is skipped, and said so, when the budget is nearly spent.

Every step reports its own failure and the run goes on, so one problem does not cost the
others. ``--out`` writes everything as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

CLOTHING_ITEMS = 38_493
#: per batch size, how many items are described (enough batches to time, few enough to fit 8 min)
ITEMS_PER_BATCH_SIZE = {1: 6, 8: 32, 32: 64}
SMOKE_ITEMS = {1: 2, 2: 4}


def evaluator_step(n_users: int, n_items: int, device: str, batch_size: int) -> dict[str, Any]:
    """Ours and the floor on one integer-id problem (see :mod:`benchmark.perf.evaluation`)."""
    from benchmark.perf.evaluation import floor_and_ours, make_problem_ids

    t0 = time.perf_counter()
    split, U, V = make_problem_ids(n_users, n_items, 64, seed=0, device=device)
    built = time.perf_counter() - t0
    t_floor, t_ours, res, peak = floor_and_ours(split, U, V, (10, 20, 50), batch_size, cuda=device.startswith("cuda"))
    return {
        "users": n_users,
        "items": n_items,
        "evaluated_users": res.n_users,
        "batch_size": batch_size,
        "build_s": built,
        "ours_s": t_ours,
        "floor_s": t_floor,
        "ours_over_floor": t_ours / t_floor,
        "eval_peak_gpu_mib": float("nan") if peak is None else peak,
        "recall@20": res.means()["recall@20"],
    }


def caption_config(
    model_dir: Path, dtype: str, device: str, max_new: int, items: dict[int, int], loop_items: int
) -> list[dict[str, Any]]:
    """The paper's loop and our batched describer at each batch size, for one dtype."""
    from benchmark.perf.captioning import describe_batched, make_records, paper_loop
    from vlm4rec.describers.hf import HFDescriber

    cuda = device.startswith("cuda")
    size = (640, 480) if cuda else (48, 40)
    records = make_records(max([loop_items, *items.values()]), size)
    quant = "4bit" if dtype == "4bit" else None
    d: Any = HFDescriber(
        str(model_dir),
        quantization=quant,
        dtype="fp16" if quant else dtype,
        max_new_tokens=max_new,
        min_new_tokens=max_new,
        device=device,
    )
    t0 = time.perf_counter()
    d.setup()
    load_s = time.perf_counter() - t0
    d.describe(records[:1])  # warm-up: kernels and allocator outside the timings
    rows = []

    def timed(method: str, batch: int, n: int, run: Any) -> None:
        if cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        n_tokens = run()
        if cuda:
            torch.cuda.synchronize()
        sec = time.perf_counter() - t
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
        rows.append(
            {
                "method": method,
                "dtype": dtype,
                "batch_size": batch,
                "items": n,
                "seconds": sec,
                "items_per_s": n / sec,
                "tokens_per_s": n_tokens / sec,
                "peak_gpu_mib": peak,
                "load_s": load_s,
            }
        )
        print(
            f"  {method:<16} {dtype:<5} batch {batch:>3}: {n / sec:7.3f} items/s, {n_tokens / sec:8.1f} tok/s",
            flush=True,
        )

    timed("paper-loop", 1, loop_items, lambda: paper_loop(d, records[:loop_items], max_new)[1])
    for bs, n in items.items():
        timed("vlm4rec-batched", bs, n, lambda bs=bs, recs=records[:n]: describe_batched(d, recs, bs))
    loop = rows[0]["items_per_s"]
    for r in rows:
        r["speedup_vs_loop"] = r["items_per_s"] / loop
        r["projected_clothing_h"] = CLOTHING_ITEMS / r["items_per_s"] / 3600
    d = None  # the model goes before the next dtype's is loaded
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    return rows


def captioning_step(args: argparse.Namespace, device: str, t_start: float) -> dict[str, Any]:
    from vlm4rec.random_init import build_random_llava_next

    out: dict[str, Any] = {"rows": [], "skipped": {}}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        t0 = time.perf_counter()
        model_dir = build_random_llava_next(Path(tmp) / "llava", "tiny" if args.smoke else "7b")
        out["build_s"] = time.perf_counter() - t0
        dtypes = ["fp32"] if args.smoke else ["fp16", "4bit"]
        for dtype in dtypes:
            if dtype == "4bit":
                reason = _no_4bit(device)
                if reason is None and time.perf_counter() - t_start > args.budget_s * 0.55:
                    reason = f"time budget: {time.perf_counter() - t_start:.0f} s of {args.budget_s} s used"
                if reason is not None:
                    out["skipped"]["4bit"] = reason
                    print(f"SKIPPED 4-bit: {reason}", flush=True)
                    continue
            try:
                out["rows"] += caption_config(
                    model_dir, dtype, device, args.max_new_tokens, args.items, args.loop_items
                )
            except Exception as exc:  # report and go on: the other dtype may still run
                out["skipped"][dtype] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
    return out


def _no_4bit(device: str) -> str | None:
    if not device.startswith("cuda"):
        return "4-bit needs CUDA"
    try:
        import bitsandbytes  # noqa: F401
    except Exception as exc:  # not installed, or no usable binary for this GPU
        return f"bitsandbytes unavailable ({type(exc).__name__}: {exc})"
    return None


def print_summary(result: dict[str, Any]) -> None:
    print(f"\ndevice: {result['device']}")
    ev = result.get("evaluator")
    if isinstance(ev, dict) and "ours_s" in ev:
        print(
            f"evaluator {ev['users']:,} users x {ev['items']:,} items (batch {ev['batch_size']}): ours {ev['ours_s']:.2f} s, "
            f"floor {ev['floor_s']:.2f} s ({ev['ours_over_floor']:.2f}x), peak GPU memory of the evaluation "
            f"{ev['eval_peak_gpu_mib']:.0f} MiB"
        )
    rows = result.get("captioning", {}).get("rows", [])
    if rows:
        print(
            f"{'method':<16} {'dtype':<5} {'batch':>5} {'items':>5} {'items/s':>9} {'tok/s':>9} {'peak MiB':>9} "
            f"{'vs loop':>8} {'38,493 items':>13}"
        )
        for r in rows:
            print(
                f"{r['method']:<16} {r['dtype']:<5} {r['batch_size']:>5} {r['items']:>5} {r['items_per_s']:>9.3f} "
                f"{r['tokens_per_s']:>9.1f} {r['peak_gpu_mib']:>9.0f} {r['speedup_vs_loop']:>7.2f}x "
                f"{r['projected_clothing_h']:>11.2f} h"
            )
    for what, why in result.get("captioning", {}).get("skipped", {}).items():
        print(f"captioning {what}: skipped ({why})")
    print(f"total {result['seconds']:.0f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="CPU-size run of every step (tiny model, small problem)")
    p.add_argument("--out", type=Path, help="write the results as JSON")
    p.add_argument("--budget-s", type=float, default=450.0, help="4-bit is skipped once 55%% of this is used")
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--n-items", type=int, default=200_000, help="evaluator catalogue size")
    p.add_argument("--eval-batch-size", type=int, default=4096)
    p.add_argument("--max-new-tokens", type=int, default=150)
    p.add_argument("--loop-items", type=int, default=6, help="items for the one-item loop")
    args = p.parse_args(argv)
    args.items = dict(ITEMS_PER_BATCH_SIZE)
    cuda = torch.cuda.is_available() and not args.smoke
    if args.smoke:
        args.users, args.n_items, args.eval_batch_size = 2000, 1000, 512
        args.max_new_tokens, args.loop_items, args.items = 3, 2, dict(SMOKE_ITEMS)
    elif not cuda:
        p.error("no CUDA device: run with --smoke for the CPU-size path")
    device = "cuda" if cuda else "cpu"
    t_start = time.perf_counter()
    result: dict[str, Any] = {"device": torch.cuda.get_device_name(0) if cuda else "cpu (smoke)"}
    for name, step in (
        ("evaluator", lambda: evaluator_step(args.users, args.n_items, device, args.eval_batch_size)),
        ("captioning", lambda: captioning_step(args, device, t_start)),
    ):
        print(f"== {name}", flush=True)
        try:
            result[name] = step()
        except Exception as exc:
            result[name] = {"error": f"{type(exc).__name__}: {exc}"}
            traceback.print_exc()
        print(json.dumps(result[name], default=float)[:2000], flush=True)
    result["seconds"] = time.perf_counter() - t_start
    print_summary(result)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
