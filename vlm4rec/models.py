"""Registers VLM4Rec's recommenders with the harness (loaded through the
``vlm4rec_bench.models`` entry point)."""

from vlm4rec.recommender import VLM4Rec  # noqa: F401  (import runs @register_model)

__all__ = ["VLM4Rec"]
