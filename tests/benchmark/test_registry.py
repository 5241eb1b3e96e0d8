"""An outside package registers a model through the ``vlm4rec_bench.models`` entry-point group."""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark import registry
from benchmark.split import Split, empty_catalogue

EXAMPLE = Path(__file__).resolve().parents[1] / "plugin_example"


@pytest.fixture()
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """pip-install the example into a throw-away target directory and put it on sys.path."""
    target = tmp_path / "site"
    build = tmp_path / "src"  # build from a copy so the repo gets no build/ or egg-info
    import shutil

    shutil.copytree(EXAMPLE, build)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(build),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    monkeypatch.syspath_prepend(str(target))
    importlib.invalidate_caches()
    yield target
    sys.modules.pop("my_plugin", None)
    registry.MODELS._entries.pop("my-model", None)
    registry.MODELS._sources.pop("my-model", None)
    importlib.invalidate_caches()


def rotate(s: str, k: int) -> str:
    return s[k % len(s) :] + s[: k % len(s)]


def small_split() -> Split:
    # users 0-3 share items a-d, users 4-7 share w-z; each holds out different ones (valid, test)
    rows = [(f"u{u}", it, 1.0, t) for u in range(8) for t, it in enumerate(rotate("abcd" if u < 4 else "wxyz", u))]
    df = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    test = df.groupby("user").tail(1)
    valid = df.drop(test.index).groupby("user").tail(1)
    train = df.drop(test.index).drop(valid.index)
    return Split.from_parts(
        {"train": train, "valid": valid, "test": test}, empty_catalogue(df["item"].unique()), "test", {}
    )


@pytest.mark.slow
def test_entry_point_plugin_is_found_and_works(installed_plugin: Path) -> None:
    eps = [ep for ep in importlib.metadata.entry_points(group=registry.ENTRY_POINT_GROUP) if ep.name == "my-model"]
    assert [ep.value for ep in eps] == ["my_plugin:MyRecommender"]
    assert "my-model" not in registry.MODELS._entries
    registry.load_entry_points(force=True)
    assert "my-model" in registry.available_models()
    model = registry.create_model("my-model", normalize=False)
    with pytest.raises(TypeError, match="allowed"):
        registry.create_model("my-model", alpha=1)
    split = small_split()
    model.fit(split, {})
    scores = model.score(torch.arange(split.n_users))
    assert scores.shape == (split.n_users, split.n_items)
    # each user's held-out item co-occurs with their train items; the other group's items never do
    items = split.items.set_index("orig_item_id")["item_id"]
    u0 = int(split.users.set_index("orig_user_id").loc["u0", "user_id"])
    assert scores[u0, items["d"]] > 0 and scores[u0, [items[i] for i in "wxyz"]].eq(0).all()
    from benchmark.evaluation import evaluate

    recall = evaluate(model, split, part="test", ks=(1,), progress=False).means()["recall@1"]
    assert recall == pytest.approx(1.0)
    assert np.isfinite(scores.numpy()).all()
