"""YAML → dataclasses with errors that name the bad key and the allowed values.

``from_dict(Cls, data)`` walks the dataclass fields: unknown keys, missing required keys,
wrong types and values outside a ``Literal`` or a :func:`choice` are :class:`ConfigError`s
carrying the dotted key path (``models[2].params``) so the user can find the line to fix. Then
each dataclass's ``validate(path)`` hook runs its cross-field checks; ``validate=False`` skips
the hooks (types and keys are still checked), for reading back a config that was checked when
it ran (a results directory whose plug-in models are not installed here).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, cast, get_args, get_origin, get_type_hints

import yaml

from benchmark.errors import ConfigError

T = TypeVar("T")


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; an empty file is ``{}``; a non-mapping top level is an error, and so
    is anything that is not a readable UTF-8 YAML file (a directory, a binary file)."""
    if Path(path).is_dir():
        raise ConfigError(f"{path}: is a directory; give a YAML config file (or a shipped config name)")
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {_one_line(exc)}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text (UTF-8) file: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, got {type(data).__name__}")
    return data


def from_dict(cls: type[T], data: Any, path: str = "", *, validate: bool = True) -> T:
    """Validate ``data`` into dataclass ``cls`` (recursively); ``validate=False`` skips the
    classes' ``validate`` hooks (see module docstring)."""
    where = path or "<config>"
    if isinstance(data, cls):
        return data
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping for {cls.__name__}, got {type(data).__name__} {data!r}")
    hints = get_type_hints(cls)
    # ``cls`` is any dataclass: typing has no bound for "a dataclass type", hence the cast
    fields = {f.name: f for f in dataclasses.fields(cast(Any, cls)) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        allowed = ", ".join(sorted(fields))
        raise ConfigError(f"{_join(path, str(unknown[0]))}: unknown key; allowed keys here: {allowed}")
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = _join(path, name)
        if name in data:
            kwargs[name] = check_choices(f, coerce(hints[name], data[name], key, validate=validate), key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{key}: required key is missing")
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if validate and callable(check):
        check(path)
    return obj


def choice(default: Any, choices: tuple[str, ...], **kwargs: Any) -> Any:
    """A dataclass field whose value (each item, for a list) must be one of ``choices`` (or ``None``).

    The allowed values live in one tuple owned by the module that implements them (the split
    protocols, the metrics, the releases), so a config field names the tuple instead of
    spelling the values again in a ``Literal``. A list ``default`` becomes a fresh copy per
    instance; ``metadata`` given here is kept beside the choices.
    """
    metadata = {**kwargs.pop("metadata", {}), "choices": choices}
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata, **kwargs)
    return dataclasses.field(default=default, metadata=metadata, **kwargs)


def check_choices(f: dataclasses.Field, value: Any, key: str) -> Any:
    """``value`` if the field has no ``choices`` or the value (each list item) is among them."""
    choices = f.metadata.get("choices")
    if choices is None or value is None:
        return value
    for i, v in enumerate(value if isinstance(value, list) else [value]):
        if v not in choices:
            where = f"{key}[{i}]" if isinstance(value, list) else key
            raise ConfigError(f"{where}: {v!r} is not allowed; allowed values: {', '.join(map(str, choices))}")
    return value


def coerce(tp: Any, value: Any, key: str, *, validate: bool = True) -> Any:
    """Check ``value`` against type ``tp`` (int→float widening allowed; no str→number guessing);
    ``validate`` is passed on to nested :func:`from_dict` calls."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return coerce(arg, value, key, validate=validate)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} matches none of {_type_name(tp)}")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not allowed; allowed values: {', '.join(map(str, allowed))}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(cast(type, tp), value, key, validate=validate)
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} {value!r}")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        return [coerce(item_tp, v, f"{key}[{i}]", validate=validate) for i, v in enumerate(value)]
    if origin in (dict, typing.Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__} {value!r}")
        args = get_args(tp)
        vt = args[1] if len(args) == 2 else Any
        return {str(k): coerce(vt, v, f"{key}.{k}", validate=validate) for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {type(value).__name__} {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {type(value).__name__} {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported config type {tp!r}")  # pragma: no cover - programming error


def to_dict(obj: Any) -> Any:
    """A dataclass config back to plain YAML-able data (the resolved config saved with results)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides (value parsed as YAML); list items by index: ``models.0.params.x=1``."""
    import copy

    out = copy.deepcopy(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like key.path=value")
        dotted, raw = item.split("=", 1)
        value = parse_value(raw, f"override {item!r}") if raw != "" else ""
        keys = dotted.split(".")
        node: Any = out
        for i, k in enumerate(keys[:-1]):
            node = _descend(node, k, ".".join(keys[: i + 1]), create=True)
        last = keys[-1]
        if isinstance(node, list):
            idx = _index(node, last, dotted)
            node[idx] = value
        else:
            node[last] = value
    return out


def parse_value(raw: str, where: str) -> Any:
    """A command-line value parsed as YAML (``[0,1]``, ``true``, ``1e-3``); bad YAML is a :class:`ConfigError`."""
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{where}: the value is not valid YAML ({_one_line(exc)}); quote it or fix the brackets"
        ) from None


def _one_line(exc: Exception) -> str:
    return " ".join(str(exc).split())


def _descend(node: Any, key: str, where: str, create: bool) -> Any:
    if isinstance(node, list):
        return node[_index(node, key, where)]
    if not isinstance(node, dict):
        raise ConfigError(f"override {where}: cannot descend into a {type(node).__name__}")
    if key not in node or node[key] is None:
        if not create:
            raise ConfigError(f"override {where}: no such key")
        node[key] = {}
    return node[key]


def _index(node: list, key: str, where: str) -> int:
    try:
        idx = int(key)
    except ValueError:
        raise ConfigError(f"override {where}: {key!r} is not a list index") from None
    if not -len(node) <= idx < len(node):
        raise ConfigError(f"override {where}: index {idx} out of range (list has {len(node)} items)")
    return idx


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))
