"""Named registries of classes (quantizers, discriminators, objectives), filled by decorators, built from
config entries such as ``{"type": "patchgan", "n_layers": 3}`` with their options checked by name and type."""

from __future__ import annotations

from typing import Any, Callable, Generic, TypeVar

from .config import ConfigError, check_options

T = TypeVar("T")
C = TypeVar("C", bound=type)


class Registry(Generic[T]):
    """Classes of one kind (``"quantizer"``, ...) by name."""

    def __init__(self, kind: str):
        self.kind = kind
        self.classes: dict[str, type[T]] = {}

    def register(self, name: str) -> Callable[[C], C]:
        """Class decorator: make the class buildable from ``{"type": name, ...}``."""

        def register(cls: C) -> C:
            known = self.classes.get(name)
            if known is not None and known is not cls:
                raise ValueError(f"{self.kind} type {name!r} is already registered by {known.__qualname__}")
            self.classes[name] = cls
            return cls

        return register

    def unregister(self, name: str) -> None:
        self.classes.pop(name, None)

    def get(self, name: Any) -> type[T]:
        if name not in self.classes:
            raise ConfigError(f"unknown {self.kind} type {name!r}; registered: {sorted(self.classes)}")
        return self.classes[name]

    def split(self, spec: Any) -> tuple[type[T], dict[str, Any]]:
        """A spec -> (its class, its remaining options, unchecked)."""
        if not isinstance(spec, dict):
            raise ConfigError(f"a {self.kind} spec must be an object with a 'type', got {spec!r}")
        options = dict(spec)
        return self.get(options.pop("type", None)), options

    def build(self, spec: Any) -> T:
        """The instance a spec describes, its options checked against the class's ``__init__``."""
        cls, options = self.split(spec)
        return cls(**check_options(cls, options))

    def __contains__(self, name: str) -> bool:
        return name in self.classes
