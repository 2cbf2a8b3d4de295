"""Quantizers and the factory that builds one from a config entry such as ``{"type": "vq", ...}``."""

from __future__ import annotations

from ..interfaces import Quantizer
from .grouped import GroupedQuantizer
from .kmeans import kmeans
from .vq import VectorQuantizer

QUANTIZER_TYPES: dict[str, type[Quantizer]] = {"vq": VectorQuantizer}


def build_quantizer(spec: dict, dim: int) -> Quantizer:
    """Build the quantizer a config describes for latents with ``dim`` features.

    ``spec["type"]`` names a class in :data:`QUANTIZER_TYPES`; the other keys are its keyword arguments.
    ``"groups": G`` builds a :class:`GroupedQuantizer` of G such quantizers on ``dim / G`` features each.
    """
    options = dict(spec)
    kind = options.pop("type", None)
    if kind not in QUANTIZER_TYPES:
        raise ValueError(f"unknown quantizer type {kind!r}; known: {sorted(QUANTIZER_TYPES)}")
    groups = options.pop("groups", 1)
    if dim % groups:
        raise ValueError(f"{dim} latent features cannot be split into {groups} equal groups")
    cls = QUANTIZER_TYPES[kind]
    try:
        quantizers = [cls(dim // groups, **options) for _ in range(groups)]
    except TypeError as error:
        raise ValueError(f"bad options for quantizer {kind!r}: {error}") from error
    return quantizers[0] if groups == 1 else GroupedQuantizer(quantizers)


__all__ = ["GroupedQuantizer", "QUANTIZER_TYPES", "Quantizer", "VectorQuantizer", "build_quantizer", "kmeans"]
