"""Describers: item image (+ catalogue fields) → text. See :class:`Describer`."""

from vlm4rec.describers.base import Describer
from vlm4rec.describers.hf import PRESETS, HFDescriber
from vlm4rec.describers.openai_http import OpenAIDescriber
from vlm4rec.describers.precomputed import PrecomputedDescriber, read_description_table

__all__ = ["Describer", "HFDescriber", "OpenAIDescriber", "PrecomputedDescriber", "PRESETS", "read_description_table"]
