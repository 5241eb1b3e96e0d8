"""Searches over real trained models (BPR-MF on synthetic data): the test part is never read
during a search, and a search killed with SIGKILL mid-trial resumes to the same choice without
repeating finished trials."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from fixtures.search_models import SPACE, make_bpr

from benchmark.demo.synthetic import make_synthetic
from benchmark.search import SearchConfig, Space
from benchmark.search.study import Validation, run_search

pytestmark = pytest.mark.slow


class _Poison:
    """Stands in for split.test: any use raises."""

    def __getattr__(self, name):
        raise AssertionError(f"the search touched split.test ({name})")

    def __getitem__(self, key):
        raise AssertionError("the search touched split.test")

    def __len__(self):
        raise AssertionError("the search touched split.test")


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    yield


def test_selection_reads_validation_only(one_torch_thread):
    split, feats = make_synthetic(240, 120, 8, seed=4)
    policy = SearchConfig(sampler="tpe", trials=5, pruning=True, prune_startup_trials=2, seed=1)
    clean = run_search(make_bpr, Space.parse(SPACE), Validation(split, feats), policy)
    poisoned_split = dataclasses.replace(split, test=_Poison())
    poisoned = run_search(make_bpr, Space.parse(SPACE), Validation(poisoned_split, feats), policy)
    cols = ["trial", "state", "value", "params", "best_epoch", "curve"]
    assert poisoned.trace[cols].equals(clean.trace[cols])
    assert poisoned.best_params == clean.best_params
    assert clean.trace["value"].notna().sum() >= 3 and clean.trace["params"].nunique() >= 4


SCRIPT = r"""
import json, os, signal, sys
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads(1)
from benchmark.search import SearchConfig, Space
from benchmark.search.study import Validation, run_search
from benchmark.demo.synthetic import make_synthetic
from fixtures.search_models import SPACE, make_bpr

url, kill_at, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
split, feats = make_synthetic(240, 120, 8, seed=4)
fits = []

def make(assignment):
    model = make_bpr(assignment)
    fits.append(assignment)
    if len(fits) == kill_at:
        plain = model.set_validation_listener

        def set_listener(listener):
            def report(epoch, value):
                listener(epoch, value)
                if epoch == 2:
                    os.kill(os.getpid(), signal.SIGKILL)  # mid-trial, after two reported checks
            plain(report if listener is not None else None)

        model.set_validation_listener = set_listener
    return model

policy = SearchConfig(sampler="tpe", trials=6, pruning=True, prune_startup_trials=4, seed=2)
res = run_search(make, Space.parse(SPACE), Validation(split, feats), policy, storage=url, study_name="bpr")
res.trace.to_parquet(out)
print(json.dumps({{"fits": fits, "best": res.best_params, "trial": res.best_trial}}))
"""


def run_script(tmp: Path, url: str, kill_at: int, out: Path) -> subprocess.CompletedProcess:
    tests = str(Path(__file__).resolve().parents[2])
    script = tmp / "search_script.py"
    script.write_text(SCRIPT.format(tests=tests))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path.cwd()), tests, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, str(script), url, str(kill_at), str(out)], capture_output=True, text=True, env=env, timeout=600
    )


def test_sigkill_mid_trial_resumes_to_the_same_choice(tmp_path):
    whole = run_script(tmp_path, f"sqlite:///{tmp_path / 'whole.db'}", 0, tmp_path / "whole.parquet")
    assert whole.returncode == 0, whole.stderr[-3000:]
    expected = json.loads(whole.stdout.strip().splitlines()[-1])

    url = f"sqlite:///{tmp_path / 'killed.db'}"
    killed = run_script(tmp_path, url, 4, tmp_path / "unused.parquet")
    assert killed.returncode == -9, killed.stderr[-3000:]  # SIGKILL during the 4th trial
    resumed = run_script(tmp_path, url, 0, tmp_path / "resumed.parquet")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    got = json.loads(resumed.stdout.strip().splitlines()[-1])

    # the killed trial (4th) is re-run with the parameters it had drawn, then trials 5 and 6;
    # the three finished before the kill are not repeated
    assert got["fits"] == expected["fits"][3:]
    assert got["best"] == expected["best"] and got["trial"] == expected["trial"]
    cols = ["trial", "state", "value", "params", "best_epoch", "curve"]
    a, b = pd.read_parquet(tmp_path / "whole.parquet"), pd.read_parquet(tmp_path / "resumed.parquet")
    assert b[cols].equals(a[cols])
