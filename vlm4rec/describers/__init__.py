"""Describers: an LVLM through transformers, an OpenAI-compatible endpoint, a precomputed file.

Names are imported on first use (PEP 562): the command line lists ``PRESETS`` without loading
torch or transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from benchmark.lazy import lazy_getattr

if TYPE_CHECKING:
    from vlm4rec.describers.base import Describer
    from vlm4rec.describers.hf import HFDescriber
    from vlm4rec.describers.openai_http import OpenAIDescriber
    from vlm4rec.describers.precomputed import PrecomputedDescriber, read_description_table
    from vlm4rec.describers.presets import PRESETS

_WHERE = {
    "Describer": "base",
    "HFDescriber": "hf",
    "OpenAIDescriber": "openai_http",
    "PrecomputedDescriber": "precomputed",
    "read_description_table": "precomputed",
    "PRESETS": "presets",
}

__all__ = ["Describer", "HFDescriber", "OpenAIDescriber", "PrecomputedDescriber", "PRESETS", "read_description_table"]


__getattr__ = lazy_getattr(__name__, _WHERE)
