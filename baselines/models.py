"""Registers every baseline with the harness (loaded through the ``vlm4rec_bench.models``
entry point). Importing a module runs its ``@register_model`` decorators; heavy libraries
(RecBole, open_clip) are imported only when a model is fitted."""

from baselines import bpr, fusion, recbole_adapter, simple, training_free, vbpr  # noqa: F401

__all__ = ["bpr", "fusion", "recbole_adapter", "simple", "training_free", "vbpr"]
