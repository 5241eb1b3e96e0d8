"""The Hugging Face describer's named settings and weight dtypes, without importing torch.

Kept apart from :mod:`vlm4rec.describers.hf` so that the command line and the config validator
can list the allowed values (``--preset``, ``--dtype``) without loading torch or transformers.
"""

from __future__ import annotations

from dataclasses import dataclass

#: weights dtypes an ``hf`` describer loads in (torch.float32 / float16 / bfloat16)
DTYPES: tuple[str, ...] = ("fp32", "fp16", "bf16")
#: what of a generated sequence is the description (see :mod:`vlm4rec.describers.hf`)
OUTPUT_RULES = ("new-tokens", "after-last-inst")


@dataclass(frozen=True)
class HFPreset:
    model: str
    quantization: str | None
    dtype: str
    max_new_tokens: int = 150
    #: None: the processor's chat template when it has one; False: the prompt's raw text as-is
    use_chat_template: bool | None = None
    output: str = "new-tokens"


PRESETS: dict[str, HFPreset] = {
    # The paper: LLaVA-NeXT 7B in 4-bit nf4 + double quantisation, fp16 compute, greedy, 150 new tokens,
    # and the paper's literal "[INST] <image>\n… [/INST]" text (not whatever chat template a
    # processor revision ships), so the prompt is exactly the published one; the description is
    # the text after the last "[/INST]", as the paper's script cuts it. With describe's default batch
    # of 8 (the script's batch_size for 7b) this is generate_llava_next_summaries.py's setting.
    "llava-next-7b": HFPreset(
        "llava-hf/llava-v1.6-mistral-7b-hf", "4bit", "fp16", 150, use_chat_template=False, output="after-last-inst"
    ),
    "qwen2.5-vl-7b": HFPreset("Qwen/Qwen2.5-VL-7B-Instruct", None, "bf16", 150),
}
