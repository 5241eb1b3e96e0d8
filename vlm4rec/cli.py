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
    _add_describe(subparsers)
    _add_encode(subparsers)


def _add_describe(subparsers: argparse._SubParsersAction) -> None:
    """``describe``: the describer flags are :class:`~vlm4rec.config.DescriberConfig`'s fields."""
    from vlm4rec.config import CHAT_TEMPLATE, DESCRIBER_KINDS, DTYPE_CHOICES, DescriberConfig
    from vlm4rec.describers.presets import PRESETS
    from vlm4rec.prompts import PROMPTS
    from vlm4rec.selection import SELECTIONS
    from vlm4rec.texts import FALLBACKS

    D = DescriberConfig
    d = subparsers.add_parser("describe", help="describe item images with an LVLM (VLM4Rec step 1)")
    d.add_argument("split_dir", type=Path, help="a prepared split directory")
    d.add_argument("--describer", choices=DESCRIBER_KINDS, default=D.kind, help="the describer kind")
    d.add_argument("--lvlm", "--model", dest="lvlm", help="hf: local directory or hub id; openai: served model name")
    d.add_argument("--preset", choices=sorted(PRESETS), help="hf: the paper's llava-next-7b or qwen2.5-vl-7b")
    d.add_argument("--revision", help="hf: hub revision")
    d.add_argument("--prompt", choices=sorted(PROMPTS), default=D.prompt)
    d.add_argument("--dtype", choices=DTYPE_CHOICES, help="hf: weights dtype or 4bit (bitsandbytes)")
    d.add_argument("--max-new-tokens", type=int, help="default 150 (the paper)")
    d.add_argument("--min-new-tokens", type=int)
    d.add_argument(
        "--chat-template",
        choices=tuple(CHAT_TEMPLATE),
        default=D.chat_template,
        help="hf: use the processor's chat template (auto: when it has one)",
    )
    d.add_argument("--descriptions-file", type=Path, help="precomputed: JSONL/Parquet of (item, description)")
    d.add_argument("--base-url", help="openai: e.g. http://127.0.0.1:8000/v1")
    d.add_argument("--api-key-env", default=D.api_key_env, help="openai: environment variable holding the key")
    d.add_argument(
        "--concurrency",
        type=int,
        default=D.concurrency,
        help="openai: requests in flight (at most --batch-size: each batch is sent, then awaited)",
    )
    d.add_argument(
        "--timeout", type=float, default=D.timeout, help="openai: total seconds per request (a deadline, not per read)"
    )
    d.add_argument("--retries", type=int, default=D.retries, help="openai: retries on timeout/429/5xx")
    d.add_argument(
        "--batch-size",
        type=int,
        default=8,
        help="items per batch (per GPU for hf; for openai also the most requests in flight)",
    )
    _add_parallel(d)
    d.add_argument("--num-workers", type=int, default=0, help="image-loading workers")
    d.add_argument("--cache", type=Path, help="description cache root (default: <split>/../cache/descriptions)")
    d.add_argument("--out", type=Path, help="where descriptions.jsonl/coverage.json go (default: in the cache entry)")
    d.add_argument(
        "--image-root",
        type=Path,
        help="base for relative image paths (default: the split directory); local image paths outside it and the "
        "split directory are refused (status outside_root)",
    )
    d.add_argument(
        "--fallback",
        choices=FALLBACKS,
        default="title",
        help="items without a description: embed the title alone, or drop (no feature)",
    )
    d.add_argument(
        "--select",
        choices=SELECTIONS,
        default=D.select,
        help="which items: all, or paper-priority (the paper's subset: 0.7 popularity + 0.3 recency in train)",
    )
    d.add_argument("--max-items", type=int, help="describe at most this many items (the paper's --max-items)")
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=cmd_describe)


def _add_parallel(p: argparse.ArgumentParser) -> None:
    """The Lightning settings that spread describe/encode over several processes."""
    p.add_argument("--devices", default="1", help="devices (processes) per node: an int, or 'auto'")
    p.add_argument("--num-nodes", type=int, default=1)
    p.add_argument("--accelerator", default="auto")
    p.add_argument(
        "--strategy",
        help="Lightning strategy with several processes (default ddp: re-runs this command per rank, "
        "or joins the ranks torchrun started)",
    )


def _devices(args: argparse.Namespace) -> int | str:
    return int(args.devices) if str(args.devices).lstrip("-").isdigit() else args.devices


def _add_encode(subparsers: argparse._SubParsersAction) -> None:
    """``encode``: ``--encoder``/``--encoder-model``/``--clip-pretrained`` are :class:`~vlm4rec.config.EncoderConfig`."""
    from vlm4rec.config import EncoderConfig
    from vlm4rec.encoders import ENCODERS
    from vlm4rec.texts import FALLBACKS, TEXT_CHOICES

    e = subparsers.add_parser("encode", help="embed item texts into ItemFeatures (VLM4Rec step 2)")
    e.add_argument("split_dir", type=Path)
    e.add_argument(
        "--descriptions",
        type=Path,
        help="descriptions.jsonl from `describe`, or any JSONL/Parquet of (item, description)",
    )
    e.add_argument("--encoder", choices=ENCODERS, default=EncoderConfig.kind)
    e.add_argument("--encoder-model", help="sentence-transformers model (minilm) or open_clip architecture (clip)")
    e.add_argument(
        "--clip-pretrained",
        default=EncoderConfig.pretrained,
        help="open_clip pretrained tag; 'none' for random weights",
    )
    e.add_argument("--text", choices=TEXT_CHOICES, default="title+description")
    e.add_argument("--fallback", choices=FALLBACKS, default="title", help="items absent from --descriptions")
    e.add_argument("--name", default="text", help="feature name")
    e.add_argument("--out", type=Path, required=True, help="directory for <name>.safetensors/.json")
    e.add_argument("--cache", type=Path, help="embedding cache root (default: <split>/../cache/embeddings)")
    e.add_argument("--batch-size", type=int, default=64)
    e.add_argument("--device", help="one process: where the encoder runs (with --devices N each rank uses its own)")
    _add_parallel(e)
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=cmd_encode)


def _load_split(path: Path):
    from benchmark.errors import CliError
    from benchmark.split import Split

    try:
        return Split.load(path)
    except (FileNotFoundError, ValueError) as exc:
        raise CliError(str(exc)) from exc


def describer_config(args: argparse.Namespace):
    """The :class:`~vlm4rec.config.DescriberConfig` the ``describe`` flags ask for."""
    from vlm4rec.config import DescriberConfig

    return DescriberConfig(
        kind=args.describer,
        lvlm=args.lvlm,
        preset=args.preset,
        revision=args.revision,
        prompt=args.prompt,
        dtype=args.dtype,
        max_new_tokens=args.max_new_tokens,
        min_new_tokens=args.min_new_tokens,
        chat_template=args.chat_template,
        base_url=args.base_url,
        api_key_env=args.api_key_env,
        concurrency=args.concurrency,
        timeout=args.timeout,
        retries=args.retries,
        descriptions_file=str(args.descriptions_file) if args.descriptions_file else None,
        select=args.select,
        max_items=args.max_items,
    )


def encoder_config(args: argparse.Namespace):
    """The :class:`~vlm4rec.config.EncoderConfig` the ``encode`` flags ask for."""
    from vlm4rec.config import EncoderConfig

    return EncoderConfig(kind=args.encoder, model=args.encoder_model, pretrained=args.clip_pretrained)


def cmd_describe(args: argparse.Namespace) -> int:
    """``describe``: caption the split's items (resumable) and print the coverage summary."""
    from benchmark.errors import CliError
    from vlm4rec.cache import identity_hash
    from vlm4rec.config import build_describer, build_selection
    from vlm4rec.inference import output_folder, run_describe
    from vlm4rec.prompts import PromptFieldError

    split = _load_split(args.split_dir)
    cfg = describer_config(args)
    describer = build_describer(cfg, where="describe")
    selection = build_selection(cfg)
    cache_root = args.cache or args.split_dir.resolve().parent / "cache" / "descriptions"
    out = args.out or Path(cache_root) / identity_hash(describer.identity())[:20] / output_folder(split, selection)
    devices = _devices(args)
    try:
        outcome = run_describe(
            split.items,
            describer,
            cache_root,
            out,
            image_root=args.image_root or args.split_dir,
            image_roots=[args.split_dir],  # local image paths must stay inside these (and --image-root)
            batch_size=args.batch_size,
            devices=devices,
            accelerator=args.accelerator,
            num_nodes=args.num_nodes,
            strategy=args.strategy,
            num_workers=args.num_workers,
            fallback=args.fallback,
            split_fingerprint=split.fingerprint,
            progress=not args.no_progress,
            selection=selection,
            train=split.train,
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
    """``encode``: embed the chosen text of every item and save the features."""
    from benchmark.errors import CliError
    from vlm4rec.config import build_encoder
    from vlm4rec.describers.precomputed import read_description_table
    from vlm4rec.encoders import encode_items
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
    encoder = build_encoder(encoder_config(args), device=args.device)
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
        devices=_devices(args),
        num_nodes=args.num_nodes,
        strategy=args.strategy,
        accelerator=args.accelerator,
    )
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized() and dist.get_rank() != 0:
        return 0  # every rank holds the vectors; rank 0 saves them
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
