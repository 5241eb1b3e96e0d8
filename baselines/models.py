"""Registers every baseline with the harness (loaded through the ``vlm4rec_bench.models``
entry point)."""
