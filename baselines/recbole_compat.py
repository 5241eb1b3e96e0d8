"""The one place where RecBole 1.2.1 is made to work on numpy 2 and torch >= 2.6.

Import RecBole only through :func:`import_recbole` (or after calling :func:`apply_numpy_aliases`):

- numpy 2 removed ``np.float_``, ``np.complex_`` and ``np.unicode_``; RecBole's ``Config``
  (``compatibility_settings``) reads exactly these three to alias ``np.float`` & co., so they
  are added (only where missing) before RecBole is imported. Nothing else is patched in numpy.
- scipy >= 1.15 renamed the private ``dok_matrix._update`` that RecBole's graph models
  (LightGCN, NGCF, GCMC, SpectralCF, NCL, …) call to the public ``dok_matrix.update``; the old
  name is pointed at the new method (only where missing).
- ``recbole.quick_start`` is never imported: it imports ray 2.6, which fails on numpy 2.
- torch >= 2.6 defaults ``torch.load(weights_only=True)`` and RecBole's checkpoints pickle its
  ``Config``; instead of loosening ``torch.load``, :func:`in_memory_best` subclasses RecBole's
  trainer to keep the best epoch's state dict in memory (no checkpoint file at all).
- RecBole's ``Config`` overwrites ``CUDA_VISIBLE_DEVICES`` and its ``Trainer`` opens a
  TensorBoard writer under ``./log_tensorboard``; :func:`contained` keeps both side effects out
  of the caller's process environment and working directory.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

#: alias name -> what numpy 1.x meant by it; RecBole 1.2.1's Config reads these.
NUMPY_ALIASES: dict[str, object] = {
    "float_": np.float64,
    "complex_": np.complex128,
    "unicode_": np.str_,
}


def missing_numpy_aliases() -> list[str]:
    """The aliases RecBole needs that this numpy lacks (empty on numpy < 2 or once applied)."""
    return [name for name in NUMPY_ALIASES if not hasattr(np, name)]


def apply_numpy_aliases() -> list[str]:
    """Add the missing numpy 1.x aliases; returns the names it added."""
    added = missing_numpy_aliases()
    for name in added:
        setattr(np, name, NUMPY_ALIASES[name])
    return added


def apply_scipy_aliases() -> list[str]:
    """Give ``scipy.sparse.dok_matrix`` the ``_update`` RecBole calls, if this scipy lacks it."""
    import scipy.sparse as sp

    if hasattr(sp.dok_matrix, "_update") or not hasattr(sp.dok_matrix, "update"):
        return []
    sp.dok_matrix._update = sp.dok_matrix.update
    return ["dok_matrix._update"]


def import_recbole(module: str = "recbole") -> ModuleType:
    """Import a RecBole module after applying the shims; refuses ``recbole.quick_start``."""
    if module == "recbole.quick_start" or module.startswith("recbole.quick_start."):
        raise ImportError("recbole.quick_start imports ray 2.6, which does not work on numpy 2; use the core API")
    apply_numpy_aliases()
    apply_scipy_aliases()
    return importlib.import_module(module)


@contextlib.contextmanager
def contained(workdir: str | os.PathLike[str]) -> Iterator[None]:
    """Run RecBole ``Config``/``Trainer`` construction without leaking its side effects.

    ``CUDA_VISIBLE_DEVICES`` is restored afterwards, and the TensorBoard writer RecBole's
    ``Trainer`` creates is pointed at ``workdir`` instead of the current directory. pandas 3's
    copy-on-write warning about RecBole's in-place ``fillna`` is silenced: the adapter's atomic
    files have no missing values, so that fill has nothing to do. ``sys.argv`` is hidden from
    RecBole's ``Config``, which would otherwise read our own command line (``--key=value``) as
    RecBole settings and warn on the console that it "will not be used in RecBole".
    """
    trainer_mod = import_recbole("recbole.trainer.trainer")
    from torch.utils.tensorboard import SummaryWriter

    old_env = os.environ.get("CUDA_VISIBLE_DEVICES")
    old_tb = trainer_mod.get_tensorboard
    log_dir = Path(workdir) / "log_tensorboard"
    trainer_mod.get_tensorboard = lambda logger: SummaryWriter(str(log_dir))
    old_argv = sys.argv
    sys.argv = sys.argv[:1]
    try:
        with warnings.catch_warnings():
            chained = getattr(pd.errors, "ChainedAssignmentError", None)
            if chained is not None:
                warnings.filterwarnings("ignore", category=chained)
            yield
    finally:
        sys.argv = old_argv
        trainer_mod.get_tensorboard = old_tb
        if old_env is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = old_env


def in_memory_best(trainer_cls: type) -> type:
    """A subclass of RecBole's trainer that keeps the best epoch's weights in memory.

    RecBole's ``_save_checkpoint`` pickles its ``Config`` into a file that torch >= 2.6 only
    loads with ``weights_only=False``; holding a copy of the state dict (and RecBole's
    ``other_parameter``, e.g. LightGCN's propagated embeddings) avoids that file entirely.
    """

    def _save_checkpoint(self: Any, epoch: int, *args: Any, **kwargs: Any) -> None:
        self.best_state = copy.deepcopy(self.model.state_dict())
        self.best_other = copy.deepcopy(self.model.other_parameter())
        self.best_epoch = epoch

    def restore_best(self: Any) -> None:
        state = getattr(self, "best_state", None)
        if state is None:
            return  # no validation improvement recorded: keep the last weights
        self.model.load_state_dict(state)
        self.model.load_other_parameter(self.best_other)

    return type(
        f"InMemory{trainer_cls.__name__}",
        (trainer_cls,),
        {"_save_checkpoint": _save_checkpoint, "restore_best": restore_best},
    )
