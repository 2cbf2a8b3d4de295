"""Operators shared by every model: the exact nearest-codeword search (chunked torch; on CUDA optionally the fused
kernel's candidates, certified row by row) and the chunked soft assignments to all codes (probabilities,
entropies, KL)."""

from . import cuda  # registers the CUDA kernel of the op (built lazily, at the first CUDA call)
from .nearest_codeword import METRICS, Nearest, chunk_elements, max_chunk_elements, nearest_codeword
from .soft_assignment import CodeEntropy, code_entropy, code_kl, code_probabilities

__all__ = [
    "METRICS",
    "CodeEntropy",
    "Nearest",
    "chunk_elements",
    "code_entropy",
    "code_kl",
    "code_probabilities",
    "cuda",
    "max_chunk_elements",
    "nearest_codeword",
]
