"""Soft assignments of vectors to every code of a codebook, and the entropy and KL losses built on them.

``p_i = softmax(-distance(x_i, codebook) / temperature)`` over the K codes, with the distances of
:func:`~tokenizers_zoo.ops.nearest_codeword` (squared euclidean for ``"l2"``, ``1 - cos`` for ``"cosine"``).
:func:`code_probabilities` returns the dense ``[N, K]`` matrix (small problems and tests). :func:`code_entropy`
(FQGAN / WeTok entropy losses) and :func:`code_kl` (VQGraph soft-code distillation) reduce it over chunks of
``max(1, max_chunk_elements() // K)`` rows, and their backward pass recomputes one chunk at a time, so the
N x K matrix never exists whole: beyond O((N + K) * D), only one chunk's intermediates are live.

Softmax ignores a per-row constant, so the logits are computed without it: ``(2 x'.c' - |c'|^2) / T`` with
x' and c' centred by the codebook mean for ``"l2"`` (well conditioned for data with a large common offset),
and ``x_hat.c_hat / T`` for ``"cosine"``. Math is float32 (float64 if any input is float64), autocast off.
"""

from __future__ import annotations

import math
import numbers
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .chunked import COSINE_EPS
from .nearest_codeword import _tracing, check_inputs, max_chunk_elements


class CodeEntropy(NamedTuple):
    """Result of :func:`code_entropy` (natural log; all differentiable)."""

    sample_entropy: torch.Tensor
    """Scalar: mean over rows of H(p_i)."""
    codebook_entropy: torch.Tensor
    """Scalar: H(mean_i p_i)."""
    mean_probs: torch.Tensor
    """``[K]``: mean_i p_i."""


def code_probabilities(
    x: torch.Tensor, codebook: torch.Tensor, temperature: float = 1.0, metric: str = "l2"
) -> torch.Tensor:
    """Dense soft assignments ``[N, K]``: row i is ``softmax(-distance(x_i, codebook) / temperature)``.

    ``x`` is ``[N, D]``, ``codebook`` ``[K, D]``. Holds the whole N x K matrix (use :func:`code_entropy` or
    :func:`code_kl` for large problems). Differentiable; float32, or float64 if an input is float64.
    """
    _check_temperature(temperature)
    _check(x, codebook, metric)
    with _no_autocast(x.device):
        rows, codes, bias = _prepare(x, codebook, temperature, metric, _work_dtype(x, codebook))
        return _log_probs(rows, codes, bias).exp()


def code_entropy(
    x: torch.Tensor, codebook: torch.Tensor, temperature: float = 1.0, metric: str = "l2"
) -> CodeEntropy:
    """Per-sample and codebook entropies of the soft assignments of ``x`` ``[N, D]`` to ``codebook`` ``[K, D]``.

    ``sample_entropy = mean_i H(p_i)``, ``codebook_entropy = H(mean_probs)``, ``mean_probs = mean_i p_i``, with
    ``p_i`` as in :func:`code_probabilities` and ``H(p) = -sum_k p_k log p_k``. FQGAN and WeTok minimise
    ``sample_entropy - codebook_entropy``. Computed in chunks of rows (forward and backward).
    """
    _check_temperature(temperature)
    _check(x, codebook, metric)
    n_rows = x.shape[0]
    with _no_autocast(x.device):
        prepared = _prepare(x, codebook, temperature, metric, _work_dtype(x, codebook))
        entropy_sum, prob_sum = _RowChunkedSum.apply(_entropy_sums, 1, _rows_per_chunk(codebook), *prepared)
        mean_probs = prob_sum / n_rows
        # Codes no row can reach underflow to 0: clamping only the log keeps their term (0) and gradient finite.
        log_mean = mean_probs.clamp_min(torch.finfo(mean_probs.dtype).tiny).log()
        return CodeEntropy(entropy_sum / n_rows, -(mean_probs * log_mean).sum(), mean_probs)


def code_kl(
    x: torch.Tensor,
    codebook: torch.Tensor,
    target_x: torch.Tensor,
    target_codebook: torch.Tensor | None = None,
    temperature: float = 1.0,
    metric: str = "l2",
    target_metric: str | None = None,
) -> torch.Tensor:
    """Scalar ``mean_i KL(q_i || p_i)`` between target and predicted soft assignments (VQGraph distillation).

    ``p_i`` assigns row i of ``x`` ``[N, D]`` to ``codebook`` ``[K, D]`` with ``metric``; ``q_i`` assigns row i of
    ``target_x`` ``[N, D']`` to ``target_codebook`` ``[K, D']`` (default: ``codebook``) with ``target_metric``
    (default: ``metric``); both use ``temperature``. ``KL(q || p) = sum_k q_k (log q_k - log p_k)``, from
    log-softmax on both sides. Gradients reach every input that requires grad (detach a teacher yourself).
    Computed in chunks of rows (forward and backward).
    """
    target_codebook = codebook if target_codebook is None else target_codebook
    target_metric = metric if target_metric is None else target_metric
    _check_temperature(temperature)
    _check(x, codebook, metric)
    try:
        _check(target_x, target_codebook, target_metric)
    except (TypeError, ValueError) as error:
        raise type(error)(f"target side (target_x, target_codebook, target_metric): {error}") from None
    if target_x.shape[0] != x.shape[0]:
        raise ValueError(f"x has N={x.shape[0]} rows but target_x has N={target_x.shape[0]}; rows must be aligned")
    if target_codebook.shape[0] != codebook.shape[0]:
        raise ValueError(f"codebook has K={codebook.shape[0]} codes, target_codebook has K={target_codebook.shape[0]}")
    if target_x.device != x.device:
        raise ValueError(f"x is on {x.device} but target_x is on {target_x.device}")
    dtype = _work_dtype(x, codebook, target_x, target_codebook)
    with _no_autocast(x.device):
        rows, codes, bias = _prepare(x, codebook, temperature, metric, dtype)
        target_rows, target_codes, target_bias = _prepare(target_x, target_codebook, temperature, target_metric, dtype)
        (kl_sum,) = _RowChunkedSum.apply(
            _kl_sum, 2, _rows_per_chunk(codebook), rows, target_rows, codes, bias, target_codes, target_bias
        )
        return kl_sum / x.shape[0]


def _prepare(x, codebook, temperature, metric, dtype):
    """Rows ``[N, D]``, codes ``[K, D]`` and bias ``[K]`` such that the logits are ``bias + rows @ codes.T``."""
    x, codebook = x.to(dtype), codebook.to(dtype)
    if metric == "l2":
        shift = codebook.detach().mean(0)  # distances do not depend on a common shift: no gradient through it
        codes = codebook - shift
        return (x - shift) * (2.0 / temperature), codes, codes.square().sum(1) / -temperature
    codes = F.normalize(codebook, dim=1, eps=COSINE_EPS)
    return F.normalize(x, dim=1, eps=COSINE_EPS) / temperature, codes, codes.new_zeros(codes.shape[0])


def _log_probs(rows, codes, bias):
    return torch.log_softmax(torch.addmm(bias, rows, codes.T), dim=1)


def _entropy_sums(rows, codes, bias):
    """Sums over a chunk of rows of ``H(p_i)`` (scalar) and of ``p_i`` (``[K]``)."""
    log_p = _log_probs(rows, codes, bias)
    p = log_p.exp()
    return -(p * log_p).sum(), p.sum(0)


def _kl_sum(rows, target_rows, codes, bias, target_codes, target_bias):
    """Sum over a chunk of rows of ``KL(q_i || p_i)``, as a 1-tuple."""
    log_p = _log_probs(rows, codes, bias)
    log_q = _log_probs(target_rows, target_codes, target_bias)
    return ((log_q.exp() * (log_q - log_p)).sum(),)


class _RowChunkedSum(torch.autograd.Function):
    """``sum over row chunks of chunk_fn(*inputs)`` (a tuple of tensors) with a chunk-by-chunk backward.

    The first ``n_row_inputs`` inputs are sliced by rows, the others go whole to every chunk. The forward keeps
    only the inputs; the backward rebuilds one chunk's graph at a time, takes its gradients with
    ``torch.autograd.grad`` and drops it before the next chunk, so one chunk's intermediates are live at most.
    """

    @staticmethod
    def forward(ctx, chunk_fn: Callable, n_row_inputs: int, rows_per_chunk: int, *inputs: torch.Tensor):
        ctx.chunk_fn, ctx.n_row_inputs, ctx.rows_per_chunk = chunk_fn, n_row_inputs, rows_per_chunk
        ctx.save_for_backward(*inputs)
        totals = None
        for chunk in _row_chunks(inputs[0].shape[0], rows_per_chunk):
            sums = chunk_fn(*_slice_rows(inputs, n_row_inputs, chunk))
            totals = sums if totals is None else tuple(total + part for total, part in zip(totals, sums))
        return totals

    @staticmethod
    @once_differentiable
    def backward(ctx, *grad_totals: torch.Tensor):
        inputs, needs = ctx.saved_tensors, ctx.needs_input_grad[3:]
        grads = [torch.zeros_like(tensor) if need else None for tensor, need in zip(inputs, needs)]
        for chunk in _row_chunks(inputs[0].shape[0], ctx.rows_per_chunk):
            parts = _slice_rows(inputs, ctx.n_row_inputs, chunk)
            leaves = [part.detach().requires_grad_(need) for part, need in zip(parts, needs)]
            with torch.enable_grad(), _no_autocast(inputs[0].device):
                sums = ctx.chunk_fn(*leaves)
            chunk_grads = iter(torch.autograd.grad(sums, [leaf for leaf in leaves if leaf.requires_grad], grad_totals))
            for index, (grad, need) in enumerate(zip(grads, needs)):
                if need:
                    (grad[chunk] if index < ctx.n_row_inputs else grad).add_(next(chunk_grads))
        return (None, None, None, *grads)


def _row_chunks(n_rows: int, rows_per_chunk: int):
    return (slice(start, min(start + rows_per_chunk, n_rows)) for start in range(0, n_rows, rows_per_chunk))


def _slice_rows(inputs, n_row_inputs: int, chunk: slice):
    return [tensor[chunk] if index < n_row_inputs else tensor for index, tensor in enumerate(inputs)]


def _rows_per_chunk(codebook: torch.Tensor) -> int:
    return max(1, max_chunk_elements() // codebook.shape[0])


def _work_dtype(*tensors: torch.Tensor) -> torch.dtype:
    return torch.float64 if any(tensor.dtype == torch.float64 for tensor in tensors) else torch.float32


def _no_autocast(device: torch.device):
    return torch.autocast(device.type, enabled=False)


def _check_temperature(temperature) -> None:
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or not 0 < temperature < math.inf:
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")


def _check(x, codebook, metric: str) -> None:
    """Raise a clear error for anything the soft-assignment ops do not accept (one side: vectors and codebook)."""
    for name, tensor in (("x", x), ("codebook", codebook)):
        if isinstance(tensor, torch.Tensor) and tensor.ndim == 2 and tensor.shape[0] == 0:
            raise ValueError(f"{name} is empty (shape {tuple(tensor.shape)}); need N >= 1 rows and K >= 1 codes")
    check_inputs(x, codebook, 1, metric)
    if not _tracing(x):
        for name, tensor in (("x", x), ("codebook", codebook)):
            if not torch.isfinite(tensor).all():
                raise ValueError(f"{name} contains NaN or infinite values; code probabilities are undefined for them")
