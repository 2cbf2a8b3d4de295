"""The model registry: named configs with metadata, and ``list_models``.

Two tables: *architectures* (a tokenizer class per ``architecture`` name, recorded when the class is
defined) and *models* (a named config of an architecture, with a :class:`ModelInfo` and optionally
released weights). This module imports no model code: the classes are typed by the
:class:`TokenizerClass` protocol, and ``create_model`` lives in :mod:`tokenizers_zoo.factory`.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable, Protocol

from .config import Config
from .specs import InputSpec

MODALITIES = ("image", "audio", "graph")


@dataclass(frozen=True)
class ModelInfo:
    """Metadata of a registered model.

    ``weights`` is where this zoo's weights live: ``"bundled:<folder>"`` (shipped inside the package) or
    ``"hf-hub:<org>/<name>[@<revision>]"``; ``None`` when there are none. ``official_weights`` is where the
    authors publish theirs (the input of a converter).
    """

    name: str
    architecture: str
    modality: str
    description: str
    license: str
    codebook_size: int
    input_spec: InputSpec
    num_groups: int = 1
    tokens_per_item: int | None = None
    tokens_per_second: float | None = None
    paper: str | None = None
    paper_url: str | None = None
    official_repo: str | None = None
    official_weights: str | None = None
    weights: str | None = None
    datasets: tuple[str, ...] = ()
    metrics: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {self.modality!r}")
        if self.modality != self.input_spec.modality:
            raise ValueError(f"{self.name}: modality {self.modality!r} but a {self.input_spec.modality} input spec")

    @property
    def tokens(self) -> str:
        """Token rate in words, e.g. ``"64 per 32x32 image"`` or ``"75 per second"``."""
        if self.tokens_per_second is not None:
            return f"{self.tokens_per_second:g} per second"
        if self.tokens_per_item is None:
            return "variable"
        size = getattr(self.input_spec, "image_size", None)
        item = f"{size}x{size} image" if size else {"graph": "node"}.get(self.modality, "item")
        groups = f" x {self.num_groups} groups" if self.num_groups > 1 else ""
        return f"{self.tokens_per_item}{groups} per {item}"

    def to_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["input_spec"] = self.input_spec.to_dict()
        values["tokens"] = self.tokens
        return values


class TokenizerClass(Protocol):
    """What the registry needs of a tokenizer class: its name, its config class, and a constructor."""

    architecture: ClassVar[str]
    config_class: ClassVar[type[Config]]

    def __call__(self, config: Config) -> Any: ...


_ARCHITECTURES: dict[str, TokenizerClass] = {}
_MODELS: dict[str, tuple[ModelInfo, Config]] = {}


def register_architecture(cls: TokenizerClass) -> None:
    """Record a tokenizer class under its ``architecture`` name (called by ``Tokenizer.__init_subclass__``)."""
    known = _ARCHITECTURES.get(cls.architecture)
    if known is not None and known is not cls:
        raise ValueError(f"architecture {cls.architecture!r} is already registered by {known.__module__}.{known.__qualname__}")
    _ARCHITECTURES[cls.architecture] = cls


def architecture_class(architecture: str) -> TokenizerClass:
    if architecture not in _ARCHITECTURES:
        raise KeyError(f"unknown architecture {architecture!r}; known: {sorted(_ARCHITECTURES)}")
    return _ARCHITECTURES[architecture]


def register_model(info: ModelInfo, config: Config) -> ModelInfo:
    """Register ``config`` of architecture ``info.architecture`` under ``info.name``."""
    cls = architecture_class(info.architecture)
    if not isinstance(config, cls.config_class):
        raise TypeError(f"{info.name}: config must be a {cls.config_class.__name__}, got {type(config).__name__}")
    if info.name in _MODELS:
        raise ValueError(f"a model named {info.name!r} is already registered")
    _MODELS[info.name] = (info, config)
    return info


def unregister_model(name: str) -> None:
    _MODELS.pop(name, None)


def is_model(name: str) -> bool:
    return name in _MODELS


def model_info(name: str) -> ModelInfo:
    return _entry(name)[0]


def model_config(name: str) -> Config:
    return _entry(name)[1]


def list_models(
    pattern: str | Iterable[str] = "*", *, modality: str | None = None, pretrained: bool = False
) -> list[str]:
    """Registered names matching any of the wildcard ``pattern`` (s), sorted.

    ``modality`` keeps one modality; ``pretrained=True`` keeps models with released weights.
    """
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    names = []
    for name, (info, _) in _MODELS.items():
        if not any(fnmatch.fnmatchcase(name, p) for p in patterns):
            continue
        if modality is not None and info.modality != modality:
            continue
        if pretrained and info.weights is None:
            continue
        names.append(name)
    return sorted(names)


def _entry(name: str) -> tuple[ModelInfo, Config]:
    if name not in _MODELS:
        close = fnmatch.filter(_MODELS, f"*{name}*")
        hint = f"; did you mean {close}?" if close else f"; see list_models() ({len(_MODELS)} models)"
        raise KeyError(f"no registered model named {name!r}{hint}")
    return _MODELS[name]
