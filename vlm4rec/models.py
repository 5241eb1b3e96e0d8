"""Registers VLM4Rec's recommenders with the harness (loaded through the
``vlm4rec_bench.models`` entry point)."""
