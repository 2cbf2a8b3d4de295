"""Plain vector quantization (VQ-VAE), the base the other codebook quantizers extend.

A codebook quantizer keeps a stored *table* (``codebook``: a parameter, an EMA buffer, or a frozen buffer)
and searches an *effective codebook* derived from it by :meth:`VectorQuantizer.get_codebook`. Here they are
the same; :class:`~tokenizers_zoo.quantizers.projected.ProjectedQuantizer` maps a frozen table through a
trainable linear layer (SimVQ, VQGAN-LC) by overriding :meth:`project` and :meth:`new_table`.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from .. import distributed
from ..interfaces import Quantizer, from_vectors, to_vectors
from ..ops import METRICS, code_entropy, nearest_codeword
from ..outputs import QuantizerOutput
from .kmeans import kmeans
from .masking import flat_mask, masked_mse, select_valid
from .registry import register_quantizer
from .stats import stats_from_counts

_MIN_DEAD_USAGE = 1e-3  # running usage below which a code counts as dead in the statistics
_USAGE_FLOOR = 1e-5  # the EMA divides by the usage clamped here; an empty cluster starts at it and keeps its code
_ENTROPY_LOG_EPS = 1e-5  # LlamaGen / FQGAN compute_entropy_loss: -sum(avg_p * log(avg_p + 1e-5))


@register_quantizer("vq")
class VectorQuantizer(Quantizer):
    """Nearest code by L2 or cosine distance, straight-through gradients.

    Args:
        dim: size of the vectors (dim 1 of the latent).
        codebook_size: number of codes K.
        metric: ``"l2"`` or ``"cosine"`` (vectors and codes l2-normalised, as in Improved VQGAN / LlamaGen).
        beta: commitment weight on ``||z - sg(e)||^2``.
        codebook_weight: weight of the codebook loss ``||sg(z) - e||^2`` (gradient-trained codebooks only).
        ema: learn the codebook by exponential moving averages of assigned vectors instead of gradients.
        decay: EMA decay of the codebook statistics (also of the running usage used for dead codes).
        kmeans_init: initialise the codebook with k-means on the first training batch.
        kmeans_iters: Lloyd iterations of that k-means.
        dead_code_threshold: restart codes whose running usage (EMA of per-step counts over all ranks)
            falls below this, with vectors from the current batch. 0 disables restarts.
        entropy_weight: weight of the entropy loss ``"entropy"`` (training only; 0 disables it): the mean
            entropy of each vector's soft assignment minus the entropy of their average, which rewards
            confident assignments spread over the whole codebook (LlamaGen / FQGAN ``compute_entropy_loss``).
        entropy_temperature: the soft assignment is ``softmax(-d / entropy_temperature)`` with ``d`` the
            squared euclidean distance between the vector and each code, both l2-normalised for the cosine
            metric (``d = 2 - 2 cos``), as in the official code.
        sync: keep the codebook identical across DDP ranks (``"auto"``: whenever a process group with
            several ranks is initialised, decided at each training forward).

    EMA, k-means init and restarts write into the table, so they are refused for a frozen table (a
    subclass's fixed basis, or a table whose ``requires_grad`` was switched off). All quantizer math runs
    in float32, also under autocast; ``quantized`` has the input's dtype.
    """

    statistics_buffers = ("embed_sum", "cluster_size", "initialized")
    table_trainable = True
    """False for subclasses whose stored table is a fixed basis (a buffer that nothing may overwrite)."""

    def __init__(
        self,
        dim: int,
        codebook_size: int,
        *,
        metric: str = "l2",
        beta: float = 0.25,
        codebook_weight: float = 1.0,
        ema: bool = False,
        decay: float = 0.99,
        kmeans_init: bool = False,
        kmeans_iters: int = 10,
        dead_code_threshold: float = 0.0,
        entropy_weight: float = 0.0,
        entropy_temperature: float = 0.01,
        sync: bool | Literal["auto"] = "auto",
    ):
        super().__init__()
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if dim < 1 or codebook_size < 1 or kmeans_iters < 1:
            raise ValueError(f"dim, codebook_size and kmeans_iters must be positive, got {dim}, {codebook_size}, {kmeans_iters}")
        for name, value in (("beta", beta), ("codebook_weight", codebook_weight), ("dead_code_threshold", dead_code_threshold),
                            ("entropy_weight", entropy_weight)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        if not (math.isfinite(entropy_temperature) and entropy_temperature > 0):
            raise ValueError(f"entropy_temperature must be a finite number > 0, got {entropy_temperature}")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        if sync not in (True, False, "auto"):
            raise ValueError(f"sync must be True, False or 'auto', got {sync!r}")
        if not self.table_trainable and (ema or kmeans_init or dead_code_threshold > 0):
            raise ValueError(
                f"{type(self).__name__} keeps a frozen code table: EMA updates, k-means init and dead-code restarts "
                "would overwrite it (set ema=False, kmeans_init=False, dead_code_threshold=0)"
            )
        self.dim, self.codebook_size, self.metric = dim, codebook_size, metric
        self.beta, self.codebook_weight = beta, codebook_weight
        self.ema, self.decay = ema, decay
        self.kmeans_init, self.kmeans_iters = kmeans_init, kmeans_iters
        self.dead_code_threshold, self.sync = dead_code_threshold, sync
        self.entropy_weight, self.entropy_temperature = entropy_weight, entropy_temperature

        table = self.new_table()
        if ema:
            self.register_buffer("codebook", table)
            self.register_buffer("embed_sum", table.clone())
        elif self.table_trainable:
            self.codebook = torch.nn.Parameter(table)
        else:
            self.register_buffer("codebook", table)
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("initialized", torch.tensor(not kmeans_init))

    # ---------------------------------------------------------------- the codebook

    def new_table(self) -> torch.Tensor:
        """The initial stored table: ``[K, dim]`` uniform in ``±1/K`` (taming's VQ init), rows l2-normalised for
        the cosine metric (LlamaGen's and FQGAN's init, so the first updates move unit rows)."""
        table = torch.empty(self.codebook_size, self.dim).uniform_(-1.0 / self.codebook_size, 1.0 / self.codebook_size)
        return F.normalize(table, dim=1) if self.metric == "cosine" else table

    def project(self, table: torch.Tensor) -> torch.Tensor:
        """Stored table -> effective codes (identity here)."""
        return table

    def get_codebook(self) -> torch.Tensor:
        """The effective ``[K, dim]`` float32 codebook the lookup searches (unit rows for the cosine metric).

        Differentiable with respect to whatever :meth:`project` learns.
        """
        codebook = self.project(self.codebook.float())
        return F.normalize(codebook, dim=1) if self.metric == "cosine" else codebook

    @property
    def table_frozen(self) -> bool:
        """True when the stored table must not be written: a fixed basis, or a parameter with grads off."""
        if self.ema:
            return False
        return not self.table_trainable or not self.codebook.requires_grad

    @property
    def learns_by_gradient(self) -> bool:
        """True when the codes are trained by the codebook loss (not EMA, and something trainable)."""
        return not self.ema and any(p.requires_grad for p in self.parameters())

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        codes = F.embedding(indices, self.get_codebook())
        return codes.movedim(-1, 1)

    # ---------------------------------------------------------------- quantization

    def forward(self, z: torch.Tensor, mask: torch.Tensor | None = None) -> QuantizerOutput:
        if z.ndim < 2 or z.shape[1] != self.dim:
            raise ValueError(f"expected a latent with {self.dim} features on dim 1, got shape {tuple(z.shape)}")
        valid = flat_mask(mask, z)
        with torch.autocast(z.device.type, enabled=False):
            return self._quantize(z, valid)

    def _quantize(self, z: torch.Tensor, valid: torch.Tensor | None) -> QuantizerOutput:
        vectors = to_vectors(z).float()
        if self.metric == "cosine":
            vectors = F.normalize(vectors, dim=1)
        sync = self._sync_enabled()
        if self.training:
            self._refuse_writes_to_a_frozen_table()
            if not bool(self.initialized):
                self._init_codebook(select_valid(vectors, valid), sync)

        codebook = self.get_codebook()
        indices = nearest_codeword(vectors, codebook, metric=self.metric).indices
        codes = F.embedding(indices, codebook)
        losses = {"commitment": self.beta * masked_mse(vectors, codes.detach(), valid)}
        if self.learns_by_gradient:
            losses["codebook"] = self.codebook_weight * masked_mse(codes, vectors.detach(), valid)
        if self.training and self.entropy_weight > 0:
            losses["entropy"] = self.entropy_weight * self._entropy_loss(select_valid(vectors, valid), codebook)
        quantized = codes.detach() + (vectors - vectors.detach())  # straight-through; value is exactly the code

        counts = torch.bincount(select_valid(indices, valid), minlength=self.codebook_size).float()
        if sync:
            distributed.all_reduce_sum(counts)
        if self.training:
            self._update_codebook(select_valid(vectors, valid).detach(), select_valid(indices, valid), counts, sync)
        dead = (self.cluster_size < max(self.dead_code_threshold, _MIN_DEAD_USAGE)).sum()
        return QuantizerOutput(
            quantized=from_vectors(quantized, z.shape).to(z.dtype),
            indices=indices.reshape(z.shape[0], *z.shape[2:]),
            loss=sum(losses.values()),
            stats=stats_from_counts(counts, dead),
            losses=losses,
        )

    def _entropy_loss(self, vectors: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """``mean_i H(p_i) - H(mean_i p_i)``, ``p_i = softmax(-|x_i - c|^2 / T)``; 0 without valid vectors.

        The op's cosine distance is ``1 - cos``, half the squared distance of unit vectors, hence ``T / 2``
        there. The codebook entropy takes ``log(p + 1e-5)`` as the official code does.
        """
        if vectors.shape[0] == 0:
            return vectors.new_zeros(())
        temperature = self.entropy_temperature / (2.0 if self.metric == "cosine" else 1.0)
        entropy = code_entropy(vectors, codebook, temperature, self.metric)
        mean_probs = entropy.mean_probs
        return entropy.sample_entropy + (mean_probs * (mean_probs + _ENTROPY_LOG_EPS).log()).sum()

    def _sync_enabled(self) -> bool:
        return self.training and self.sync is not False and distributed.is_distributed()

    def _refuse_writes_to_a_frozen_table(self) -> None:
        if self.table_frozen and (not bool(self.initialized) or self.dead_code_threshold > 0):
            raise RuntimeError(
                f"the code table of this {type(self).__name__} is frozen (requires_grad=False), but k-means init or "
                "dead-code restarts would overwrite it: turn them off, or freeze the whole quantizer (eval mode)"
            )

    # ---------------------------------------------------------------- codebook updates (training only)

    @torch.no_grad()
    def _init_codebook(self, vectors: torch.Tensor, sync: bool) -> None:
        """k-means on the batch (every rank's vectors under DDP), then rank 0's result everywhere.

        Each code's running usage starts at its cluster's size on that batch (as EnCodec's codebook does), so
        dead-code restarts replace the codes k-means left (nearly) empty, not every code at the first step.
        """
        samples = distributed.all_gather_rows(vectors) if sync else vectors
        generator = torch.Generator().manual_seed(0)
        centroids = kmeans(samples, self.codebook_size, self.kmeans_iters, self.metric, generator)
        if sync:
            distributed.broadcast(centroids)
        assignment = nearest_codeword(samples.float(), centroids, metric=self.metric).indices
        cluster_sizes = torch.bincount(assignment, minlength=self.codebook_size).float().clamp_min(_USAGE_FLOOR)
        self._set_codes(torch.ones(self.codebook_size, dtype=torch.bool, device=centroids.device), centroids, cluster_sizes)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _update_codebook(self, vectors, indices, counts, sync) -> None:
        self.cluster_size.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        if self.ema:
            sums = torch.zeros_like(self.embed_sum).index_add_(0, indices, vectors)
            if sync:
                distributed.all_reduce_sum(sums)
            self.embed_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
            self.codebook.copy_(self.embed_sum / self.cluster_size.clamp_min(_USAGE_FLOOR)[:, None])
        if self.dead_code_threshold > 0:
            self._restart_dead_codes(vectors, sync)

    @torch.no_grad()
    def _restart_dead_codes(self, vectors: torch.Tensor, sync: bool) -> None:
        """Replace codes used less than the threshold by random batch vectors (rank 0's, under DDP)."""
        dead = self.cluster_size < self.dead_code_threshold
        num_dead = int(dead.sum())
        if num_dead == 0 or vectors.shape[0] == 0:
            return
        picks = torch.randint(vectors.shape[0], (num_dead,), device=vectors.device)
        replacements = vectors[picks]
        if sync:
            distributed.broadcast(replacements)
        self._set_codes(dead, replacements, self.dead_code_threshold)

    def _set_codes(self, which: torch.Tensor, vectors: torch.Tensor, usage: float | torch.Tensor) -> None:
        """Overwrite the codes selected by the mask ``which`` and restart their statistics at ``usage`` (a number,
        or one value per selected code)."""
        usage = torch.as_tensor(usage, dtype=self.cluster_size.dtype, device=vectors.device).expand(vectors.shape[0])
        self.codebook.data[which] = vectors.to(self.codebook.dtype)
        self.cluster_size[which] = usage
        if self.ema:
            self.embed_sum[which] = vectors * usage[:, None]
