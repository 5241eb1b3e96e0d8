"""Package names imported on first use (PEP 562), so that importing a light part of a package
(e.g. for the command line's choices) does not import torch through its heavy parts."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_getattr(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``name`` is imported from the submodule
    ``package.<where[name]>`` when first asked for and then kept in the package (later lookups
    are plain attribute reads); other names raise ``AttributeError``.

    Use: ``__getattr__ = lazy_getattr(__name__, {"evaluate": "evaluator", ...})``.
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
