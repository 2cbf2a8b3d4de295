"""Quantizers, registered by ``@register_quantizer`` and built from config entries by ``build_quantizer``."""

from ..interfaces import Quantizer
from .grouped import GroupedQuantizer
from .kmeans import kmeans
from .lc import LCQuantizer
from .lfq import LookupFreeQuantizer
from .per_group import PerGroupQuantizer
from .projected import ProjectedQuantizer
from .registry import QUANTIZERS, build_quantizer, register_quantizer
from .vq import VectorQuantizer

__all__ = [
    "GroupedQuantizer", "LCQuantizer", "LookupFreeQuantizer", "PerGroupQuantizer", "ProjectedQuantizer", "QUANTIZERS", "Quantizer",
    "VectorQuantizer", "build_quantizer", "kmeans", "register_quantizer",
]
