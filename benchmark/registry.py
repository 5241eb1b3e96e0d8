"""Models registered by name; other packages extend it through an entry-point group.

Inside this repository ``vlm4rec`` and ``baselines`` register their models through the same
entry-point group as outside plug-ins (``vlm4rec_bench.models`` in ``pyproject.toml``), so the
harness never imports them by name. An entry point may name a class/factory or a module; a
module is imported so that its ``@register_model`` decorators run.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from benchmark.errors import BenchError
from benchmark.recommender import Recommender

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "vlm4rec_bench.models"

_MODELS: dict[str, Callable[..., Recommender]] = {}
_SOURCES: dict[str, str] = {}
_LOADED = False


class UnknownModelError(BenchError, KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


def register_model(name: str) -> Callable[[Callable[..., Recommender]], Callable[..., Recommender]]:
    """Class/factory decorator: ``@register_model("vbpr")``."""

    def deco(factory: Callable[..., Recommender]) -> Callable[..., Recommender]:
        _add(name, factory, getattr(factory, "__module__", "?"))
        return factory

    return deco


def _add(name: str, factory: Callable[..., Recommender], source: str) -> None:
    if name in _MODELS and _MODELS[name] is not factory:
        raise ValueError(f"model name {name!r} registered twice ({_SOURCES[name]} and {source})")
    _MODELS[name] = factory
    _SOURCES[name] = source


def load_entry_points(force: bool = False) -> None:
    """Import every ``vlm4rec_bench.models`` entry point once; a broken plug-in is logged, not fatal."""
    global _LOADED
    if _LOADED and not force:
        return
    _LOADED = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken third-party plug-in must not take the harness down
            log.warning("could not load model plug-in %s (%s): %s", ep.name, ep.value, exc)
            continue
        if inspect.ismodule(obj):
            continue  # its decorators registered what it has
        if ep.name not in _MODELS:
            _add(ep.name, obj, ep.value)


def available_models() -> list[str]:
    load_entry_points()
    return sorted(_MODELS)


def get_model_factory(name: str) -> Callable[..., Recommender]:
    load_entry_points()
    try:
        return _MODELS[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; registered models: {', '.join(sorted(_MODELS)) or 'none'}"
        ) from None


def create_model(name: str, **params: Any) -> Recommender:
    """Instantiate a registered model; unknown parameters give an error naming the allowed ones."""
    factory = get_model_factory(name)
    sig = inspect.signature(factory)
    accepts_kwargs = any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values())
    if not accepts_kwargs:
        allowed = [p for p in sig.parameters if p != "self"]
        bad = [k for k in params if k not in allowed]
        if bad:
            raise TypeError(f"model {name!r} got unknown parameter(s) {bad}; allowed: {allowed}")
    return factory(**params)
