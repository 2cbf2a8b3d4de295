"""Tokenizer base classes and the model families (importing this registers every family)."""

from .audio import AudioTokenizer
from .fqgan import FQGAN, FQGANConfig
from .graph import GraphTokenizer
from .image import ImageTokenizer
from .keywords import Keywords
from .simvq import SimVQ, SimVQConfig
from .simvq_audio import SimVQAudio, SimVQAudioConfig
from .tokenizer import Tokenizer, TokenizerConfig
from .vqgraph import VQGraph, VQGraphConfig
from .vqvae import VQVAE, VQVAEConfig
from .wavtokenizer import WavTokenizer, WavTokenizerConfig
from .wetok import WeTok, WeTokConfig
from . import vqgan, vqgan_lc  # noqa: F401  (register the taming VQGAN and VQGAN-LC entries)

__all__ = [
    "AudioTokenizer", "FQGAN", "FQGANConfig", "GraphTokenizer", "ImageTokenizer", "Keywords", "SimVQ", "SimVQAudio", "SimVQAudioConfig", "SimVQConfig", "Tokenizer", "TokenizerConfig",
    "VQGraph", "VQGraphConfig", "VQVAE", "VQVAEConfig", "WavTokenizer", "WavTokenizerConfig", "WeTok", "WeTokConfig",
]
