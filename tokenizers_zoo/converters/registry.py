"""The converter registry and ``convert_official``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable

from ..config import read_yaml
from .checkpoint import load_official_checkpoint


@dataclass(frozen=True)
class Converter:
    """How to recognise and convert one family's official checkpoints.

    ``detect(checkpoint) -> bool``; ``convert(checkpoint, config, ema) -> model``, where ``config`` is the
    parsed official YAML or ``None`` and ``ema`` is ``None`` (the family's default), True or False.
    """

    family: str
    description: str
    detect: Callable[[dict[str, Any]], bool]
    convert: Callable[[dict[str, Any], dict[str, Any] | None, bool | None], Any]


CONVERTERS: dict[str, Converter] = {}


def register_converter(converter: Converter) -> Converter:
    """Add a family's converter (one per family)."""
    if converter.family in CONVERTERS:
        raise ValueError(f"a converter for {converter.family!r} is already registered")
    CONVERTERS[converter.family] = converter
    return converter


def convert_official(
    path: str | os.PathLike,
    family: str | None = None,
    config: str | os.PathLike | None = None,
    ema: bool | None = None,
    trust_pickle: bool = False,
):
    """The zoo model, in eval mode, equivalent to the official checkpoint at ``path``.

    ``family`` picks the converter (default: the one whose ``detect`` recognises the file); ``config`` is an
    optional official YAML; ``ema`` chooses EMA or live weights where the file has both (``None``: the
    family's default, which follows the official evaluation); ``trust_pickle`` allows files that need full
    unpickling (with a warning).
    """
    checkpoint = load_official_checkpoint(path, trust_pickle)
    official_config = read_yaml(config) if config is not None else None
    converter = _pick(checkpoint, family, path)
    return converter.convert(checkpoint, official_config, ema).eval()


def _pick(checkpoint: dict[str, Any], family: str | None, path) -> Converter:
    if family is not None:
        if family not in CONVERTERS:
            raise KeyError(f"no converter for family {family!r}; registered: {sorted(CONVERTERS)}")
        return CONVERTERS[family]
    matches = [c for c in CONVERTERS.values() if c.detect(checkpoint)]
    if len(matches) != 1:
        found = "no registered converter recognises it" if not matches else f"several converters recognise it: {[c.family for c in matches]}"
        raise ValueError(f"{path}: {found}; pass family= (--family) with one of {sorted(CONVERTERS)}")
    return matches[0]
