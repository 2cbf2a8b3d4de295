"""Model configs: dataclasses that round-trip exactly through ``config.json``."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T", bound="Config")


class ConfigError(ValueError):
    """A config that cannot be read: unknown or missing fields, or malformed JSON."""


@dataclasses.dataclass
class Config:
    """Base of every config. Fields must be JSON types, tuples of them, or dicts of them."""

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls: type[T], values: dict[str, Any]) -> T:
        """Build from a dict (as read from JSON); lists become tuples where the field is a tuple."""
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
        return type(self).from_dict({**dataclasses.asdict(self), **overrides})


def read_json(path: str | Path) -> dict[str, Any]:
    """Read a JSON object, raising :class:`ConfigError` (not a JSON traceback) when it is malformed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file {path}")
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a JSON object, got {type(values).__name__}")
    return values


def _as_field_type(value: Any, hint: Any) -> Any:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        tuple_hint = next((arg for arg in typing.get_args(hint) if typing.get_origin(arg) is tuple), None)
        return _as_field_type(value, tuple_hint) if tuple_hint is not None else value
    if origin is tuple and isinstance(value, list):
        return tuple(value)
    return value
