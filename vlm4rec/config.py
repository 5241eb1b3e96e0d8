"""Which describer and which text encoder: one settings dataclass and one factory for each.

``vlm4rec-bench describe``/``encode`` (flags) and the runner's ``vlm4rec-text`` producer (YAML,
validated by :meth:`benchmark.registry.Registry.check_params`) both fill a
:class:`DescriberConfig` / :class:`EncoderConfig` and call :func:`build_describer` /
:func:`build_encoder`, so a setting the command line has is a setting a config has, with the
same default and the same check. The allowed values of every fixed-choice field are named once,
by the module that implements them (prompts in :mod:`vlm4rec.prompts`, presets and dtypes in
:mod:`vlm4rec.describers.hf`, encoders in :mod:`vlm4rec.encoders`) or here (describer kinds,
chat-template modes).

A setting that the chosen kind does not use is an error when it differs from its default
(``dtype: 4bit`` on an ``openai`` describer would otherwise be silently ignored).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark.configuration import check_choices, choice
from benchmark.errors import ConfigError
from vlm4rec.describers.presets import DTYPES, PRESETS
from vlm4rec.encoders import DEFAULT_CLIP_MODEL, DEFAULT_ST_MODEL, ENCODERS
from vlm4rec.prompts import DEFAULT_PROMPT, PROMPTS
from vlm4rec.selection import SELECTIONS, ItemSelection

if TYPE_CHECKING:  # the describers and encoders import torch: built on demand, not to list choices
    from vlm4rec.describers import HFDescriber
    from vlm4rec.describers.base import Describer
    from vlm4rec.encoders import TextEncoder

#: where item descriptions come from: a transformers LVLM, an OpenAI-compatible endpoint, a file
DESCRIBER_KINDS = ("hf", "openai", "precomputed")
#: weights dtype of an ``hf`` describer; ``4bit`` is bitsandbytes nf4 with fp16 compute (the paper)
DTYPE_CHOICES = ("auto", *DTYPES, "4bit")
#: ``chat_template`` → HFDescriber's ``use_chat_template`` (auto: when the processor has one)
CHAT_TEMPLATE = {"auto": None, "yes": True, "no": False}
#: generated tokens per item when neither the setting nor a preset gives one (the paper's 150)
DEFAULT_MAX_NEW_TOKENS = 150


def _flag(name: str) -> str:
    """The command-line flag of a setting, for messages that serve both front-ends."""
    return {"kind": "--describer", "lvlm": "--lvlm/--model"}.get(name, "--" + name.replace("_", "-"))


def _check_fields(obj: Any, path: str, used_by: dict[str, tuple[str, ...]]) -> None:
    """Choices of every field (also for objects built in code), and no setting the kind ignores."""
    at = f"{path}." if path else ""
    for f in dataclasses.fields(obj):
        check_choices(f, getattr(obj, f.name), f"{at}{f.name}")
    for name, kinds in used_by.items():
        default = next(f.default for f in dataclasses.fields(obj) if f.name == name)
        if obj.kind not in kinds and getattr(obj, name) != default:
            raise ConfigError(
                f"{at}{name}: not used by kind {obj.kind!r} (only by {', '.join(kinds)}); remove it or change the kind"
            )


def _positive(path: str, name: str, value: float | None, minimum: float = 1) -> None:
    if value is not None and value < minimum:
        raise ConfigError(f"{path}{name}: must be >= {minimum}, got {value!r}")


# ------------------------------------------------------------------------------------ describer
@dataclass
class DescriberConfig:
    """How item images become descriptions (VLM4Rec step 1).

    ``kind`` picks the describer; the other fields apply to the kinds named in their comment.
    ``None`` means "the preset's value, else the built-in default".
    """

    kind: str = choice("hf", DESCRIBER_KINDS)
    #: hf: local directory or hub id (with ``preset``: a local copy of the preset's model);
    #: openai: the served model name
    lvlm: str | None = None
    #: hf: a named paper setting (model, weights dtype, generation length, prompt wrapping)
    preset: str | None = choice(None, tuple(PRESETS))
    #: hf: hub revision (branch, tag or commit)
    revision: str | None = None
    #: hf, openai: a named prompt template
    prompt: str = choice(DEFAULT_PROMPT, tuple(PROMPTS))
    #: hf: weights dtype; None keeps the preset's (else ``auto``: fp16 on CUDA, fp32 on CPU)
    dtype: str | None = choice(None, DTYPE_CHOICES)
    #: hf, openai: generated tokens per item (None: the preset's, else 150)
    max_new_tokens: int | None = None
    #: hf: force at least this many generated tokens
    min_new_tokens: int | None = None
    #: hf: wrap the prompt in the processor's chat template (auto: when it has one)
    chat_template: str = choice("auto", tuple(CHAT_TEMPLATE))
    #: openai: the endpoint, e.g. http://127.0.0.1:8000/v1
    base_url: str | None = None
    #: openai: environment variable holding the API key (the key itself is never stored)
    api_key_env: str = "OPENAI_API_KEY"
    #: openai: requests in flight (each batch is sent, then awaited, so at most the batch size)
    concurrency: int = 8
    #: openai: total seconds per request (connect, upload, response: a deadline, not a per-read timeout)
    timeout: float = 60.0
    #: openai: retries on timeout, connection error, HTTP 429 and 5xx
    retries: int = 4
    #: precomputed: JSONL/Parquet of (item, description); relative paths are looked up by the caller
    descriptions_file: str | None = None
    #: which items to describe: ``all``, or ``paper-priority`` (the paper's captioned subset:
    #: items with an image by 0.7 popularity + 0.3 recency in train, :mod:`vlm4rec.selection`)
    select: str = choice("all", SELECTIONS)
    #: at most this many items (the paper's --max-items; 4,708 for its Clothing run)
    max_items: int | None = None

    #: which kinds use each kind-specific setting (the rest apply to all)
    USED_BY = {
        "lvlm": ("hf", "openai"),
        "preset": ("hf",),
        "revision": ("hf",),
        "prompt": ("hf", "openai"),
        "dtype": ("hf",),
        "max_new_tokens": ("hf", "openai"),
        "min_new_tokens": ("hf",),
        "chat_template": ("hf",),
        "base_url": ("openai",),
        "api_key_env": ("openai",),
        "concurrency": ("openai",),
        "timeout": ("openai",),
        "retries": ("openai",),
        "descriptions_file": ("precomputed",),
    }

    def validate(self, path: str = "describer") -> None:
        """Raise :class:`ConfigError` naming the key (and its flag) when the settings cannot work."""
        _check_fields(self, path, self.USED_BY)
        at = f"{path}." if path else ""
        if self.kind == "precomputed" and not self.descriptions_file:
            raise ConfigError(f"{at}descriptions_file: kind 'precomputed' needs it ({_flag('descriptions_file')})")
        if self.kind == "openai" and not (self.base_url and self.lvlm):
            missing = "base_url" if not self.base_url else "lvlm"
            raise ConfigError(
                f"{at}{missing}: kind 'openai' needs base_url ({_flag('base_url')}) and lvlm, "
                f"the served model name ({_flag('lvlm')})"
            )
        if self.kind == "hf" and not (self.lvlm or self.preset):
            raise ConfigError(
                f"{at}lvlm: kind 'hf' needs lvlm, a local path or hub id ({_flag('lvlm')}), "
                f"or preset ({_flag('preset')}: {', '.join(PRESETS)})"
            )
        _positive(at, "max_items", self.max_items)
        _positive(at, "max_new_tokens", self.max_new_tokens)
        _positive(at, "min_new_tokens", self.min_new_tokens, 0)
        _positive(at, "concurrency", self.concurrency)
        _positive(at, "timeout", self.timeout, 1e-3)
        _positive(at, "retries", self.retries, 0)
        if None not in (self.min_new_tokens, self.max_new_tokens) and self.min_new_tokens > self.max_new_tokens:
            raise ConfigError(f"{at}min_new_tokens: {self.min_new_tokens} exceeds max_new_tokens {self.max_new_tokens}")


def build_selection(cfg: DescriberConfig) -> ItemSelection | None:
    """The item selection ``cfg`` asks for, or ``None`` for every item (the default)."""
    if cfg.select == "all" and cfg.max_items is None:
        return None
    return ItemSelection(cfg.select, cfg.max_items)


def build_describer(
    cfg: DescriberConfig, *, find_file: Callable[[str], Path] | None = None, where: str = "describer"
) -> Describer:
    """The describer ``cfg`` asks for (the one factory behind ``describe`` and ``vlm4rec-text``).

    ``find_file`` turns a relative ``descriptions_file`` into a path (the runner looks in the
    dataset's raw folder); without it the path is taken as given. Errors the user can fix are
    :class:`ConfigError`s naming ``where`` + the key; a malformed descriptions file is a
    :class:`~benchmark.errors.BadInputError`.
    """
    from vlm4rec.describers import OpenAIDescriber, PrecomputedDescriber

    cfg.validate(where)
    if cfg.kind == "precomputed":
        try:
            path = find_file(cfg.descriptions_file) if find_file else Path(cfg.descriptions_file)
            return PrecomputedDescriber(path, prompt=cfg.prompt)
        except FileNotFoundError as exc:
            raise ConfigError(f"{where}.descriptions_file: {exc}") from None
    if cfg.kind == "openai":
        return OpenAIDescriber(
            cfg.base_url,
            cfg.lvlm,
            prompt=cfg.prompt,
            api_key_env=cfg.api_key_env,
            max_new_tokens=cfg.max_new_tokens or DEFAULT_MAX_NEW_TOKENS,
            max_concurrency=cfg.concurrency,
            timeout=cfg.timeout,
            max_retries=cfg.retries,
        )
    return _build_hf(cfg)


def _build_hf(cfg: DescriberConfig) -> HFDescriber:
    from vlm4rec.describers import HFDescriber

    quantization, dtype = ("4bit", "fp16") if cfg.dtype == "4bit" else (None, cfg.dtype)
    kw: dict[str, Any] = {
        "prompt": cfg.prompt,
        "revision": cfg.revision,
        "max_new_tokens": cfg.max_new_tokens,
        "min_new_tokens": cfg.min_new_tokens,
        "use_chat_template": CHAT_TEMPLATE[cfg.chat_template],
    }
    if cfg.preset:
        # unset (None) settings keep the preset's; an explicit dtype replaces its weights setting
        if dtype is not None:
            kw.update(dtype=dtype, quantization=quantization)
        return HFDescriber.from_preset(cfg.preset, model=cfg.lvlm, **kw)
    kw["max_new_tokens"] = cfg.max_new_tokens or DEFAULT_MAX_NEW_TOKENS
    return HFDescriber(cfg.lvlm, dtype=dtype or "auto", quantization=quantization, **kw)


# ------------------------------------------------------------------------------------ encoder
@dataclass
class EncoderConfig:
    """How item texts become vectors (VLM4Rec step 2)."""

    kind: str = choice("minilm", ENCODERS)
    #: the encoder's weights: a sentence-transformers id or path (minilm; default all-MiniLM-L6-v2)
    #: or an open_clip architecture (clip; default ViT-B-32)
    model: str | None = None
    #: clip: open_clip pretrained tag or weights file; None or "none" for random weights
    pretrained: str | None = "openai"

    USED_BY = {"pretrained": ("clip",)}

    def validate(self, path: str = "encoder") -> None:
        _check_fields(self, path, self.USED_BY)


def build_encoder(cfg: EncoderConfig, device: str | None = None) -> TextEncoder:
    """The text encoder ``cfg`` asks for (the one factory behind ``encode`` and ``vlm4rec-text``)."""
    from vlm4rec.encoders import ClipTextEncoder, SentenceTransformerEncoder

    cfg.validate()
    if cfg.kind == "clip":
        pretrained = None if cfg.pretrained is None or cfg.pretrained.lower() == "none" else cfg.pretrained
        return ClipTextEncoder(cfg.model or DEFAULT_CLIP_MODEL, pretrained=pretrained, device=device)
    return SentenceTransformerEncoder(cfg.model or DEFAULT_ST_MODEL, device=device)
