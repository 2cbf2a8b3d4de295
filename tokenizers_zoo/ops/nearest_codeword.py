"""`tokenizers_zoo::nearest_codeword`: the single codebook lookup every quantizer uses.

Registered as a `torch.library` custom op, so it is opaque to `torch.compile` (with a fake kernel for
tracing) and a device-specific kernel can be plugged in behind it (the certified CUDA route of
:mod:`tokenizers_zoo.ops.cuda`). The default kernel, used on every device without its own, is the exact chunked
search of :mod:`tokenizers_zoo.ops.chunked`. Every route returns the float64 brute force's answer.
"""

from __future__ import annotations

import contextlib
from typing import Iterator, NamedTuple

import torch

from .chunked import nearest_codeword_chunked

METRICS = ("l2", "cosine")

_max_chunk_elements = 1 << 21  # 8 MB of float32 scores: stays in cache between passes


class Nearest(NamedTuple):
    """Result of :func:`nearest_codeword`.

    ``indices`` is int64 and ``distances`` float32, both ``[N]`` for ``k == 1`` and ``[N, k]`` (nearest
    first) otherwise. Distances are squared euclidean for ``"l2"`` and ``1 - cosine`` for ``"cosine"``.
    """

    indices: torch.Tensor
    distances: torch.Tensor


def max_chunk_elements() -> int:
    """Most elements of the N x K score matrix the chunked kernel holds at once."""
    return _max_chunk_elements


@contextlib.contextmanager
def chunk_elements(limit: int) -> Iterator[None]:
    """Temporarily bound the slice of the N x K score matrix the chunked kernel may hold."""
    global _max_chunk_elements
    if limit < 1:
        raise ValueError(f"chunk limit must be a positive number of elements, got {limit}")
    previous, _max_chunk_elements = _max_chunk_elements, int(limit)
    try:
        yield
    finally:
        _max_chunk_elements = previous


def nearest_codeword(
    x: torch.Tensor, codebook: torch.Tensor, k: int = 1, metric: str = "l2", check_finite: bool = True
) -> Nearest:
    """The ``k`` nearest codes of each row of ``x`` ``[N, D]`` in ``codebook`` ``[K, D]``.

    The answer is a float64 brute-force search of the given values, ties going to the lowest index, on every
    device and route (the CUDA kernel's candidates are certified row by row, see :mod:`tokenizers_zoo.ops.cuda`).
    No gradient flows through the search (compute differentiable distances from the gathered codes).

    Raises ``ValueError`` for mismatched shapes, devices, an unknown metric and, when ``check_finite``, for
    NaN/inf values (that check reads one flag back from the device; it is skipped under ``torch.compile``
    and CUDA-graph capture). Non-finite inputs that are not checked give unspecified indices in [0, K).
    """
    check_inputs(x, codebook, k, metric)
    if check_finite and not _tracing(x):
        _check_finite(x, codebook)
    indices, distances = torch.ops.tokenizers_zoo.nearest_codeword(x.detach(), codebook.detach(), k, metric)
    if k == 1:
        return Nearest(indices[:, 0], distances[:, 0])
    return Nearest(indices, distances)


def check_inputs(x: torch.Tensor, codebook: torch.Tensor, k: int, metric: str) -> None:
    """Raise a clear error for anything the op does not accept."""
    for name, tensor in (("x", x), ("codebook", codebook)):
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(tensor).__name__}")
        if tensor.ndim != 2:
            raise ValueError(f"{name} must be 2-D [{'N' if name == 'x' else 'K'}, D], got shape {tuple(tensor.shape)}")
        if not tensor.is_floating_point():
            raise TypeError(f"{name} must be floating point, got {tensor.dtype}")
    if x.shape[1] != codebook.shape[1]:
        raise ValueError(f"x has D={x.shape[1]} but the codebook has D={codebook.shape[1]}")
    if x.device != codebook.device:
        raise ValueError(f"x is on {x.device} but the codebook is on {codebook.device}")
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    if not 1 <= k <= codebook.shape[0]:
        raise ValueError(f"k must be in [1, K={codebook.shape[0]}], got {k}")
    if x.shape[1] == 0:
        raise ValueError("vectors must have at least one dimension (D >= 1)")


def _tracing(x: torch.Tensor) -> bool:
    return torch.compiler.is_compiling() or (x.is_cuda and torch.cuda.is_current_stream_capturing())


def _check_finite(x: torch.Tensor, codebook: torch.Tensor) -> None:
    for name, tensor in (("x", x), ("codebook", codebook)):
        if not torch.isfinite(tensor).all():
            raise ValueError(f"{name} contains NaN or infinite values; nearest codes are undefined for them")


@torch.library.custom_op("tokenizers_zoo::nearest_codeword", mutates_args=())
def _nearest_codeword_op(
    x: torch.Tensor, codebook: torch.Tensor, k: int, metric: str
) -> tuple[torch.Tensor, torch.Tensor]:
    return nearest_codeword_chunked(x, codebook, k, metric, _max_chunk_elements)


@_nearest_codeword_op.register_fake
def _(x, codebook, k, metric):
    n = x.shape[0]
    return x.new_empty((n, k), dtype=torch.int64), x.new_empty((n, k), dtype=torch.float32)


nearest_codeword_op = _nearest_codeword_op
"""The registered op object; device kernels attach with ``nearest_codeword_op.register_kernel(device)``."""
