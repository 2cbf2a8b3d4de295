"""Tokenizer base classes and the model families (importing this registers every family)."""

from .audio import AudioTokenizer
from .fqgan import FQGAN, FQGANConfig
from .graph import GraphTokenizer
from .image import ImageTokenizer
from .keywords import Keywords
from .simvq import SimVQ, SimVQConfig
from .tokenizer import Tokenizer, TokenizerConfig
from .vqvae import VQVAE, VQVAEConfig
from .wetok import WeTok, WeTokConfig
from . import vqgan, vqgan_lc  # noqa: F401  (register the taming VQGAN and VQGAN-LC entries)

__all__ = [
    "AudioTokenizer", "FQGAN", "FQGANConfig", "GraphTokenizer", "ImageTokenizer", "Keywords", "SimVQ", "SimVQConfig", "Tokenizer", "TokenizerConfig",
    "VQVAE", "VQVAEConfig", "WeTok", "WeTokConfig",
]
