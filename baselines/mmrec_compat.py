"""The one place where a user's MMRec checkout is found and made to run on numpy 2 / torch 2.x / scipy 1.17.

MMRec (https://github.com/enoche/MMRec, GPL-3.0) is a source tree, not a package: ``src/`` holds
the top-level packages ``common``, ``models``, ``utils`` and the YAML ``configs/``. Nothing of it
is copied into this project; it is imported at run time from the user's checkout, located by
:func:`locate_mmrec` (a ``mmrec_src`` parameter, else the ``VLM4REC_MMREC_SRC`` environment
variable). It was written for numpy 1.21 / torch 1.11 / scipy 1.7; each shim below says which
MMRec line needs it, and the tests check that it is needed (the line fails without it) and
sufficient (the line runs with it):

- scipy >= 1.15 renamed the private ``dok_matrix._update`` that every graph model calls in its
  ``get_norm_adj_mat`` (FREEDOM, BM3, LGMRec, SMORE, MGCN, LATTICE, LightGCN, …); the old name
  is pointed at the public ``update`` (only where missing). Shared with RecBole
  (:func:`baselines.recbole_compat.apply_scipy_aliases`).
- ``torch_scatter`` is a compiled extension without wheels for these torch builds; MMRec imports
  only ``scatter_add`` (``utils/utils.py::get_sparse_laplacian``, used by SMORE and MGCN) and
  ``scatter`` (SLMRec). :func:`install_torch_scatter_standin` registers a small module with both,
  built on ``Tensor.index_add_``/``scatter_reduce``, when the real one is not importable.
- LATTICE, MGCN, SMORE, GRCN and DA-MRS call ``tensor.cuda()`` unconditionally, so they cannot
  run on a CPU (or on a GPU other than the current one). :func:`device_redirect` makes
  ``Tensor.cuda()`` mean "to the device this model was configured for" while MMRec code runs.
- DualGNN and DRAGON write ``self.result_embed = nn.Parameter(...).to(self.device)`` and later
  assign a plain tensor to ``result_embed``. On the GPU the authors used (torch 1.11), ``.to(cuda)``
  returned a plain copy, so ``result_embed`` was never a registered parameter; on a CPU ``.to``
  returns the Parameter itself and the later assignment raises ``TypeError``.
  :func:`gpu_construction_semantics` makes ``Parameter.to`` return a plain copy while a model is
  built, which is what those lines did on a GPU.
- LayerGCN imports ``models.common.*``, a path its checkout does not have (the files are in
  ``common/``); :func:`import_mmrec` aliases those names to MMRec's ``common`` package.
- numpy 2 removed ``np.float``, which MMRec's own evaluator (``utils/metrics.py``) uses; it is
  added only by :func:`apply_numpy_aliases`, for running MMRec's ``main.py`` (the parity tool),
  because the adapter never calls MMRec's evaluator.
- ``utils/dataset.py`` imports ``lmdb`` (for raw-image end-to-end training the adapter never
  uses); :func:`check_requirements` names the missing package instead of a bare ImportError.

The two context managers patch torch process-wide while they are active (one MMRec model is
built or run at a time; nothing else in the harness calls ``.cuda()`` or ``Parameter.to``).

Models importing ``torch_geometric`` (MMGCN, GRCN, DualGNN, DRAGON, MVGAE) are refused with a
message naming the extra (``pip install 'vlm4rec-bench[mmrec]'``) when it is not installed.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
import types
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from baselines.recbole_compat import apply_scipy_aliases
from benchmark.errors import BenchError, ConfigError

#: the environment variable naming MMRec's ``src/`` folder (or the checkout's root)
ENV_VAR = "VLM4REC_MMREC_SRC"
#: MMRec's top-level packages; they are imported under these plain names
TOP_LEVEL = ("common", "models", "utils")
HOW_TO_GET = (
    "get it with `git clone https://github.com/enoche/MMRec` and give its src/ folder as the model's "
    f"`mmrec_src` parameter or in the {ENV_VAR} environment variable"
)
EXTRA_HINT = "pip install 'vlm4rec-bench[mmrec]'"


class MMRecUnavailableError(BenchError, ImportError):
    """MMRec (or a package one of its models needs) cannot be imported here."""


# ------------------------------------------------------------------------------ locating
def locate_mmrec(src: str | os.PathLike[str] | None = None) -> Path:
    """MMRec's ``src/`` folder from ``src``, else ``$VLM4REC_MMREC_SRC``; a checkout's root works too."""
    given = src if src is not None else os.environ.get(ENV_VAR)
    if not given:
        raise ConfigError(f"MMRec's source tree is needed and none was given: {HOW_TO_GET}")
    path = Path(given).expanduser().resolve()
    for candidate in (path, path / "src"):
        if (candidate / "models").is_dir() and (candidate / "configs" / "overall.yaml").is_file():
            return candidate
    raise ConfigError(f"{given} is not MMRec's src/ folder (no models/ and configs/overall.yaml there); {HOW_TO_GET}")


def model_source(src: Path, model: str) -> Path:
    """The file of MMRec model class ``model`` (MMRec's rule: ``models/<name lowercased>.py``)."""
    path = src / "models" / f"{model.lower()}.py"
    if not path.is_file():
        raise ConfigError(
            f"MMRec model {model!r} not found in {src / 'models'}; available: {', '.join(list_models(src))}"
        )
    return path


def list_models(src: Path) -> list[str]:
    """Class names of the models in a checkout (the class named like its file, any case)."""
    names = []
    for path in sorted((src / "models").glob("*.py")):
        text = path.read_text(encoding="utf-8", errors="replace")
        for line in text.splitlines():
            if line.startswith("class ") and line[6:].split("(")[0].strip().lower() == path.stem:
                names.append(line[6:].split("(")[0].strip())
                break
    return names


# ------------------------------------------------------------------------------ shims
def apply_numpy_aliases() -> list[str]:
    """``np.float`` (= the builtin ``float``, as in numpy < 1.24) for MMRec's ``utils/metrics.py``."""
    if hasattr(np, "float"):
        return []
    np.float = float  # type: ignore[attr-defined]
    return ["float"]


def _scatter_size(src: torch.Tensor, index: torch.Tensor, dim: int, dim_size: int | None) -> list[int]:
    size = list(src.shape)
    size[dim] = int(dim_size) if dim_size is not None else (int(index.max()) + 1 if index.numel() else 0)
    return size


def _broadcast_index(index: torch.Tensor, src: torch.Tensor, dim: int) -> torch.Tensor:
    """torch_scatter's rule: a 1-d index runs along ``dim`` and is broadcast over the other dims."""
    if index.dim() == src.dim():
        return index
    shape = [1] * src.dim()
    shape[dim] = -1
    return index.view(shape).expand_as(src)


def scatter(
    src: torch.Tensor,
    index: torch.Tensor,
    dim: int = -1,
    out: torch.Tensor | None = None,
    dim_size: int | None = None,
    reduce: str = "sum",
) -> torch.Tensor:
    """``torch_scatter.scatter`` for ``reduce`` in sum/add/mean/max/min/mul (empty slots are 0)."""
    dim = dim % src.dim()
    if out is None:
        out = torch.zeros(_scatter_size(src, index, dim, dim_size), dtype=src.dtype, device=src.device)
    idx = _broadcast_index(index, src, dim)
    if reduce in ("sum", "add"):
        return out.scatter_add_(dim, idx, src)
    names = {"mean": "mean", "max": "amax", "min": "amin", "mul": "prod"}
    if reduce not in names:
        raise ValueError(f"reduce must be one of sum, add, {', '.join(names)}; got {reduce!r}")
    return out.scatter_reduce_(dim, idx, src, names[reduce], include_self=False)


def scatter_add(
    src: torch.Tensor, index: torch.Tensor, dim: int = -1, out: torch.Tensor | None = None, dim_size: int | None = None
) -> torch.Tensor:
    """``torch_scatter.scatter_add``."""
    return scatter(src, index, dim, out, dim_size, reduce="sum")


def install_torch_scatter_standin() -> bool:
    """Register the stand-in as ``torch_scatter`` unless the real extension imports; True if installed."""
    current = sys.modules.get("torch_scatter")
    if current is not None:
        return getattr(current, "__vlm4rec_standin__", False)
    if importlib.util.find_spec("torch_scatter") is not None:
        try:
            importlib.import_module("torch_scatter")
            return False
        except Exception:  # a broken build (ABI mismatch) is as good as none
            sys.modules.pop("torch_scatter", None)
    mod = types.ModuleType("torch_scatter", "vlm4rec-bench's stand-in for torch_scatter (scatter, scatter_add)")
    mod.scatter = scatter  # type: ignore[attr-defined]
    mod.scatter_add = scatter_add  # type: ignore[attr-defined]
    mod.__vlm4rec_standin__ = True  # type: ignore[attr-defined]
    sys.modules["torch_scatter"] = mod
    return True


@contextlib.contextmanager
def device_redirect(device: torch.device | str) -> Iterator[None]:
    """While MMRec code runs, ``Tensor.cuda()`` moves to ``device`` (MMRec hard-codes ``.cuda()``).

    Also silences torch's deprecation warning for ``torch.sparse.FloatTensor``, which every MMRec
    graph model uses to build its adjacency (it still works on torch 2.x).
    """
    target = torch.device(device)
    original = torch.Tensor.cuda

    def cuda(self: torch.Tensor, device: Any = None, non_blocking: bool = False, **kwargs: Any) -> torch.Tensor:
        return self.to(target, non_blocking=non_blocking)

    torch.Tensor.cuda = cuda  # type: ignore[method-assign]
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*torch\.sparse\.(Float|Long|Sparse|)Tensor.*")
            warnings.filterwarnings("ignore", message=r".*Sparse invariant checks are implicitly disabled.*")
            yield
    finally:
        torch.Tensor.cuda = original  # type: ignore[method-assign]


@contextlib.contextmanager
def gpu_construction_semantics() -> Iterator[None]:
    """While an MMRec model is built, ``Parameter.to(...)`` returns a plain copy, never the Parameter.

    That is what it did for MMRec's authors, who moved CPU-made parameters to a GPU; it keeps
    DualGNN's and DRAGON's ``result_embed`` a plain tensor attribute on a CPU as well.
    """
    original = torch.nn.Parameter.to

    def to(self: torch.nn.Parameter, *args: Any, **kwargs: Any) -> torch.Tensor:
        out = torch.Tensor.to(self, *args, **kwargs)
        return out.clone() if out is self else out

    torch.nn.Parameter.to = to  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        torch.nn.Parameter.to = original  # type: ignore[method-assign]


# ------------------------------------------------------------------------------ importing
def check_requirements(src: Path, model: str | None = None) -> None:
    """Raise :class:`MMRecUnavailableError` naming what is missing for MMRec (and ``model``)."""
    needs = {"lmdb": "MMRec's utils/dataset.py imports it"}
    if model is not None:
        text = model_source(src, model).read_text(encoding="utf-8", errors="replace")
        if "torch_geometric" in text:
            needs["torch_geometric"] = f"MMRec's {model} is built on PyTorch Geometric"
    for module, why in needs.items():
        if importlib.util.find_spec(module) is None:
            raise MMRecUnavailableError(f"{module} is not installed ({why}): {EXTRA_HINT}")


def _on_path(src: Path) -> None:
    """Put ``src`` first on ``sys.path``; refuse when another ``common``/``models``/``utils`` is loaded."""
    # Both sides resolved: a checkout reached through a symbolic link is the same checkout.
    root = src.resolve()
    for name in TOP_LEVEL:
        mod = sys.modules.get(name)
        origin = getattr(mod, "__file__", None) or next(iter(getattr(mod, "__path__", []) or []), None)
        if mod is not None and (origin is None or not Path(origin).resolve().is_relative_to(root)):
            raise MMRecUnavailableError(
                f"a module named {name!r} from {origin} is already imported, so MMRec's {name!r} "
                f"(in {src}) cannot be; MMRec's packages have plain top-level names. Run MMRec models in a "
                "process that imports no other top-level 'common'/'models'/'utils'"
            )
    if str(src) not in sys.path:
        sys.path.insert(0, str(src))


def import_mmrec(src: Path, module: str) -> ModuleType:
    """Import ``module`` (e.g. ``"utils.dataloader"``) from MMRec's ``src`` with the shims applied."""
    check_requirements(src)
    apply_scipy_aliases()
    install_torch_scatter_standin()
    _on_path(src)
    _alias_models_common(src)
    return importlib.import_module(module)


def _alias_models_common(src: Path) -> None:
    """``models.common.<x>`` → MMRec's ``common.<x>`` (LayerGCN imports the former, which does not exist)."""
    if (src / "models" / "common").exists() or "models.common" in sys.modules:
        return
    common = importlib.import_module("common")
    sys.modules["models.common"] = common
    for path in sorted((src / "common").glob("*.py")):
        if path.stem != "__init__":
            sys.modules[f"models.common.{path.stem}"] = importlib.import_module(f"common.{path.stem}")


def model_class(src: Path, model: str) -> type:
    """MMRec's model class ``model`` (e.g. ``"FREEDOM"``), refusing clearly when a dependency is missing."""
    check_requirements(src, model)  # its first step: model_source, refusing an unknown model
    try:
        mod = import_mmrec(src, f"models.{model.lower()}")
    except ModuleNotFoundError as exc:
        missing = exc.name or "?"
        if missing.split(".")[0] in TOP_LEVEL:  # e.g. LayerGCN's `from models.common…`: a bug in the checkout
            raise MMRecUnavailableError(
                f"MMRec's models/{model.lower()}.py imports {missing!r}, which this checkout does not have"
            ) from exc
        raise MMRecUnavailableError(
            f"MMRec's {model} imports {missing!r}, which is not installed (pip install {missing.split('.')[0]})"
        ) from exc
    try:
        return getattr(mod, model)
    except AttributeError:
        raise ConfigError(
            f"models/{model.lower()}.py in {src} has no class {model!r}; available: {', '.join(list_models(src))}"
        ) from None
