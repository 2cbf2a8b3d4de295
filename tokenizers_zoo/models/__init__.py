"""Tokenizer base classes and the model families (importing this registers every family)."""

from .audio import AudioTokenizer
from .graph import GraphTokenizer
from .image import ImageTokenizer
from .keywords import Keywords
from .tokenizer import Tokenizer, TokenizerConfig
from .vqvae import VQVAE, VQVAEConfig

__all__ = [
    "AudioTokenizer", "GraphTokenizer", "ImageTokenizer", "Keywords", "Tokenizer", "TokenizerConfig", "VQVAE", "VQVAEConfig",
]
