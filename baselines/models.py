"""Registers every baseline with the harness (loaded through the ``vlm4rec_bench.models``
entry point). Importing a module runs its ``@register_model`` decorators; heavy libraries
(RecBole, open_clip) are imported only when a model is fitted."""

from baselines import bpr, mmrec_adapter, profile_baselines, recbole_adapter, simple, trained_fusion, vbpr  # noqa: F401

__all__ = ["bpr", "mmrec_adapter", "profile_baselines", "recbole_adapter", "simple", "trained_fusion", "vbpr"]
