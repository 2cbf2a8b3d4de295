"""Converters: official checkpoints -> ordinary zoo models, one registered per family.

Each family registers a converter with :func:`register_converter`: a ``detect`` test on the loaded
checkpoint and a ``convert`` function that infers the architecture from the checkpoint itself (tensor
shapes, key presence, embedded arguments; an official YAML config is accepted but never required).
:func:`convert_official` and ``tokenizers-zoo convert`` pick the converter. Models never import this package.
"""

from . import fqgan, simvq, simvq_audio, taming, vqgan_lc, wavtokenizer, wetok  # noqa: F401  (each family's converter registers itself on import)
from .checkpoint import load_official_checkpoint
from .registry import CONVERTERS, Converter, convert_official, register_converter

__all__ = [
    "CONVERTERS", "Converter", "convert_official", "load_official_checkpoint", "register_converter",
]
