"""The run directory: where a run goes, how a resumed run finds it, and its file names.

Layout of one run, ``<results_dir>/<experiment>/<timestamp>/``::

    config.resolved.yaml   the fully resolved config (defaults filled in)
    config.hash            :func:`config_hash` of it (a re-run of the same config resumes here)
    split.json             split fingerprint, summary, dataset checksums
    units/KEY.json         one (model, seed) unit: valid + test means, timings, model params,
                           the version that wrote it (written last: its presence marks the unit done)
    units/KEY.parquet      its per-user test metrics; units/KEY.valid.parquet the validation ones;
                           units/KEY.test.MODE.parquet those of each extra evaluation mode
    per_user_metrics.parquet   all units, long format (model, seed, user_id, metrics…)
    metrics.json           means per model (averaged over seeds), seed spread, subsets
    modes.json, modes.md   the extra evaluation modes (captioned-only): means, users, sample spread
    statistics.json        paired tests vs the baseline, corrected over the whole table
    leaderboard.{md,tex,csv}, statistics.md, subsets.{md,csv}, plots/*.png, provenance.json, wandb/
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmark.configuration import to_dict
from benchmark.io import atomic_open
from benchmark.runner.config import ExperimentConfig

log = logging.getLogger(__name__)

RESOLVED_CONFIG = "config.resolved.yaml"
CONFIG_HASH = "config.hash"
SPLIT_INFO = "split.json"
PROVENANCE = "provenance.json"
UNITS = "units"


SEED_SUFFIX = "__seed"


def unit_stem(model: str) -> str:
    """A model name made file-safe (letters, digits, ``-_.``; anything else becomes ``_``). The
    config refuses two names with the same stem (any case), so unit keys never collide."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in model)


@dataclass(frozen=True)
class Unit:
    """One (model, seed) run; ``seed`` is ``None`` for a model that takes no seed."""

    model: str
    seed: int | None

    @property
    def key(self) -> str:
        """File stem of the unit's results under ``units/`` (the model name made file-safe)."""
        safe = unit_stem(self.model)
        return safe if self.seed is None else f"{safe}{SEED_SUFFIX}{self.seed}"

    def record_path(self, run_dir: Path) -> Path:
        return Path(run_dir) / UNITS / f"{self.key}.json"

    def per_user_path(self, run_dir: Path, part: str = "test") -> Path:
        return Path(run_dir) / UNITS / (f"{self.key}.parquet" if part == "test" else f"{self.key}.{part}.parquet")

    def is_done(self, run_dir: Path) -> bool:
        return self.record_path(run_dir).exists() and self.per_user_path(run_dir).exists()


def config_hash(cfg: ExperimentConfig) -> str:
    """Hash of everything that changes results (logging and output paths excluded)."""
    d = to_dict(cfg)
    for k in ("logging", "results_dir", "description"):
        d.pop(k, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resolve_run_dir(cfg: ExperimentConfig, force: bool = False, run_dir: str | Path | None = None) -> Path:
    """The run directory: given, or the latest one of the same config (resume), or a new one."""
    if run_dir is not None:
        return Path(run_dir)
    base = Path(cfg.results_dir) / cfg.experiment
    h = config_hash(cfg)
    if not force and base.is_dir():
        for d in sorted((p for p in base.iterdir() if p.is_dir()), reverse=True):
            marker = d / CONFIG_HASH
            if marker.exists() and marker.read_text().strip() == h:
                log.info("resuming %s (same config %s)", d, h)
                return d
    stamp = time.strftime("%Y%m%d-%H%M%S")
    d = base / stamp
    n = 1
    while d.exists():
        d = base / f"{stamp}-{n}"
        n += 1
    return d


def write_resolved_config(run_dir: Path, cfg: ExperimentConfig) -> None:
    """``config.resolved.yaml`` and ``config.hash`` (what :func:`resolve_run_dir` matches on)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(run_dir / RESOLVED_CONFIG, "w", encoding="utf-8") as fh:
        yaml.safe_dump(to_dict(cfg), fh, sort_keys=False)
    with atomic_open(run_dir / CONFIG_HASH, "w") as fh:
        fh.write(config_hash(cfg) + "\n")


class StageTimer:
    """Wall time per stage (``with timer("features"): …``), for ``provenance.json``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        log.info("stage %s …", stage)
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0
            log.info("stage %s done in %.1f s", stage, self.seconds[stage])
