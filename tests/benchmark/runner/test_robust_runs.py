"""Runs that keep their work whatever happens (issue 12): any metric list, a failing report, a
torn feature-cache entry, two processes on one results directory, the console kept quiet with
everything in run.log, `--models`/`--skip-features`, `--force`, usual file modes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from benchmark.cli import main
from benchmark.features import ItemFeatures
from benchmark.io import file_lock, lock_path
from benchmark.runner.config import load_config
from benchmark.runner.pipeline import run_experiment

pytestmark = pytest.mark.slow

TINY = {
    "experiment": "tiny",
    "seeds": [0, 1],
    "dataset": {
        "name": "tiny",
        "source": "demo",
        "demo": {"seed": 0, "n_items": 60, "n_users": 50, "min_interactions": 10, "max_interactions": 12},
    },
    "features": [{"name": "pixels", "producer": "pixels"}],
    "models": [
        {"name": "Popularity", "model": "popularity"},
        {"name": "Random", "model": "random"},
        {"name": "Vision-only", "model": "vision-only", "params": {"feature": "pixels"}},
    ],
    "evaluation": {"ks": [5, 10], "metrics": ["hitrate", "mrr"], "subsets": False},
    "statistics": {"n_resamples": 1000},
    "logging": {"logger": "none"},
}


def write_config(tmp: Path, **changes) -> Path:
    cfg = json.loads(json.dumps(TINY)) | {"results_dir": str(tmp / "results"), "cache_dir": str(tmp / "cache")}
    cfg.update(changes)
    path = tmp / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_metric_list_without_recall_and_ndcg_runs_to_the_end(tmp_path: Path) -> None:
    # Regression (defect 5): the plots asked for recall and ndcg and the run crashed after every
    # unit, without provenance.json.
    result = run_experiment(load_config(write_config(tmp_path)))
    d = result.run_dir
    assert result.report_errors == []
    for name in ("provenance.json", "leaderboard.md", "metrics.json", "plots/metrics_vs_k.png", "run.log"):
        assert (d / name).is_file(), name
    assert "hitrate@5" in json.loads((d / "metrics.json").read_text())["means"]["Popularity"]
    prov = json.loads((d / "provenance.json").read_text())
    assert prov["catalogue_sha256"] == json.loads((d / "split.json").read_text())["catalogue_sha256"]
    # usual umask-derived modes, not mkstemp's 0600
    umask = os.umask(0)
    os.umask(umask)
    for f in (d / "provenance.json", d / "units" / "Popularity.json", d / "leaderboard.md"):
        assert f.stat().st_mode & 0o777 == 0o666 & ~umask, f


def test_a_failing_report_keeps_the_units_and_provenance(tmp_path: Path, monkeypatch, caplog) -> None:
    from benchmark.report import plots

    def broken(*args, **kwargs):
        raise RuntimeError("matplotlib exploded")

    monkeypatch.setattr(plots, "plot_metric_vs_k", broken)
    rc = main(["run", str(write_config(tmp_path)), "--logger", "none"])
    assert rc == 1  # reported, not silent
    (d,) = [p for p in (tmp_path / "results" / "tiny").iterdir() if p.is_dir()]
    prov = json.loads((d / "provenance.json").read_text())
    assert prov["report_errors"] == ["plots: RuntimeError: matplotlib exploded"]
    assert len(list((d / "units").glob("*.json"))) == 4 and (d / "leaderboard.md").exists()
    assert "matplotlib exploded" in (d / "run.log").read_text()


def test_torn_feature_cache_entry_is_a_miss_and_force_recomputes(tmp_path: Path, caplog) -> None:
    # Regression (defect 6): a .safetensors without its .json blocked every later run, --force included.
    cfg = load_config(write_config(tmp_path, models=[TINY["models"][2]]))
    first = run_experiment(cfg)
    fdir = tmp_path / "cache" / "tiny" / "cache" / "features"
    (meta,) = fdir.glob("pixels-*.json")
    meta.unlink()  # killed between the two writes
    second = run_experiment(cfg)
    assert "was not finished" in caplog.text and meta.exists()
    assert second.means == first.means
    (fdir / meta.name.replace(".json", ".safetensors")).write_bytes(b"garbage")  # a damaged entry
    third = run_experiment(cfg, force=False)
    assert "damaged" in caplog.text and third.means == first.means
    mtime = meta.stat().st_mtime_ns
    time.sleep(0.01)
    run_experiment(cfg, force=True)
    assert meta.stat().st_mtime_ns != mtime  # --force produced the features again
    assert ItemFeatures.load(fdir, meta.stem).provenance["cache_entry"] == meta.stem


def test_units_claimed_by_another_process_are_skipped_then_awaited(tmp_path: Path) -> None:
    # defect 14, the unit claim: while "another process" holds unit Random's lock, run_units
    # computes the other units, then waits; the other process finishes Random; nothing twice.
    from benchmark.configuration import from_dict
    from benchmark.runner.config import ExperimentConfig
    from benchmark.runner.rundir import Unit
    from benchmark.runner.stages.dataset import build_split
    from benchmark.runner.stages.units import UnitInputs, run_unit, run_units
    from benchmark.runner.tracking import Tracker

    data = json.loads(json.dumps(TINY)) | {"cache_dir": str(tmp_path / "cache"), "features": [], "seeds": [0]}
    data["models"] = TINY["models"][:2]
    cfg = from_dict(ExperimentConfig, data)
    split = build_split(cfg.dataset, cfg.cache_dir).split
    run_dir = tmp_path / "run"
    inputs = UnitInputs(split, {}, cfg.evaluation, run_dir, {})

    def trackers(name, c):
        return Tracker("none", run_dir, "p", None, group="g", name=name, config=c)

    other = Unit("Random", 0)
    out: dict = {}
    with file_lock(lock_path(other.record_path(run_dir))) as held:
        assert held
        worker = threading.Thread(target=lambda: out.update(r=run_units(cfg.models, [0], {}, inputs, trackers)))
        worker.start()
        deadline = time.monotonic() + 600
        while not Unit("Popularity", None).is_done(run_dir):
            assert worker.is_alive() and time.monotonic() < deadline
            time.sleep(0.05)
        assert not other.is_done(run_dir) and worker.is_alive()  # it waits for the claimed unit
        # the other process finishes it (run_unit: one unit, no claim)
        random = next(m for m in cfg.models if m.name == "Random")
        run_unit(other, random, None, inputs, trackers(other.key, {}))
    worker.join(600)
    ran, done = out["r"]
    assert ran == ["Popularity"] and done == ["Random__seed0"]


def test_two_processes_on_one_results_directory_share_the_units(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, models=TINY["models"][:2], features=[])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "benchmark.cli", "run", str(cfg), "--logger", "none"]
    run_once = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)  # data + split cached
    assert run_once.returncode == 0, run_once.stderr
    cmd_force = [*cmd[:-2], "--logger", "none", "-o", "seeds=[0,1,2,3,4,5]"]
    procs = [
        subprocess.Popen(cmd_force, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    dirs = {line.split()[1] for out, _ in outs for line in out.splitlines() if line.startswith("results: ")}
    assert len(dirs) == 1  # the second run resumed the first's directory
    run_log = (Path(dirs.pop()) / "run.log").read_text()
    # every unit is computed exactly once over both processes (the log line of a computed unit)
    for key in ["Popularity", *(f"Random__seed{s}" for s in range(6))]:
        assert run_log.count(f"stages.units: {key}: hitrate@5=") == 1, key


def test_export_finds_the_run_features_by_name(tmp_path: Path) -> None:
    # rough edge: `run` caches features as NAME-<hash>; `data export mmrec --image-feature NAME` failed
    result = run_experiment(load_config(write_config(tmp_path, models=[TINY["models"][2]], seeds=[0])))
    split_dir = Path(json.loads((result.run_dir / "split.json").read_text())["split_dir"])
    rc = main(["data", "export", "mmrec", str(split_dir), "--out", str(tmp_path / "mm"), "--image-feature", "pixels"])
    assert rc == 0
    exported = __import__("numpy").load(tmp_path / "mm" / "image_feat.npy")
    assert exported.shape[0] == result.split.n_items
    assert (
        main(["data", "export", "mmrec", str(split_dir), "--out", str(tmp_path / "x"), "--text-feature", "nope"]) == 2
    )


def test_console_is_quiet_and_run_log_has_everything(tmp_path: Path) -> None:
    # rough edge: Lightning's tips and litlogger advert, deprecation and non-writable-array
    # warnings, RecBole's banner and its "split RS [0.8,0.1,0.1]" line filled the console
    models = [
        {"name": "RB", "model": "recbole-bpr", "train": {"max_epochs": 1}},
        {"name": "BPR", "model": "bpr", "train": {"max_epochs": 1}},
    ]
    cfg = write_config(tmp_path, models=models, features=[], seeds=[0])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path.cwd()), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "benchmark.cli", "run", str(cfg), "--logger", "none"]
    quiet = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    noise = (
        "Tip:",
        "litlogger",
        "RS",
        "Warning",
        "deprecated",
        "not writable",
        "not be used in RecBole",
        "[Training]",
        "GPU available",
    )
    assert [n for n in noise if n in quiet.stderr] == []
    (run_dir,) = [p for p in (tmp_path / "results" / "tiny").iterdir() if p.is_dir()]
    log = (run_dir / "run.log").read_text()
    assert "Tip:" in log and "'RS': [0.8, 0.1, 0.1]" in log and "py.warnings" in log
    loud = subprocess.run([*cmd, "--force", "-v"], env=env, capture_output=True, text=True, timeout=900)
    assert loud.returncode == 0 and "Tip:" in loud.stderr
