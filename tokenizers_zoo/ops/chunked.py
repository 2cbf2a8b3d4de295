"""Exact nearest-codeword search in plain torch, chunked so the N x K score matrix never exists whole.

Each chunk of rows is scored in fast arithmetic (float32 GEMM on centred or normalised vectors). A
rigorous rounding-error bound then marks every code that could still be among the k nearest, and only
those candidates are re-ranked by direct differences in float64, ties going to the lowest index. The
result is exactly what a float64 brute-force search returns, at the cost of one GEMM per chunk.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import torch

COSINE_EPS = 1e-12
"""Norm floor for the cosine metric (`F.normalize` semantics: zero vectors have cosine 0 to everything)."""

_UNIT_ROUNDOFF = {
    torch.float64: 2.0**-53,
    torch.float32: 2.0**-24,
}
_REDUCED_FP32_MATMUL = {"high": 2.0**-11, "medium": 2.0**-8}  # TF32 and bf16 internal precision
BLOCK = 64  # codes per block of the k = 1 search (block minima, then the best block)
_THREAD_SPLIT = threading.Lock()  # torch's thread count is process-wide: one split search at a time sets and restores it
_OVERFLOW_NORM = 1e17  # above this, squared float32 norms approach overflow: score in float64


def nearest_codeword_chunked(
    x: torch.Tensor, codebook: torch.Tensor, k: int, metric: str, max_chunk_elements: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices ``[N, k]`` (int64) and distances ``[N, k]`` (float32) of the k nearest codes of each row.

    Distances are squared euclidean for ``"l2"`` and ``1 - cos`` for ``"cosine"``. No intermediate holds
    more than ``max_chunk_elements`` elements beyond O((N + K) * D).

    On CPU with several torch threads, the rows are split between that many Python threads, each running its
    share single-threaded with ``max_chunk_elements / threads`` of the budget (torch's thread count is 1 meanwhile,
    restored after). The many short passes of a chunk then need no barrier between cores: on a loaded machine those
    barriers made the search several times slower than one big ``cdist``.
    """
    n_rows = x.shape[0]
    indices = torch.empty(n_rows, k, dtype=torch.int64, device=x.device)
    distances = torch.empty(n_rows, k, dtype=torch.float32, device=x.device)
    if n_rows == 0:
        return indices, distances
    search = _Search(x, codebook, k, metric, max_chunk_elements)
    workers = torch.get_num_threads() if x.device.type == "cpu" else 1
    if workers == 1 or n_rows < 2 * search.rows_per_chunk(workers):
        search.run(0, n_rows, indices, distances, workers=1)
        return indices, distances
    bounds = [n_rows * part // workers for part in range(workers + 1)]
    with _THREAD_SPLIT:
        torch.set_num_threads(1)
        try:
            with ThreadPoolExecutor(workers) as pool:
                jobs = [pool.submit(search.run, a, b, indices, distances, workers) for a, b in zip(bounds, bounds[1:])]
                for job in jobs:
                    job.result()
        finally:
            torch.set_num_threads(workers)
    return indices, distances


class _Search:
    """What every chunk of rows shares: the prepared codebook and the error bound's constants."""

    def __init__(self, x, codebook, k, metric, max_chunk_elements):
        self.x, self.k, self.metric, self.budget = x, k, metric, max_chunk_elements
        self.work_dtype = _work_dtype(x, codebook)
        self.gemm_codes, self.shift, self.max_code_norm = _gemm_codes(codebook, metric, self.work_dtype)
        self.unit = _unit_roundoff(self.work_dtype)
        self.codebook = codebook  # gathered rows go to float64 in exact_distances: no float64 copy of it all
        self.n_codes = codebook.shape[0]

    def rows_per_chunk(self, workers: int) -> int:
        return max(1, self.budget // workers // self.gemm_codes.shape[0])

    def run(self, first, last, indices, distances, workers):
        """Search rows ``first:last`` chunk by chunk into ``indices``/``distances`` (a 1/``workers`` budget)."""
        rows_per_chunk = min(last - first, self.rows_per_chunk(workers))
        budget = self.budget // workers
        # Reused across chunks: allocating them per chunk costs page faults that can double the run time.
        score_buffer = self.x.new_empty(rows_per_chunk, self.gemm_codes.shape[0], dtype=self.work_dtype)
        mask_buffer = self.x.new_empty(rows_per_chunk, self.n_codes, dtype=torch.bool)
        row_buffer = self.x.new_ones(rows_per_chunk, self.gemm_codes.shape[1], dtype=self.work_dtype)  # [x', 1]
        for start in range(first, last, rows_per_chunk):
            stop = min(start + rows_per_chunk, last)
            rows, gemm_rows = self.x[start:stop], row_buffer[: stop - start]
            fast = _fast_rows(rows, self.shift, self.metric, out=gemm_rows[:, :-1])
            scores = torch.mm(gemm_rows, self.gemm_codes.T, out=score_buffer[: stop - start])
            tolerance = _score_tolerance(fast, self.max_code_norm, fast.shape[1], self.unit, self.metric)
            mask = mask_buffer[: stop - start]
            if self.k == 1:
                found = _nearest_one(scores, tolerance, rows, self.codebook, self.metric, mask, budget)
            else:
                codes_only = scores[:, : self.n_codes]
                found = _nearest_k(codes_only, tolerance, self.k, rows, self.codebook, self.metric, mask, budget)
            indices[start:stop], distances[start:stop] = found


def _nearest_k(scores, tolerance, k, rows, codebook, metric, mask, max_chunk_elements):
    candidates = _candidates(scores, tolerance, k, mask)
    return _rerank_exact(rows, codebook, candidates, k, metric, max_chunk_elements)


def _nearest_one(scores, tolerance, rows, codebook, metric, mask, max_chunk_elements):
    """k = 1 in one vectorised pass over the (padded) scores: minima of blocks of BLOCK codes, then the best block.

    The best code is the answer wherever the second best trails it by more than the tolerance (the general
    candidate rule would keep it alone); other rows (near-ties, NaN) take the general path.
    """
    n = scores.shape[0]
    blocks = scores.view(n, -1, BLOCK)
    block_min = blocks.amin(dim=2)
    best_block = block_min.argmin(dim=1)
    inside = blocks[torch.arange(n, device=scores.device), best_block]
    offset = inside.argmin(dim=1, keepdim=True)
    best = inside.gather(1, offset)[:, 0]
    second = torch.minimum(
        block_min.scatter(1, best_block[:, None], float("inf")).amin(dim=1),
        inside.scatter(1, offset, float("inf")).amin(dim=1),
    )
    indices = (best_block * BLOCK + offset[:, 0])[:, None]
    distances = exact_distances(rows, codebook[indices[:, 0]], metric).to(torch.float32)[:, None]
    ambiguous = ~(second > best + tolerance)  # NaN counts as ambiguous
    if ambiguous.any():
        which = ambiguous.nonzero()[:, 0]
        indices[which], distances[which] = _nearest_k(
            scores[which, : codebook.shape[0]], tolerance[which], 1, rows[which], codebook, metric,
            mask[: len(which)], max_chunk_elements,
        )
    return indices, distances


def exact_distances(x: torch.Tensor, codes: torch.Tensor, metric: str) -> torch.Tensor:
    """Float64 distances between rows ``x [..., D]`` and codes ``[..., D]`` (broadcast), by direct difference."""
    if metric == "l2":  # one float64 buffer, in place: the same values as (x - c)^2 summed, with fewer passes
        shape = torch.broadcast_shapes(x.shape, codes.shape)
        if codes.shape == shape:
            difference = codes.to(torch.float64, copy=True).sub_(x)
        elif x.shape == shape:
            difference = x.to(torch.float64, copy=True).sub_(codes)
        else:
            difference = x.to(torch.float64) - codes.to(torch.float64)
        return difference.mul_(difference).sum(-1)
    x = x.to(torch.float64)
    codes = codes.to(torch.float64)
    dot = (x * codes).sum(-1)
    norms = x.norm(dim=-1).clamp_min(COSINE_EPS) * codes.norm(dim=-1).clamp_min(COSINE_EPS)
    return 1.0 - dot / norms


def _work_dtype(x: torch.Tensor, codebook: torch.Tensor) -> torch.dtype:
    if torch.float64 in (x.dtype, codebook.dtype):
        return torch.float64
    largest = max(_max_abs(x).item(), _max_abs(codebook).item())
    return torch.float64 if largest * x.shape[1] ** 0.5 > _OVERFLOW_NORM else torch.float32


def _max_abs(a: torch.Tensor) -> torch.Tensor:
    low, high = torch.aminmax(a.detach())  # one pass, no |a| temporary
    return torch.maximum(-low, high)


def _unit_roundoff(dtype: torch.dtype) -> float:
    unit = _UNIT_ROUNDOFF[dtype]
    if dtype == torch.float32:
        unit = _REDUCED_FP32_MATMUL.get(torch.get_float32_matmul_precision(), unit)
    return unit


def _gemm_codes(codebook: torch.Tensor, metric: str, dtype: torch.dtype):
    """The right GEMM operand giving the score in one product, the shift ``s`` applied to rows (l2; None for
    cosine) and the largest code norm in the fast space, built in one buffer (a few passes over the codebook).

    l2, codes centred by their mean s (keeps the expansion well conditioned for data with a large common offset):
    ``[x - s, 1] . [-2 (c - s), |c - s|^2] = |x - c|^2 - |x - s|^2``. cosine: ``[x_hat, 1] . [-c_hat, 0] = -cos``.
    Padded to whole blocks of BLOCK codes whose score is +inf.
    """
    n_codes, dim = codebook.shape
    gemm = codebook.new_zeros(n_codes + (-n_codes % BLOCK), dim + 1, dtype=dtype)
    gemm[n_codes:, dim] = float("inf")
    codes = gemm[:n_codes, :dim]
    if metric == "l2":
        shift = codebook.to(dtype).mean(0)
        torch.sub(codebook, shift, out=codes)
        norms = torch.linalg.vector_norm(codes, dim=1)
        gemm[:n_codes, dim] = norms.square()
        codes.mul_(-2.0)
        return gemm, shift, norms.max()
    norms = torch.linalg.vector_norm(codebook, dim=1, dtype=dtype)
    torch.div(codebook, norms.clamp_min(COSINE_EPS)[:, None], out=codes).neg_()
    return gemm, None, norms.new_ones(())


def _fast_rows(rows: torch.Tensor, shift: torch.Tensor | None, metric: str, out: torch.Tensor) -> torch.Tensor:
    """Rows in the fast space, written into ``out``: ``x - s`` (l2) or ``x / max(|x|, eps)`` (cosine)."""
    if metric == "l2":
        return torch.sub(rows, shift, out=out)
    norms = torch.linalg.vector_norm(rows, dim=1, dtype=out.dtype)
    return torch.div(rows, norms.clamp_min(COSINE_EPS)[:, None], out=out)


def _score_tolerance(fast_rows, max_code_norm, dim, unit, metric) -> torch.Tensor:
    """Twice (with margin) a bound on |computed score - exact score| for every code, per row.

    For l2 the GEMM (D + 1 terms, the code norm included), the norm and the centring each contribute at most a
    few (D + 8) u (|x| + |c|max)^2;
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
    count = max(count, k)  # rows of NaN scores select nothing: they still get k (unspecified) codes
    if count == 1:
        return best[:, None]
    return scores.topk(count, dim=1, largest=False, sorted=False).indices


def _rerank_exact(rows, codebook, candidates, k, metric, max_chunk_elements):
    """Exact float64 distances of the candidates, then the k smallest by (distance, index)."""
    n, m = candidates.shape
    step = max(1, max_chunk_elements // (m * rows.shape[1]))
    idx_out, dist_out = [], []
    for start in range(0, n, step):
        cand = candidates[start : start + step].sort(dim=1).values  # index order first: ties -> lowest index
        dist = exact_distances(rows[start : start + step, None, :], codebook[cand], metric)
        dist, order = dist.sort(dim=1, stable=True)
        idx_out.append(cand.gather(1, order[:, :k]))
        dist_out.append(dist[:, :k])
    return torch.cat(idx_out), torch.cat(dist_out).to(torch.float32)
