"""Encoder and decoder networks shared by the families."""

from .blocks import AttnBlock, Downsample, ResnetBlock, Upsample
from .llamagen import LlamaGenArch, LlamaGenDecoder, LlamaGenTrunk
from .magvit2 import DepthToSpaceUpsample, Magvit2Arch, Magvit2Decoder, Magvit2Encoder, Magvit2ResBlock, depth_to_space
from .taming import TamingArch, TamingDecoder, TamingEncoder
from .transformer import FactorizedAdapter, PositionalTransformer, ResidualAttentionBlock

__all__ = [
    "AttnBlock", "DepthToSpaceUpsample", "Downsample", "FactorizedAdapter", "LlamaGenArch", "LlamaGenDecoder", "LlamaGenTrunk",
    "Magvit2Arch", "Magvit2Decoder", "Magvit2Encoder", "Magvit2ResBlock", "PositionalTransformer", "ResidualAttentionBlock",
    "ResnetBlock", "TamingArch", "TamingDecoder", "TamingEncoder", "Upsample", "depth_to_space",
]
