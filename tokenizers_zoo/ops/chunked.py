"""Exact nearest-codeword search in plain torch, chunked so the N x K score matrix never exists whole.

Each chunk of rows is scored in fast arithmetic (float32 GEMM on centred or normalised vectors). A
rigorous rounding-error bound then marks every code that could still be among the k nearest, and only
those candidates are re-ranked by direct differences in float64, ties going to the lowest index. The
result is exactly what a float64 brute-force search returns, at the cost of one GEMM per chunk.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

COSINE_EPS = 1e-12
"""Norm floor for the cosine metric (`F.normalize` semantics: zero vectors have cosine 0 to everything)."""

_UNIT_ROUNDOFF = {
    torch.float64: 2.0**-53,
    torch.float32: 2.0**-24,
}
_REDUCED_FP32_MATMUL = {"high": 2.0**-11, "medium": 2.0**-8}  # TF32 and bf16 internal precision
_OVERFLOW_NORM = 1e17  # above this, squared float32 norms approach overflow: score in float64


def nearest_codeword_chunked(
    x: torch.Tensor, codebook: torch.Tensor, k: int, metric: str, max_chunk_elements: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``[N, k]`` (int64) and distances ``[N, k]`` (float32) of the k nearest codes of each row.

    Distances are squared euclidean for ``"l2"`` and ``1 - cos`` for ``"cosine"``. No intermediate holds
    more than ``max_chunk_elements`` elements beyond O((N + K) * D).
    """
    n_rows, dim = x.shape
    indices = torch.empty(n_rows, k, dtype=torch.int64, device=x.device)
    distances = torch.empty(n_rows, k, dtype=torch.float32, device=x.device)
    if n_rows == 0:
        return indices, distances

    work_dtype = _work_dtype(x, codebook)
    codes, shift, code_bias, code_scale = _prepare_codebook(codebook.to(work_dtype), metric)
    max_code_norm = codes.norm(dim=1).max()
    unit = _unit_roundoff(work_dtype)
    exact_codebook = codebook.to(torch.float64)

    rows_per_chunk = min(n_rows, max(1, max_chunk_elements // codes.shape[0]))
    # Reused across chunks: allocating them per chunk costs page faults that can double the run time.
    score_buffer = torch.empty(rows_per_chunk, codes.shape[0], dtype=work_dtype, device=x.device)
    mask_buffer = torch.empty(rows_per_chunk, codes.shape[0], dtype=torch.bool, device=x.device)
    for start in range(0, n_rows, rows_per_chunk):
        stop = min(start + rows_per_chunk, n_rows)
        rows = x[start:stop].to(work_dtype)
        fast = rows - shift if metric == "l2" else F.normalize(rows, dim=1, eps=COSINE_EPS)
        scores = torch.addmm(code_bias, fast, codes.T, beta=1, alpha=code_scale, out=score_buffer[: stop - start])
        tolerance = _score_tolerance(fast, max_code_norm, dim, unit, metric)
        candidates = _candidates(scores, tolerance, k, mask_buffer[: stop - start])
        chunk_idx, chunk_dist = _rerank_exact(
            x[start:stop], exact_codebook, candidates, k, metric, max_chunk_elements
        )
        indices[start:stop] = chunk_idx
        distances[start:stop] = chunk_dist
    return indices, distances


def exact_distances(x: torch.Tensor, codes: torch.Tensor, metric: str) -> torch.Tensor:
    """Float64 distances between rows ``x [..., D]`` and codes ``[..., D]`` (broadcast), by direct difference."""
    x = x.to(torch.float64)
    codes = codes.to(torch.float64)
    if metric == "l2":
        return (x - codes).square().sum(-1)
    dot = (x * codes).sum(-1)
    norms = x.norm(dim=-1).clamp_min(COSINE_EPS) * codes.norm(dim=-1).clamp_min(COSINE_EPS)
    return 1.0 - dot / norms


def _work_dtype(x: torch.Tensor, codebook: torch.Tensor) -> torch.dtype:
    if torch.float64 in (x.dtype, codebook.dtype):
        return torch.float64
    largest = max(x.detach().abs().amax().item(), codebook.detach().abs().amax().item())
    return torch.float64 if largest * x.shape[1] ** 0.5 > _OVERFLOW_NORM else torch.float32


def _unit_roundoff(dtype: torch.dtype) -> float:
    unit = _UNIT_ROUNDOFF[dtype]
    if dtype == torch.float32:
        unit = _REDUCED_FP32_MATMUL.get(torch.get_float32_matmul_precision(), unit)
    return unit


def _prepare_codebook(codebook: torch.Tensor, metric: str):
    """Codes in the fast space, the shift applied to rows, and the GEMM bias/scale giving the score.

    l2: score = ||c - s||^2 - 2 (x - s).(c - s) = ||x - c||^2 - ||x - s||^2 (s = codebook mean, which keeps
    the expansion well conditioned for data with a large common offset). cosine: score = -x_hat.c_hat.
    """
    if metric == "l2":
        shift = codebook.mean(0)
        codes = codebook - shift
        return codes, shift, codes.square().sum(1), -2.0
    codes = F.normalize(codebook, dim=1, eps=COSINE_EPS)
    return codes, None, codes.new_zeros(codes.shape[0]), -1.0


def _score_tolerance(fast_rows, max_code_norm, dim, unit, metric) -> torch.Tensor:
    """Twice (with margin) a bound on |computed score - exact score| for every code, per row.

    For l2 the GEMM, the norm and the centring each contribute at most a few (D + 8) u (|x| + |c|max)^2;
    for unit vectors the normalisation adds O(D u). Any code within this of the k-th best score is kept.
    """
    if metric == "l2":
        scale = (fast_rows.norm(dim=1) + max_code_norm).square()
        return 2.5 * (dim + 8) * unit * scale
    return torch.full_like(fast_rows[:, 0], 2.5 * (3 * dim + 8) * unit)


def _candidates(scores: torch.Tensor, tolerance: torch.Tensor, k: int, mask: torch.Tensor) -> torch.Tensor:
    """Indices ``[n, m]`` (m >= k) that contain every code that may be among the k exact nearest."""
    if k == 1:
        kth, best = scores.min(dim=1)
    else:
        kth = scores.topk(k, dim=1, largest=False).values[:, -1]
    threshold = kth + tolerance
    threshold[~torch.isfinite(threshold)] = float("inf")
    torch.le(scores, threshold[:, None], out=mask)
    count = int(mask.view(torch.uint8).sum(dim=1, dtype=torch.int32).max())  # uint8 sums ~7x faster than bool
    if count == 1:
        return best[:, None]
    return scores.topk(count, dim=1, largest=False, sorted=False).indices


def _rerank_exact(rows, exact_codebook, candidates, k, metric, max_chunk_elements):
    """Exact float64 distances of the candidates, then the k smallest by (distance, index)."""
    n, m = candidates.shape
    step = max(1, max_chunk_elements // (m * rows.shape[1]))
    idx_out, dist_out = [], []
    for start in range(0, n, step):
        cand = candidates[start : start + step].sort(dim=1).values  # index order first: ties -> lowest index
        dist = exact_distances(rows[start : start + step, None, :], exact_codebook[cand], metric)
        dist, order = dist.sort(dim=1, stable=True)
        idx_out.append(cand.gather(1, order[:, :k]))
        dist_out.append(dist[:, :k])
    return torch.cat(idx_out), torch.cat(dist_out).to(torch.float32)
