"""One reader for a run directory: :meth:`RunResults.load`.

The summary stage, ``vlm4rec-bench leaderboard`` and ``vlm4rec-bench claims`` all read finished
runs through it: the config the run recorded (as an :class:`ExperimentConfig`, readable even when
a plug-in model of that run is not installed here), its finished units with their per-user test
metrics, the seed-averaged per-user frames and seed spread, the split fingerprint and the
provenance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.configuration import load_yaml
from benchmark.errors import BenchError
from benchmark.io import read_json
from benchmark.runner.config import ExperimentConfig, saved_config
from benchmark.runner.rundir import PROVENANCE, RESOLVED_CONFIG, SPLIT_INFO, UNITS


class NotARunDirectory(BenchError, FileNotFoundError):
    """A directory that holds no run's results (no ``split.json`` or no resolved config)."""


@dataclass
class UnitResult:
    """One finished (model, seed) unit: its record (``units/KEY.json``) and per-user test metrics
    (``modes``: those of each extra evaluation mode, see :mod:`benchmark.runner.modes`)."""

    key: str
    record: dict[str, Any]
    per_user: pd.DataFrame
    modes: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def model(self) -> str:
        return str(self.record["model"])

    @property
    def seed(self) -> int | None:
        return self.record.get("seed")


@dataclass
class RunResults:
    """A run directory read back (see module docstring)."""

    run_dir: Path
    config: ExperimentConfig
    split_info: dict[str, Any]
    units: dict[str, list[UnitResult]]
    provenance: dict[str, Any] | None = None
    _averaged: dict[tuple[str, str | None], tuple[pd.DataFrame, dict[str, Any]]] = field(
        default_factory=dict, repr=False
    )

    @classmethod
    def load(cls, run_dir: str | Path) -> RunResults:
        """Read ``run_dir``; units whose per-user file is missing (killed mid-write) are left out."""
        d = Path(run_dir)
        for name in (SPLIT_INFO, RESOLVED_CONFIG):
            if not (d / name).is_file():
                raise NotARunDirectory(f"{d} is not a run directory (no {name})")
        config = saved_config(load_yaml(d / RESOLVED_CONFIG))
        provenance = read_json(d / PROVENANCE) if (d / PROVENANCE).is_file() else None
        return cls(d, config, read_json(d / SPLIT_INFO), load_units(d), provenance)

    # ----------------------------------------------------------------------------- reading
    @property
    def fingerprint(self) -> str:
        return str(self.split_info["fingerprint"])

    @property
    def models(self) -> list[str]:
        """Models with finished units: the config's order, then any the config does not list."""
        listed = [m.name for m in self.config.models if m.name in self.units]
        return listed + [m for m in self.units if m not in listed]

    @property
    def baseline(self) -> str:
        """The config's baseline if it has results, else the first model that has."""
        return self.config.baseline if self.config.baseline in self.units else self.models[0]

    def seed_frames(self, model: str, mode: str | None = None) -> list[pd.DataFrame]:
        """Per-user test metrics of ``model``, one frame per seed (unit file order); ``mode``: an
        extra evaluation mode's (default: the leaderboard's, ``full-catalogue``)."""
        if mode is None:
            return [u.per_user for u in self.units[model]]
        return [u.modes[mode] for u in self.units[model] if mode in u.modes]

    def seeds(self, model: str, mode: str | None = None) -> list[int | None]:
        """The seeds of ``model``'s units, in :meth:`seed_frames` order (``[None]``: a model
        that takes no seed, so has no training randomness)."""
        return [u.seed for u in self.units[model] if mode is None or mode in u.modes]

    def seed_inputs(
        self, models: list[str] | None = None, mode: str | None = None
    ) -> tuple[dict[str, Any], dict[str, list[int | None]]]:
        """What :func:`benchmark.stats.compare` takes to count seeds: model → its per-seed
        frames (a single frame for a model without seed), and model → its seeds; ``mode``: an
        extra evaluation mode's frames (as :meth:`seed_frames`)."""
        names = self.models if models is None else models
        frames: dict[str, Any] = {}
        for m in names:
            per_seed = self.seed_frames(m, mode)
            frames[m] = per_seed[0] if self.seeds(m, mode) == [None] else per_seed
        return frames, {m: self.seeds(m, mode) for m in names}

    def code_versions(self, models: list[str] | None = None) -> dict[str, list[str]]:
        """Unit keys grouped by the code that wrote them (:func:`~benchmark.runner.provenance.version_label`
        of each unit record); one group when nothing is mixed."""
        from benchmark.runner.provenance import version_label

        groups: dict[str, list[str]] = {}
        for m in self.models if models is None else models:
            for u in self.units[m]:
                groups.setdefault(version_label(u.record), []).append(u.key)
        return groups

    def per_user(self, model: str, mode: str | None = None) -> pd.DataFrame:
        """Per-user test metrics of ``model`` averaged over its seeds (``user_id`` + metric columns)."""
        return self._average(model, mode)[0]

    def spread(self, model: str, mode: str | None = None) -> dict[str, Any]:
        """Spread over seeds of each metric's mean (see :func:`benchmark.stats.aggregate_seeds`)."""
        return self._average(model, mode)[1]

    def averaged(self, models: list[str] | None = None, mode: str | None = None) -> dict[str, pd.DataFrame]:
        """Seed-averaged per-user frames of ``models`` (default: all, in :attr:`models` order);
        with ``mode``, only models evaluated in that mode."""
        names = self.models if models is None else models
        if mode is not None:
            names = [m for m in names if self.seed_frames(m, mode)]
        return {m: self.per_user(m, mode) for m in names}

    def modes(self) -> list[str]:
        """The extra evaluation modes some unit of this run was evaluated in."""
        return sorted({mode for units in self.units.values() for u in units for mode in u.modes})

    def paper_names(self) -> dict[str, str]:
        """The paper's label → our model name, for models whose config gives ``paper_name``."""
        return {m.paper_name: m.name for m in self.config.models if m.paper_name}

    def _average(self, model: str, mode: str | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
        from benchmark.stats import aggregate_seeds

        key = (model, mode)
        if key not in self._averaged:
            self._averaged[key] = aggregate_seeds(self.seed_frames(model, mode))
        return self._averaged[key]


def load_units(run_dir: Path) -> dict[str, list[UnitResult]]:
    """Finished units of a run directory grouped by model, in unit-file order."""
    out: dict[str, list[UnitResult]] = {}
    for meta in sorted((Path(run_dir) / UNITS).glob("*.json")):
        pq = meta.with_suffix(".parquet")
        if not pq.exists():
            continue
        rec = read_json(meta)
        modes = {mode: pd.read_parquet(meta.with_suffix(f".test.{mode}.parquet")) for mode in rec.get("modes", {})}
        out.setdefault(rec["model"], []).append(UnitResult(meta.stem, rec, pd.read_parquet(pq), modes))
    return out
