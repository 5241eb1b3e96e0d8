"""Hugging Face transformers describer: any ``AutoModelForImageTextToText`` + ``AutoProcessor``.

Prompts go through the processor's chat template when it has one (a user turn with the image
and the template's instruction), otherwise the template's raw text is used as-is (its
``<image>`` placeholder replaced by the processor's image token). Generation is batched with
left padding. The output is the decoded new tokens (``output="new-tokens"``), or — the paper's
rule, ``output="after-last-inst"`` (``scripts/generate_llava_next_summaries.py`` line 95:
``summary.split("[/INST]")[-1].strip()``) — the text after the last ``[/INST]`` of the whole
decoded sequence, which differs when the generation itself writes ``[/INST]``.

4-bit loading (the paper's nf4 + double quantisation, fp16 compute) needs the optional
``quant`` extra (bitsandbytes); it is imported only when asked for.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmark.errors import BenchError
from vlm4rec.describers.base import Describer
from vlm4rec.describers.presets import DTYPES, OUTPUT_RULES, PRESETS, HFPreset  # noqa: F401 - re-exported
from vlm4rec.prompts import DEFAULT_PROMPT, IMAGE_PLACEHOLDER, PromptTemplate
from vlm4rec.records import DescriptionResult, ItemRecord

log = logging.getLogger(__name__)

_TORCH_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
assert tuple(_TORCH_DTYPES) == DTYPES


def resolve_dtype(dtype: str, device: str | torch.device | None) -> str:
    """``auto`` → ``fp16`` on CUDA (the given device, else when CUDA is available), ``fp32`` otherwise.

    Resolved when the describer is built, so the description cache key names the dtype that
    actually generates (fp16 and fp32 greedy outputs differ)."""
    if dtype != "auto":
        return dtype
    if device is not None:
        return "fp16" if torch.device(device).type == "cuda" else "fp32"
    return "fp16" if torch.cuda.is_available() else "fp32"


class QuantizationUnavailable(BenchError, ImportError):
    pass


def bnb_4bit_config():
    """The paper's BitsAndBytesConfig; a clear error when bitsandbytes is not installed."""
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as exc:
        raise QuantizationUnavailable(
            "4-bit loading needs bitsandbytes: install the optional extra with "
            "`pip install 'vlm4rec-bench[quant]'` (or pass --dtype fp16 instead of 4bit)"
        ) from exc
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.float16,
    )


def model_revision(model: str, revision: str | None = None) -> str:
    """A revision string for the cache key: a local directory's content fingerprint (config +
    weight file names and sizes), the hub commit of a cached snapshot, or the requested revision."""
    path = Path(model)
    if path.is_dir():
        h = hashlib.sha256()
        for f in sorted(path.iterdir()):
            if f.suffix in (".json", ".jinja", ".txt", ".model") and f.stat().st_size < (8 << 20):
                h.update(f.name.encode())
                h.update(f.read_bytes())
            elif f.is_file():
                h.update(f"{f.name}:{f.stat().st_size}".encode())
        return "local-" + h.hexdigest()[:16]
    try:
        from huggingface_hub import snapshot_download

        snap = snapshot_download(model, revision=revision, local_files_only=True)
        return Path(snap).name
    except Exception:
        log.warning(
            "could not resolve the commit of %s@%s offline; keying the cache on %r",
            model,
            revision or "main",
            revision or "main",
        )
        return revision or "main"


@dataclass
class GenerationSettings:
    max_new_tokens: int = 150
    min_new_tokens: int | None = None
    do_sample: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample}
        if self.min_new_tokens is not None:
            out["min_new_tokens"] = self.min_new_tokens
        out.update(self.extra)
        return out


class HFDescriber(Describer):
    """Batched, greedy captioning with a transformers image-text-to-text model."""

    kind = "hf"

    def __init__(
        self,
        model: str,
        prompt: PromptTemplate | str = DEFAULT_PROMPT,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        quantization: str | None = None,
        max_new_tokens: int = 150,
        min_new_tokens: int | None = None,
        use_chat_template: bool | None = None,
        device: str | torch.device | None = None,
        output: str = "new-tokens",
    ) -> None:
        super().__init__(prompt)
        if output not in OUTPUT_RULES:
            raise ValueError(f"output must be one of {OUTPUT_RULES}, got {output!r}")
        if quantization not in (None, "4bit"):
            raise ValueError(f"quantization must be None or '4bit', got {quantization!r}")
        if dtype != "auto" and dtype not in DTYPES:
            raise ValueError(f"dtype must be 'auto' or one of {sorted(DTYPES)}, got {dtype!r}")
        self.model_name = model
        self.revision = model_revision(model, revision)
        self.requested_revision = revision
        self.dtype = "fp16" if quantization == "4bit" else resolve_dtype(dtype, device)
        self.quantization = quantization
        self.generation = GenerationSettings(max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens)
        self.use_chat_template = use_chat_template
        self.requested_chat_template = use_chat_template
        self.device = torch.device(device) if device is not None else None
        self.output = output
        self.model = None
        self.processor = None

    @classmethod
    def from_preset(cls, name: str, model: str | None = None, **overrides: Any) -> HFDescriber:
        """A preset (``llava-next-7b``, ``qwen2.5-vl-7b``); ``model`` may point at a local copy."""
        try:
            p = PRESETS[name]
        except KeyError:
            raise KeyError(f"unknown preset {name!r}; available: {', '.join(sorted(PRESETS))}") from None
        kw: dict[str, Any] = {
            "quantization": p.quantization,
            "dtype": p.dtype,
            "max_new_tokens": p.max_new_tokens,
            "use_chat_template": p.use_chat_template,
            "output": p.output,
        }
        dtype, quant = overrides.pop("dtype", None), overrides.pop("quantization", None)
        if quant is not None:
            kw.update(quantization=quant, dtype="fp16")
        elif dtype not in (None, "auto"):
            # an explicit dtype replaces the preset's weights setting, 4-bit included
            kw.update(quantization=None, dtype=dtype)
        kw.update({k: v for k, v in overrides.items() if v is not None})
        return cls(model or p.model, **kw)

    def identity(self) -> dict[str, Any]:
        out = super().identity()
        out.update(
            {
                "model": self.model_name if not Path(self.model_name).is_dir() else Path(self.model_name).name,
                "revision": self.revision,
                "dtype": self.dtype,
                "quantization": self.quantization,
                "generation": self.generation.as_dict(),
                # the requested setting (None = auto), fixed before setup() resolves it
                "chat_template": self.requested_chat_template,
            }
        )
        if self.output != "new-tokens":  # only when not the default: other describers keep their cache keys
            out["output"] = self.output
        return out

    # ------------------------------------------------------------------ loading
    def setup(self, device: torch.device | None = None) -> None:
        if self.model is not None:
            return
        from transformers import AutoModelForImageTextToText, AutoProcessor

        device = device or self.device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.device = torch.device(device)
        kwargs: dict[str, Any] = {"revision": self.requested_revision}
        if self.quantization == "4bit":
            if self.device.type != "cuda":
                raise QuantizationUnavailable("4-bit (bitsandbytes) loading needs a CUDA device")
            kwargs["quantization_config"] = bnb_4bit_config()
            kwargs["device_map"] = {"": self.device.index or 0}
            kwargs["dtype"] = torch.float16
        else:
            kwargs["dtype"] = _TORCH_DTYPES[self.dtype]
        self.processor = AutoProcessor.from_pretrained(self.model_name, revision=self.requested_revision)
        tok = getattr(self.processor, "tokenizer", None)
        if tok is not None:
            tok.padding_side = "left"  # decoder-only batched generation needs left padding
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
        model = AutoModelForImageTextToText.from_pretrained(self.model_name, **kwargs)
        if self.quantization != "4bit":
            model = model.to(self.device)
        self.model = model.eval()
        if self.use_chat_template is None:
            self.use_chat_template = bool(getattr(self.processor, "chat_template", None))
        log.info(
            "loaded %s (%s, %s) on %s; chat template: %s",
            self.model_name,
            self.revision,
            self.quantization or kwargs["dtype"],
            self.device,
            self.use_chat_template,
        )

    # ------------------------------------------------------------------ prompting
    def text_input(self, record: ItemRecord) -> str:
        """The text the processor gets for one item (chat-templated or raw)."""
        if self.use_chat_template:
            messages = [
                {
                    "role": "user",
                    "content": [{"type": "image"}, {"type": "text", "text": self.prompt.render(record.fields)}],
                }
            ]
            return self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        raw = self.prompt.render(record.fields, raw=True)
        image_token = getattr(self.processor, "image_token", None) or IMAGE_PLACEHOLDER
        if IMAGE_PLACEHOLDER not in raw:
            raw = f"{IMAGE_PLACEHOLDER}\n{raw}"
        return raw.replace(IMAGE_PLACEHOLDER, image_token)

    @torch.inference_mode()
    def describe(self, batch: list[ItemRecord]) -> list[DescriptionResult]:
        if self.model is None:
            self.setup()
        results: list[DescriptionResult | None] = [None] * len(batch)
        todo = []
        for i, rec in enumerate(batch):
            if rec.image is None:
                results[i] = DescriptionResult(rec.item, error=rec.image_error or "no image")
            else:
                todo.append(i)
        if todo:
            try:
                texts, counts = self.generate([batch[i] for i in todo])
                for i, text, n in zip(todo, texts, counts):
                    results[i] = DescriptionResult(batch[i].item, text=text, n_new_tokens=n)
            except torch.cuda.OutOfMemoryError:
                raise  # a batch-size problem, not an item problem: let the run stop and resume smaller
            except Exception as exc:
                if len(todo) == 1:
                    rec = batch[todo[0]]
                    results[todo[0]] = DescriptionResult(rec.item, error=f"{type(exc).__name__}: {exc}")
                else:
                    # Find the bad item(s) without failing the whole batch.
                    log.warning("batch generation failed (%s); retrying its %d items one by one", exc, len(todo))
                    for i in todo:
                        results[i] = self.describe([batch[i]])[0]
        return [r for r in results if r is not None]

    def generate(self, records: list[ItemRecord]) -> tuple[list[str], list[int]]:
        """Batched greedy generation; returns the decoded new text and new-token count per item."""
        texts = [self.text_input(r) for r in records]
        images = [r.image for r in records]
        enc = self.processor(images=images, text=texts, return_tensors="pt", padding=True)
        enc.pop("token_type_ids", None)
        enc = enc.to(self.device)
        if "pixel_values" in enc and self.model.dtype in (torch.float16, torch.bfloat16):
            enc["pixel_values"] = enc["pixel_values"].to(self.model.dtype)
        gen = self.generation
        kwargs: dict[str, Any] = {"max_new_tokens": gen.max_new_tokens, "do_sample": False}
        if gen.min_new_tokens is not None:
            kwargs["min_new_tokens"] = gen.min_new_tokens
        tok = self.processor.tokenizer
        kwargs["pad_token_id"] = tok.pad_token_id
        out = self.model.generate(**enc, **kwargs)
        new = out[:, enc["input_ids"].shape[1] :]
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos]) - {None}
        counts = []
        for row in new.tolist():
            n = 0
            for t in row:
                if t in eos_ids or t == tok.pad_token_id:
                    break
                n += 1
            counts.append(n)
        if self.output == "after-last-inst":
            return [after_last_inst(d) for d in self.processor.batch_decode(out, skip_special_tokens=True)], counts
        decoded = self.processor.batch_decode(new, skip_special_tokens=True)
        return [d.strip() for d in decoded], counts


def after_last_inst(decoded: str) -> str:
    """The paper's output rule: the text after the last ``[/INST]`` of the decoded sequence, stripped."""
    return decoded.split("[/INST]")[-1].strip()
