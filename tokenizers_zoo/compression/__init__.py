"""Compressing a trained tokenizer after training: fewer codes by k-means (variable bitrate), dimension-wise
post-training quantization of the continuous latent, and the bits per pixel either costs."""

from .bitrate import entropy_bits, entropy_bpp, plain_bpp
from .ptq import GaussianPTQ, continuous_latents, gaussian_levels, ptq_reconstruct
from .shrink import (
    INDEX_MAP_NAME, WEIGHTINGS, codebook_tables, read_index_map, remap_indices, resolve_weighting, save_shrunk, shrink_codebook,
    usage_counts,
)

__all__ = [
    "GaussianPTQ", "INDEX_MAP_NAME", "codebook_tables", "continuous_latents", "entropy_bits", "entropy_bpp", "gaussian_levels",
    "plain_bpp", "ptq_reconstruct", "read_index_map", "remap_indices", "resolve_weighting", "save_shrunk", "shrink_codebook",
    "usage_counts", "WEIGHTINGS",
]
