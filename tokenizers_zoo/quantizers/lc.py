"""VQGAN-LC's quantizer (arXiv 2406.11837): a frozen table of image-feature centroids under a trained projector.

The table ``[N, 768]`` holds k-means centroids of pooled CLIP patch features (built by
:func:`tokenizers_zoo.training.codebook.build_codebook`); a ``Linear(768, e)`` maps it to the codes the
latents are matched against by squared L2 distance, so one small layer moves every code and none dies.
It is :class:`ProjectedQuantizer` with the official projector init and loss weights.
"""

from __future__ import annotations

from torch import nn

from .projected import ProjectedQuantizer
from .registry import register_quantizer


@register_quantizer("lc")
class LCQuantizer(ProjectedQuantizer):
    """:class:`ProjectedQuantizer` with VQGAN-LC's defaults.

    The official loss is ``rate_q * (mean((sg(z_q) - z)^2) + 0.33 * mean((z_q - sg(z))^2))`` with ``rate_q = 0.1``,
    hence ``beta=0.1`` (on the encoder) and ``codebook_weight=0.033`` (on the projector). The projector's weight
    starts at N(0, dim^-0.5), its bias at PyTorch's default. Latents are not l2-normalised: the official code
    does that only for 768-d codes without a projector, which no release uses.

    Args:
        table_dim: width of the frozen table (768 for CLIP ViT-L/14 features).
        **options: those of :class:`ProjectedQuantizer`.
    """

    def __init__(
        self, dim: int, codebook_size: int, *, table_dim: int = 768, beta: float = 0.1, codebook_weight: float = 0.033, **options
    ):
        super().__init__(dim, codebook_size, table_dim=table_dim, beta=beta, codebook_weight=codebook_weight, **options)
        nn.init.normal_(self.projection.weight, std=dim**-0.5)
