"""VLM4Rec's subcommands for ``vlm4rec-bench`` (``vlm4rec_bench.commands`` entry point).

``describe SPLIT_DIR``: caption the split's catalogue (resumable, multi-GPU through Lightning),
writing ``descriptions.jsonl`` and ``coverage.json``.
``encode SPLIT_DIR``: embed the chosen text of every item into ``ItemFeatures`` (safetensors).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add VLM4Rec's subcommands."""
    from vlm4rec.describers.hf import PRESETS
    from vlm4rec.prompts import DEFAULT_PROMPT, PROMPTS
    from vlm4rec.texts import TEXT_CHOICES

    d = subparsers.add_parser("describe", help="describe item images with an LVLM (VLM4Rec step 1)")
    d.add_argument("split_dir", type=Path, help="a prepared split directory")
    d.add_argument("--describer", choices=("hf", "openai", "precomputed"), default="hf")
    d.add_argument("--model", help="hf: local directory or hub id; openai: served model name")
    d.add_argument("--preset", choices=sorted(PRESETS), help="hf: the paper's llava-next-7b or qwen2.5-vl-7b")
    d.add_argument("--revision", help="hf: hub revision")
    d.add_argument("--prompt", choices=sorted(PROMPTS), default=DEFAULT_PROMPT)
    d.add_argument(
        "--dtype", choices=("auto", "fp32", "fp16", "bf16", "4bit"), help="hf: weights dtype or 4bit (bitsandbytes)"
    )
    d.add_argument("--max-new-tokens", type=int, help="default 150 (the paper)")
    d.add_argument("--min-new-tokens", type=int)
    d.add_argument(
        "--chat-template",
        choices=("auto", "yes", "no"),
        default="auto",
        help="hf: use the processor's chat template (auto: when it has one)",
    )
    d.add_argument("--descriptions-file", type=Path, help="precomputed: JSONL/Parquet of (item, description)")
    d.add_argument("--base-url", help="openai: e.g. http://127.0.0.1:8000/v1")
    d.add_argument("--api-key-env", default="OPENAI_API_KEY", help="openai: environment variable holding the key")
    d.add_argument(
        "--concurrency",
        type=int,
        default=8,
        help="openai: requests in flight (at most --batch-size: each batch is sent, then awaited)",
    )
    d.add_argument("--timeout", type=float, default=60.0, help="openai: seconds per request")
    d.add_argument("--retries", type=int, default=4, help="openai: retries on timeout/429/5xx")
    d.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="items per batch (per GPU for hf; for openai also the most requests in flight)",
    )
    d.add_argument("--devices", default="1", help="devices per node (an int, or 'auto')")
    d.add_argument("--num-nodes", type=int, default=1)
    d.add_argument("--accelerator", default="auto")
    d.add_argument("--num-workers", type=int, default=0, help="image-loading workers")
    d.add_argument("--cache", type=Path, help="description cache root (default: <split>/../cache/descriptions)")
    d.add_argument("--out", type=Path, help="where descriptions.jsonl/coverage.json go (default: in the cache entry)")
    d.add_argument("--image-root", type=Path, help="base for relative image paths (default: the split directory)")
    d.add_argument(
        "--fallback",
        choices=("title", "drop"),
        default="title",
        help="items without a description: embed the title alone, or drop (no feature)",
    )
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=cmd_describe)

    e = subparsers.add_parser("encode", help="embed item texts into ItemFeatures (VLM4Rec step 2)")
    e.add_argument("split_dir", type=Path)
    e.add_argument(
        "--descriptions",
        type=Path,
        help="descriptions.jsonl from `describe`, or any JSONL/Parquet of (item, description)",
    )
    e.add_argument("--encoder", choices=("minilm", "clip"), default="minilm")
    e.add_argument("--encoder-model", help="sentence-transformers model (minilm) or open_clip architecture (clip)")
    e.add_argument("--clip-pretrained", default="openai", help="open_clip pretrained tag; 'none' for random weights")
    e.add_argument("--text", choices=TEXT_CHOICES, default="title+description")
    e.add_argument("--fallback", choices=("title", "drop"), default="title", help="items absent from --descriptions")
    e.add_argument("--name", default="text", help="feature name")
    e.add_argument("--out", type=Path, required=True, help="directory for <name>.safetensors/.json")
    e.add_argument("--cache", type=Path, help="embedding cache root (default: <split>/../cache/embeddings)")
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--device")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=cmd_encode)


def _load_split(path: Path):
    from benchmark.errors import CliError
    from benchmark.split import Split

    try:
        return Split.load(path)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from exc


def build_describer(args: argparse.Namespace):
    """The describer the flags ask for (errors the user can fix are CliErrors)."""
    from benchmark.errors import CliError
    from vlm4rec.describers import HFDescriber, OpenAIDescriber, PrecomputedDescriber
    from vlm4rec.describers.hf import PRESETS

    if args.describer == "precomputed":
        if not args.descriptions_file:
            raise CliError("--describer precomputed needs --descriptions-file")
        try:
            return PrecomputedDescriber(args.descriptions_file, prompt=args.prompt)
        except (FileNotFoundError, ValueError) as exc:
            raise CliError(str(exc)) from exc
    if args.describer == "openai":
        if not args.base_url or not args.model:
            raise CliError("--describer openai needs --base-url and --model")
        return OpenAIDescriber(
            args.base_url,
            args.model,
            prompt=args.prompt,
            api_key_env=args.api_key_env,
            max_new_tokens=args.max_new_tokens or 150,
            max_concurrency=args.concurrency,
            timeout=args.timeout,
            max_retries=args.retries,
        )
    if not args.model and not args.preset:
        raise CliError("--describer hf needs --model PATH_OR_ID or --preset (" + ", ".join(sorted(PRESETS)) + ")")
    quant = None
    dtype = args.dtype
    if dtype == "4bit":
        quant, dtype = "4bit", "fp16"
    chat = {"auto": None, "yes": True, "no": False}[args.chat_template]
    kw = dict(
        prompt=args.prompt,
        revision=args.revision,
        max_new_tokens=args.max_new_tokens,
        min_new_tokens=args.min_new_tokens,
        use_chat_template=chat,
    )
    if args.preset:
        if dtype is not None:
            kw.update(dtype=dtype, quantization=quant)
        return HFDescriber.from_preset(args.preset, model=args.model, **kw)
    kw["max_new_tokens"] = kw["max_new_tokens"] or 150
    return HFDescriber(args.model, dtype=dtype or "auto", quantization=quant, **kw)


def cmd_describe(args: argparse.Namespace) -> int:
    from benchmark.errors import CliError
    from vlm4rec.inference import run_describe
    from vlm4rec.prompts import PromptFieldError

    split = _load_split(args.split_dir)
    describer = build_describer(args)
    cache_root = args.cache or args.split_dir.resolve().parent / "cache" / "descriptions"
    from vlm4rec.cache import identity_hash

    out = args.out or Path(cache_root) / identity_hash(describer.identity())[:20] / f"split-{split.fingerprint[:12]}"
    devices: int | str = int(args.devices) if str(args.devices).lstrip("-").isdigit() else args.devices
    try:
        outcome = run_describe(
            split.items,
            describer,
            cache_root,
            out,
            image_root=args.image_root or args.split_dir,
            batch_size=args.batch_size,
            devices=devices,
            accelerator=args.accelerator,
            num_nodes=args.num_nodes,
            num_workers=args.num_workers,
            fallback=args.fallback,
            split_fingerprint=split.fingerprint,
            progress=not args.no_progress,
        )
    except PromptFieldError as exc:
        raise CliError(str(exc)) from exc
    if outcome is not None:
        cov = outcome.coverage
        print(
            json.dumps(
                {
                    "descriptions": str(outcome.descriptions_path),
                    "coverage": str(outcome.coverage_path),
                    "n_items": cov["n_items"],
                    "status_counts": cov["status_counts"],
                    "action_counts": cov["action_counts"],
                    "described_this_run": outcome.n_run,
                },
                indent=2,
            )
        )
    return 0


def cmd_encode(args: argparse.Namespace) -> int:
    from benchmark.errors import CliError
    from vlm4rec.describers.precomputed import read_description_table
    from vlm4rec.encoders import encode_items, make_encoder
    from vlm4rec.texts import NO_DESCRIPTION_NEEDED

    split = _load_split(args.split_dir)
    descriptions = None
    if args.descriptions:
        try:
            descriptions = read_description_table(args.descriptions)
        except (FileNotFoundError, ValueError) as exc:
            raise CliError(str(exc)) from exc
    elif args.text not in NO_DESCRIPTION_NEEDED:
        raise CliError(f"--text {args.text} needs --descriptions (without them: {', '.join(NO_DESCRIPTION_NEEDED)})")
    extra = {}
    if args.encoder == "clip":
        pre = None if args.clip_pretrained.lower() == "none" else args.clip_pretrained
        extra["pretrained"] = pre
    encoder = make_encoder(args.encoder, args.encoder_model, device=args.device, **extra)
    cache = args.cache or args.split_dir.resolve().parent / "cache" / "embeddings"
    feats = encode_items(
        split.items,
        descriptions,
        encoder,
        text=args.text,
        fallback=args.fallback,
        name=args.name,
        cache_dir=cache,
        batch_size=args.batch_size,
        progress=not args.no_progress,
        split_fingerprint=split.fingerprint,
        extra_provenance={"descriptions_file": str(args.descriptions) if args.descriptions else None},
    )
    path = feats.save(args.out)
    print(
        json.dumps(
            {
                "features": str(path),
                "n_items": feats.n_items,
                "dim": feats.dim,
                "coverage": feats.coverage,
                "counts": feats.provenance.get("counts"),
            },
            indent=2,
        )
    )
    return 0
