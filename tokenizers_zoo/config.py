"""Configs: dataclasses that round-trip exactly through ``config.json`` and check their own fields.

Every field is type-checked against its annotation when a config is built (a string where a number
belongs, ``True`` where a count belongs, NaN or an infinite float all raise :class:`ConfigError`); then
:meth:`Config.validate` runs, where subclasses check values (calling ``super().validate()``). Fields may
be JSON types, tuples or dicts of them, ``X | None``, ``Literal[...]`` and nested configs.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
import types
import typing
from pathlib import Path
from typing import Any, Callable, Literal, TypeVar

import yaml

T = TypeVar("T", bound="Config")


class ConfigError(ValueError):
    """A config that cannot be built: unknown, missing, mistyped or out-of-range fields, or malformed JSON."""


@dataclasses.dataclass
class Config:
    """Base of every config."""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            problem = type_problem(getattr(self, f.name), hints[f.name])
            if problem:
                raise ConfigError(f"{type(self).__name__}.{f.name} must be {problem}, got {_describe(getattr(self, f.name))}")
        self.validate()

    def validate(self) -> None:
        """Value checks beyond the types (subclasses raise :class:`ConfigError` and call ``super().validate()``)."""

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls: type[T], values: dict[str, Any]) -> T:
        """Build from a dict (as read from JSON): lists become tuples, dicts become nested configs."""
        if not isinstance(values, dict):
            raise ConfigError(f"{cls.__name__} must be built from a JSON object, got {_describe(values)}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"{cls.__name__} has no field(s) {unknown}; known fields: {sorted(names)}")
        hints = typing.get_type_hints(cls)
        converted = {key: _as_field_type(value, hints[key]) for key, value in values.items()}
        try:
            return cls(**converted)
        except TypeError as error:
            raise ConfigError(f"cannot build {cls.__name__}: {error}") from error

    def replace(self: T, **overrides: Any) -> T:
        """A copy with some fields changed (unknown names raise :class:`ConfigError`)."""
        return type(self).from_dict({**{f.name: getattr(self, f.name) for f in dataclasses.fields(self)}, **overrides})


def check_positive(config: Config, *names: str) -> None:
    """Raise :class:`ConfigError` unless each named field (a number or a list of numbers) is > 0."""
    for name in names:
        value = getattr(config, name)
        values = value if isinstance(value, tuple) else (value,)
        if any(v <= 0 for v in values if v is not None):
            raise ConfigError(f"{type(config).__name__}.{name} must be positive, got {value!r}")


def check_options(cls: type, options: dict[str, Any], skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The keyword ``options`` of ``cls(...)`` (as read from JSON), checked against its ``__init__`` annotations.

    Unknown names and values that do not fit the annotation raise :class:`ConfigError`; lists become tuples
    where a tuple is annotated. ``**kwargs`` passed up to a base class count as that base's parameters.
    ``skip`` names parameters filled in by the caller rather than by the user.
    """
    accepted: dict[str, Any] = {}
    required: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        hints = typing.get_type_hints(init)
        parameters = inspect.signature(init).parameters.values()
        for p in parameters:
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in ("self", *skip):
                accepted.setdefault(p.name, hints.get(p.name, Any))
                if p.default is p.empty:
                    required.append(p.name)
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(f"{cls.__name__} has no option(s) {unknown}; its options: {sorted(accepted)}")
    missing = [name for name in required if name not in options]
    if missing:
        raise ConfigError(f"{cls.__name__} needs the option(s) {missing}")
    checked = {}
    for name, value in options.items():
        checked[name] = _as_field_type(value, accepted[name])
        problem = type_problem(checked[name], accepted[name])
        if problem:
            raise ConfigError(f"{cls.__name__} option {name!r} must be {problem}, got {_describe(value)}")
    return checked


def read_json(path: str | Path) -> dict[str, Any]:
    """Read a JSON object, raising :class:`ConfigError` (not a JSON traceback) when it is malformed."""
    return _read_mapping(Path(path), json.loads, json.JSONDecodeError, "JSON")


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping (e.g. an official config), raising :class:`ConfigError` when it is malformed."""
    return _read_mapping(Path(path), yaml.safe_load, yaml.YAMLError, "YAML")


def _read_mapping(path: Path, parse: Callable[[str], Any], errors: type[Exception], language: str) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    try:
        values = parse(path.read_text(encoding="utf-8"))
    except (errors, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid {language}: {error}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a {language} object, got {type(values).__name__}")
    return values


def _as_field_type(value: Any, hint: Any) -> Any:
    """JSON value -> the annotation's container types (tuples, nested configs); types are checked later."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        for arm in args:
            if type_problem(_as_field_type(value, arm), arm) is None:
                return _as_field_type(value, arm)
        return value
    if origin is tuple and isinstance(value, (list, tuple)):
        arms = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        return tuple(_as_field_type(v, a) for v, a in zip(value, arms)) if len(arms) == len(value) else tuple(value)
    if isinstance(hint, type) and issubclass(hint, Config) and isinstance(value, dict):
        return hint.from_dict(value)
    return value


def type_problem(value: Any, hint: Any) -> str | None:
    """None when ``value`` fits the annotation ``hint``, else a description of what was expected."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return None
    if hint is type(None) or hint is None:
        return None if value is None else "null"
    if origin in (typing.Union, types.UnionType):
        problems = [type_problem(value, arm) for arm in args]
        return None if None in problems else " or ".join(problems)
    if origin is Literal:
        return None if value in args else f"one of {list(args)}"
    if origin is tuple:
        if not isinstance(value, tuple):
            return f"a list ({_hint_name(hint)})"
        arms = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(arms) != len(value):
            return f"a list of {len(arms)} values ({_hint_name(hint)})"
        inner = [type_problem(v, a) for v, a in zip(value, arms)]
        return next((f"a list whose items are each {p}" for p in inner if p), None)
    if origin is dict:
        if not isinstance(value, dict):
            return "an object"
        key_hint, value_hint = args or (Any, Any)
        for key, item in value.items():
            problem = type_problem(key, key_hint) or type_problem(item, value_hint)
            if problem:
                return f"an object whose entries are {_hint_name(key_hint)}: {_hint_name(value_hint)} (entry {key!r}: {problem})"
        return None
    if hint is bool:
        return None if isinstance(value, bool) else "true or false"
    if hint is int:
        return None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "a number"
        return None if math.isfinite(value) else "a finite number"
    if hint is str:
        return None if isinstance(value, str) else "a string"
    if isinstance(hint, type):
        return None if isinstance(value, hint) else f"a {hint.__name__}"
    return None


def _hint_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {value!r}"[:200]
