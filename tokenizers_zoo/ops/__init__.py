"""Operators shared by every model: the nearest-codeword search (chunked torch on CPU, fused kernel on CUDA)."""

from . import cuda  # registers the CUDA kernel of the op (built lazily, at the first CUDA call)
from .nearest_codeword import METRICS, Nearest, chunk_elements, max_chunk_elements, nearest_codeword

__all__ = ["METRICS", "Nearest", "chunk_elements", "cuda", "max_chunk_elements", "nearest_codeword"]
