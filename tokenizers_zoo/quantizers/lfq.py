"""Lookup-free quantization (LFQ, arXiv 2310.05737) as WeTok (arXiv 2508.05599) uses it: one bit per feature.

A vector of d features becomes the code ``+1`` where the feature is > 0 and ``-1`` elsewhere (exactly 0 gives
-1), and its index is ``sum_k [z_k > 0] 2^k`` (little-endian over the features, as the official ``mask`` buffer
``2 ** arange(d)``). The 2^d codes are implicit: no table, no parameters, no state-dict keys.

WeTok's group-wise LFQ splits ``C = G * d`` latent features into G contiguous groups of d = 8 bits (features
``[g * d, (g + 1) * d)`` are group g) that share the 256 implicit codes: ``{"type": "lfq", "codebook_size": 256,
"groups": G}``, indices ``[B, G, h, w]`` (the official code returns them flattened over (b, h, w, g)). The groups
are pooled as positions (``shared_codebook`` and a ``mean`` over groups are this quantizer's defaults), so the
losses are the official ones over (batch, position, group):

- ``entropy``: ``entropy_weight * (sample_minimization_weight * H_sample - batch_maximization_weight * H_codebook)``
  with ``p = softmax(2 <z, c> / temperature)`` over the implicit codes c (z as the encoder gives it, not
  normalised), ``H_sample`` the mean of ``H(p)`` and ``H_codebook = -sum p_mean log(p_mean + 1e-5)`` of the mean
  ``p_mean`` (the official ``eps``). Computed in training only (0 in eval), as the official code does. The codes
  are all sign patterns, so ``p`` factorises over the bits (``p(c) = prod_k sigmoid(4 c_k z_k / temperature)``):
  ``H(p)`` is the sum of the bit entropies and ``p_mean`` one product of the two half-patterns' probabilities,
  ``[2^(d/2), N] @ [N, 2^(d/2)]``. Equal to the official softmax over all 2^d codes (the tests check it), and a
  16-bit code costs two 256-way tables instead of 65,536 scores per vector.
  Released weights: 0.1, 1.0, 1.0, temperature 0.01 (``codebook_enlarge_ratio`` 0).
- ``commitment``: ``beta * mean((z - sg(q))^2)``, beta 0.25.

The output is the code in value with the gradient of z (official: ``z + sg(q - z)``, equal up to rounding).
A plain LFQ is one group of d = C bits; a group holds at most 16 bits (65,536 codes), as the usage
statistics count every code.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
import torch.nn.functional as F

from .. import distributed
from ..interfaces import Quantizer, from_vectors, to_vectors
from ..outputs import QuantizerOutput
from .masking import flat_mask, masked_mse, select_valid
from .registry import register_quantizer
from .stats import stats_from_counts

MAX_BITS = 16
OFFICIAL_LOG_EPS = 1e-5  # lookup_free_quantize.py entropy_loss: log(avg_probs + eps)


@register_quantizer("lfq")
class LookupFreeQuantizer(Quantizer):
    """Sign quantization of each of ``dim`` features, ``codebook_size = 2^dim`` implicit codes of +-1.

    Args:
        dim: bits per code (features per vector on dim 1).
        codebook_size: ``2 ** dim`` (the official ``n_embed``), checked when given.
        beta: weight of the commitment loss.
        entropy_weight: weight of the entropy loss (the official loss's ``codebook_weight``).
        temperature: softmax temperature of the soft assignments in the entropy loss.
        sample_minimization_weight / batch_maximization_weight: weights of ``H_sample`` and ``H_codebook``.
    """

    group_defaults: ClassVar[dict] = {"shared_codebook": True, "group_loss": "mean"}
    """Groups share the implicit codes and the official losses average over them (see :func:`build_quantizer`)."""

    def __init__(
        self,
        dim: int,
        codebook_size: int | None = None,
        *,
        beta: float = 0.25,
        entropy_weight: float = 0.1,
        temperature: float = 0.01,
        sample_minimization_weight: float = 1.0,
        batch_maximization_weight: float = 1.0,
    ):
        super().__init__()
        if not 1 <= dim <= MAX_BITS:
            raise ValueError(f"an LFQ code has 1 to {MAX_BITS} bits, got {dim}: split wider latents into groups")
        if codebook_size is not None and codebook_size != 2**dim:
            raise ValueError(f"LFQ over {dim} features has 2^{dim} = {2**dim} codes, but codebook_size is {codebook_size}")
        weights = {"beta": beta, "entropy_weight": entropy_weight, "sample_minimization_weight": sample_minimization_weight,
                   "batch_maximization_weight": batch_maximization_weight}
        for name, value in weights.items():
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not (math.isfinite(temperature) and temperature > 0):
            raise ValueError(f"temperature must be a positive finite number, got {temperature}")
        self.dim, self.codebook_size = dim, 2**dim
        self.beta, self.entropy_weight, self.temperature = beta, entropy_weight, temperature
        self.sample_minimization_weight, self.batch_maximization_weight = sample_minimization_weight, batch_maximization_weight

    def get_codebook(self, device: torch.device | None = None) -> torch.Tensor:
        """The implicit ``[2^dim, dim]`` float32 codes: row j holds bit k of j as ``2 * bit - 1``."""
        return self.indices_to_codes(torch.arange(self.codebook_size, device=device))

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        return (index_bits(indices, self.dim) * 2 - 1).float().movedim(-1, 1)

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> QuantizerOutput:
        if z.ndim < 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected a latent with {self.dim} features on dim 1, got shape {tuple(z.shape)}")
        valid = flat_mask(mask, z)
        with torch.autocast(z.device.type, enabled=False):
            vectors = to_vectors(z).float()
            positive = vectors > 0
            codes = positive.float() * 2 - 1
            indices = (positive.long() << torch.arange(self.dim, device=z.device)).sum(-1)
            losses = {"commitment": self.beta * masked_mse(vectors, codes, valid), "entropy": self._entropy_loss(select_valid(vectors, valid))}
            quantized = codes + (vectors - vectors.detach())  # straight-through; value is exactly the code
            counts = torch.bincount(select_valid(indices, valid), minlength=self.codebook_size).float()
            if self.training and distributed.is_distributed():
                distributed.all_reduce_sum(counts)
        return QuantizerOutput(
            quantized=from_vectors(quantized, z.shape).to(z.dtype),
            indices=indices.reshape(z.shape[0], *z.shape[2:]),
            loss=sum(losses.values()),
            stats=stats_from_counts(counts, torch.zeros((), dtype=torch.int64, device=z.device)),
            losses=losses,
        )

    def _entropy_loss(self, vectors: torch.Tensor) -> torch.Tensor:
        """The weighted entropy loss of the soft assignments of ``vectors`` ``[N, dim]`` (0 outside training)."""
        if not self.training or self.entropy_weight == 0 or vectors.shape[0] == 0:
            return vectors.new_zeros(())
        sample_entropy, mean_probs = sign_code_entropy(vectors, self.temperature)
        codebook_entropy = -(mean_probs * (mean_probs + OFFICIAL_LOG_EPS).log()).sum()
        balance = self.sample_minimization_weight * sample_entropy - self.batch_maximization_weight * codebook_entropy
        return self.entropy_weight * balance


def sign_code_entropy(vectors: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean_i H(p_i), mean_i p_i)`` for ``p_i = softmax_c(2 <z_i, c> / temperature)`` over the ``2^d`` sign codes.

    Exact without enumerating the codes per vector: the softmax is a product of independent bits, bit k being
    +1 with probability ``sigmoid(4 z_ik / temperature)``. ``mean_probs`` is indexed little-endian like the codes.
    """
    logits = 4 * vectors / temperature
    log_plus, log_minus = F.logsigmoid(logits), F.logsigmoid(-logits)
    sample_entropy = -(log_plus.exp() * log_plus + log_minus.exp() * log_minus).sum(-1).mean()
    low_bits = (vectors.shape[1] + 1) // 2
    low = _pattern_probabilities(log_plus[:, :low_bits], log_minus[:, :low_bits])
    high = _pattern_probabilities(log_plus[:, low_bits:], log_minus[:, low_bits:])
    mean_probs = (high.T @ low).flatten() / vectors.shape[0]  # index = high * 2^low_bits + low
    return sample_entropy, mean_probs


def _pattern_probabilities(log_plus: torch.Tensor, log_minus: torch.Tensor) -> torch.Tensor:
    """``[N, 2^b]`` probabilities of every little-endian pattern of ``b`` independent bits (``[N, 1]`` of ones for b = 0)."""
    width = log_plus.shape[1]
    bits = index_bits(torch.arange(2**width, device=log_plus.device), width)
    return (log_minus.sum(-1, keepdim=True) + (log_plus - log_minus) @ bits.T.to(log_plus.dtype)).exp()


def index_bits(indices: torch.Tensor, width: int) -> torch.Tensor:
    """The ``width`` little-endian bits of each index: ``[..., width]`` of 0 / 1."""
    return (indices.unsqueeze(-1) >> torch.arange(width, device=indices.device)) & 1
