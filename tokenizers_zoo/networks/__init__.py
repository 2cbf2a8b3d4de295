"""Encoder and decoder networks shared by the families."""

from .blocks import AttnBlock, Downsample, ResnetBlock, Upsample
from .taming import TamingArch, TamingDecoder, TamingEncoder

__all__ = ["AttnBlock", "Downsample", "ResnetBlock", "TamingArch", "TamingDecoder", "TamingEncoder", "Upsample"]
