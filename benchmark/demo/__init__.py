"""The built-in offline demo: a synthetic catalogue in the Amazon 2023 layout with real PNG images.

See :mod:`benchmark.demo.generator` and ``datasets/demo.md`` for exactly what it contains.
"""

from benchmark.demo.generator import (
    CAPTION_SOURCE,
    DemoPaths,
    generate_demo,
    read_hidden_attributes,
    read_reference_captions,
)

__all__ = ["CAPTION_SOURCE", "DemoPaths", "generate_demo", "read_hidden_attributes", "read_reference_captions"]
