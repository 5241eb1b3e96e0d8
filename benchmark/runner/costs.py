"""What each method costs: wall time of every stage a model depended on, the device, peak memory
and, where CodeCarbon can measure it, energy in kWh.

Stages: its **features** (VLM4Rec's describing and encoding, a CLIP or pixel extraction — each
feature set's cost is measured when it is made and stored in its provenance, so a cached feature
counts with the cost it had when it was made; a feature a dataset shipped has no known cost),
then per (model, seed) unit **training** (``fit``) and **evaluation**. :class:`measure` wraps a
stage; :func:`model_costs` adds them up per model (a feature shared by several models counts in
full for each: it is what that method needs), ``costs.json`` holds the result and
``leaderboard --show-cost``, W&B and MLflow show it.

Energy: CodeCarbon's offline tracker (no network; CPU power from RAPL or its CPU table, GPU from
NVML, RAM from its model), started per stage. It is optional (the ``costs`` extra): when it is
not installed, fails or cannot measure, ``energy_kwh`` is ``None`` with the reason in
``energy_note`` and the run goes on; its first start probes the hardware (about 2 s, once per
process). ``logging.energy: false`` turns it off. Memory: the peak GPU memory allocated by
PyTorch during the stage on a CUDA device; on CPU the process's peak resident set so far (an
upper bound for the stage: the OS keeps one peak per process).
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

log = logging.getLogger(__name__)

COSTS_FILE = "costs.json"

#: one row of the cost table per model (``costs.json`` → ``models``; W&B/MLflow tables)
COST_COLUMNS: tuple[str, ...] = (
    "model",
    "total_seconds",
    "features_seconds",
    "fit_seconds",
    "eval_seconds",
    "n_units",
    "device",
    "peak_memory_mb",
    "energy_kwh",
    "features",
)

_ENERGY_BROKEN: list[str] = []  # the reason CodeCarbon failed once in this process: not retried


class measure:
    """``with measure(device) as m: …`` then ``m.record``: wall seconds, device, peak memory,
    energy (kWh or ``None`` with ``energy_note``)."""

    def __init__(self, device: str = "cpu", energy: bool = True) -> None:
        self.device = str(device or "cpu")
        self.energy = energy
        self.record: dict[str, Any] = {}
        self._tracker: Any = None
        self._t0 = 0.0
        self._note: str | None = None

    def __enter__(self) -> measure:
        if self._cuda():
            import torch

            torch.cuda.reset_peak_memory_stats()
        if self.energy:
            self._tracker, self._note = start_energy_tracker()
        else:
            self._note = "off (logging.energy: false)"
        self._t0 = time.perf_counter()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        wall = time.perf_counter() - self._t0
        kwh, note = stop_energy_tracker(self._tracker) if self._tracker is not None else (None, self._note)
        self.record = {
            "wall_seconds": round(wall, 3),
            "device": device_name(self.device),
            "peak_memory_bytes": self._peak_memory(),
            "peak_memory_kind": "cuda_max_allocated" if self._cuda() else "process_max_rss",
            "energy_kwh": kwh,
            **({"energy_note": note} if note else {}),
        }

    def _cuda(self) -> bool:
        if not self.device.startswith("cuda"):
            return False
        import torch

        return bool(torch.cuda.is_available())

    def _peak_memory(self) -> int:
        if self._cuda():
            import torch

            return int(torch.cuda.max_memory_allocated())
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return int(rss if sys.platform == "darwin" else rss * 1024)  # bytes on macOS, KiB on Linux


def device_name(device: str) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H200)``: what a cost was measured on."""
    if device.startswith("cuda"):
        try:
            import torch

            if torch.cuda.is_available():
                index = int(device.split(":")[1]) if ":" in device else torch.cuda.current_device()
                return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
        except Exception:
            pass
    return device


def start_energy_tracker() -> tuple[Any, str | None]:
    """A started CodeCarbon offline tracker, or ``(None, why not)``; never raises."""
    if _ENERGY_BROKEN:
        return None, _ENERGY_BROKEN[0]
    try:
        import codecarbon  # noqa: F401  (only to tell "not installed" from a failure)
    except ImportError:
        _ENERGY_BROKEN.append("not measured (codecarbon not installed: pip install 'vlm4rec-bench[costs]')")
        return None, _ENERGY_BROKEN[0]
    try:
        logging.getLogger("codecarbon").setLevel(logging.ERROR)  # its INFO lines would fill the console
        from codecarbon import OfflineEmissionsTracker

        tracker = OfflineEmissionsTracker(
            country_iso_code="USA",  # required by the offline tracker; only its kWh are used, not CO2
            save_to_file=False,
            log_level="error",
            measure_power_secs=60,
            tracking_mode="process",
            allow_multiple_runs=True,
        )
        tracker.start()
        return tracker, None
    except Exception as exc:  # energy is an extra: never fail a run for it
        _ENERGY_BROKEN.append(f"not measured (codecarbon failed: {exc})")
        log.warning("energy: %s", _ENERGY_BROKEN[0])
        return None, _ENERGY_BROKEN[0]


def stop_energy_tracker(tracker: Any) -> tuple[float | None, str | None]:
    """kWh measured by ``tracker`` (CPU + GPU + RAM), or ``(None, why not)``; never raises."""
    try:
        tracker.stop()
        data = tracker.final_emissions_data
        return float(data.energy_consumed), None
    except Exception as exc:
        return None, f"not measured (codecarbon failed: {exc})"


def feature_cost(provenance: Mapping[str, Any], measured: Mapping[str, Any]) -> dict[str, Any]:
    """A feature set's cost record (stored in its provenance): ``measured`` (the producer call)
    with its stages — ``describe``/``encode`` when the producer timed them (VLM4Rec), else one
    ``extract`` stage. A stage the producer found cached counts with its recorded cost."""
    stages = {
        k: provenance[f"{k}_seconds"] for k in ("describe", "encode") if provenance.get(f"{k}_seconds") is not None
    }
    if not stages:
        stages = {"extract": measured["wall_seconds"]}
    total = max(round(sum(float(v) for v in stages.values()), 3), float(measured["wall_seconds"]))
    return {**measured, "stages": stages, "wall_seconds": total}


def model_costs(results: Any) -> dict[str, dict[str, Any]]:
    """Per model of a :class:`~benchmark.runner.results.RunResults`: its features' recorded costs
    and its units' training and evaluation, summed over seeds (one row of :data:`COST_COLUMNS`
    plus ``stages`` and ``units`` in detail)."""
    from benchmark.report.labels import format_duration
    from benchmark.runner.stages.features import model_features

    feats = ((results.provenance or {}).get("features")) or {}
    entries = {m.name: m for m in results.config.models}
    out: dict[str, dict[str, Any]] = {}
    for model in results.models:
        names = model_features(entries[model]) if model in entries else []
        fcosts = {n: ((feats.get(n) or {}).get("provenance") or {}).get("cost") for n in names}
        units = [u.record for u in results.units[model]]
        fit = [_stage(r, "fit") for r in units]
        ev = [_stage(r, "evaluate") for r in units]
        stage_records = [c for c in fcosts.values() if c] + [s for s in fit + ev if s]
        row: dict[str, Any] = {
            "features_seconds": _sum(c.get("wall_seconds") if c else None for c in fcosts.values()),
            "fit_seconds": _sum(s.get("wall_seconds") if s else None for s in fit),
            "eval_seconds": _sum(s.get("wall_seconds") if s else None for s in ev),
            "n_units": len(units),
            "device": ", ".join(sorted({str(s["device"]) for s in stage_records if s.get("device")})) or None,
            "peak_memory_mb": _peak_mb(stage_records),
            "energy_kwh": _sum((s.get("energy_kwh") for s in stage_records), 12) if stage_records else None,
            "features": ", ".join(
                f"{n} ({'unknown' if c is None else format_duration(c['wall_seconds'])})" for n, c in fcosts.items()
            ),
        }
        row["total_seconds"] = _sum([row["features_seconds"] or 0.0, row["fit_seconds"], row["eval_seconds"]])
        row["feature_stages"] = {n: (c or {}).get("stages") for n, c in fcosts.items()}
        out[model] = row
    return out


def write_costs(run_dir: Path, results: Any) -> dict[str, Any]:
    """``costs.json``: :func:`model_costs` under ``models`` (depends on wall time, unlike the
    metrics and statistics files)."""
    from benchmark.io import write_json

    models = model_costs(results)
    data = {"models": models, "order": list(models), "columns": list(COST_COLUMNS)}  # JSON keys get sorted
    write_json(Path(run_dir) / COSTS_FILE, data)
    return data


def _stage(record: Mapping[str, Any], stage: str) -> dict[str, Any] | None:
    """A unit's ``cost[stage]``, or its older ``timing`` seconds (no device, memory, energy)."""
    cost = (record.get("cost") or {}).get(stage)
    if cost:
        return dict(cost)
    seconds = (record.get("timing") or {}).get(f"{'fit' if stage == 'fit' else 'eval'}_seconds")
    return {"wall_seconds": seconds} if seconds is not None else None


def _sum(values: Any, digits: int = 6) -> float | None:
    """Sum of the known values; ``None`` if none is known."""
    known = [float(v) for v in values if v is not None]
    return round(sum(known), digits) if known else None


def _peak_mb(stages: list[Mapping[str, Any]]) -> float | None:
    peaks = [s["peak_memory_bytes"] for s in stages if s.get("peak_memory_bytes") is not None]
    return round(max(peaks) / 2**20, 1) if peaks else None
