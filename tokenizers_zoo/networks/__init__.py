"""Encoder and decoder networks shared by the families."""

from .blocks import AttnBlock, Downsample, ResnetBlock, Upsample
from .magvit2 import DepthToSpaceUpsample, Magvit2Arch, Magvit2Decoder, Magvit2Encoder, Magvit2ResBlock, depth_to_space
from .taming import TamingArch, TamingDecoder, TamingEncoder

__all__ = [
    "AttnBlock", "DepthToSpaceUpsample", "Downsample", "Magvit2Arch", "Magvit2Decoder", "Magvit2Encoder", "Magvit2ResBlock",
    "ResnetBlock", "TamingArch", "TamingDecoder", "TamingEncoder", "Upsample", "depth_to_space",
]
