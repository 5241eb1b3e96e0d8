"""Baselines' subcommands for ``vlm4rec-bench`` (``vlm4rec_bench.commands`` entry point)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the baselines' subcommands (feature extraction)."""
