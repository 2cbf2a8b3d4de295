"""Certified nearest-codeword search: the CUDA kernel's algorithm in plain torch, on any device, without host sync.

1. Fast scores, rounded exactly as the kernel rounds them: ``s_j = b_j - 2 (x - m).(c_j - m)``, rows and codes
   normalised (``cosine``) and centred by the mean code ``m`` in float32, rounded to bfloat16 and multiplied with
   float32 accumulation (bf16 products are exact in float32); the code bias ``b_j`` is ``|c_j - m|^2`` (``l2``) or
   ``|c_j - m|^2 + 1 - |c_j|^2`` on unit vectors (``cosine``, see :func:`ideal_operands`). For D <= 32 the bias
   enters the product as two extra bf16 columns (hi, lo), otherwise it is added in float32; for D <= 3 rows and
   codes are bf16 hi + lo pairs whose four products fill columns the tensor-core tile would pad with zeros anyway.
2. Candidate lists as the kernel keeps them: codes are dealt to ``8 * splits`` lists (by split, warp and lane of
   the kernel's 128-code tiles) and each list keeps its ``depth`` best scores (4 for k <= 4, else 16).
3. A rigorous bound ``E`` on ``|s_j - S_j|`` for every code (``S_j`` the exact score, whose order is the order of
   the exact distances), see :func:`score_tolerance`: the rounding of the inputs (float32 conversion, centring or
   normalisation, bf16) is measured on the operands actually used, the float32 accumulation over D and the norm
   terms are bounded a priori, and the float64 reference's own rounding is added.
4. Exact float64 distances of the candidates (the formula of :func:`~tokenizers_zoo.ops.chunked.exact_distances`),
   the k best by (distance, index).
5. Certificate per row: every code outside the lists scores at least ``floor`` (the smallest last entry of a
   list), so its exact score is at least ``floor - E``, while k candidates score at most ``kth + E`` (``kth`` the
   k-th smallest candidate score). ``floor - kth > 2 E`` therefore proves that no other code can be among the k
   nearest, whatever the tie-break. Rows without the proof take the exact fallback.

The fallback has two forms, both exact on every input. ``"dense"`` runs the float64 brute force on every row and
selects per row with ``torch.where``: no host sync and no data-dependent shape (CUDA-graph capture, compile), at
the cost of a full exact search. ``"compact"`` gathers the failed rows (one read-back of their indices), proposes
them again with bf16 hi + lo operands (the precise pass: about 2^-16 relative rounding for four times the product
width; it certifies dense and low-rank codebooks) and re-runs only the rows still unproven through the exact
chunked search: the eager choice. Plain torch cannot skip the work of certified rows without that read-back; a
device kernel can (rows it certifies return early).
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import torch

from .chunked import COSINE_EPS, exact_distances, nearest_codeword_chunked

U_ACC = 2.0**-22
"""Float32 accumulation unit: 4 x round-to-nearest (2^-24), to cover tensor cores' truncating adders (an assumption
about the hardware, stated here and tested by the GPU tests; everything else in the bound is measured or IEEE)."""
U_FP64 = 2.0**-53
TINY = 2.0**-124
"""Absolute error of a value or product flushed to zero below the normal range (2^-126), with margin."""
SCORE_LIMIT = 2.0**100
"""Scores stay far below float32 overflow when the operand norms keep them under this."""
LISTS_PER_SPLIT = 8  # the kernel's kListsPerCta: 2 warps along the codes x 4 lanes of a quad
TILE_CODES = 128  # the kernel's kBN
AUGMENT_MAX_DIM = 32  # D <= 32: the code bias folded into the product as two bf16 columns
HI_LO_MAX_DIM = 3  # D <= 3: operands as bf16 hi + lo, all four products (4 D + 2 <= 16, the MMA's K width)
"""Above it, hi + lo operands are the precise pass's: rows the first pass cannot prove are proposed again with them
(four times the product width, about 2^-16 instead of 2^-8 relative rounding) before any exact search."""


class CertifiedSearch(NamedTuple):
    """Result of :func:`certified_nearest_codeword`: ``indices`` int64 ``[N, k]``, ``distances`` float32 ``[N, k]``
    (nearest first), ``certified`` bool ``[N]`` (False: the row's answer came from the exact fallback)."""

    indices: torch.Tensor
    distances: torch.Tensor
    certified: torch.Tensor


class FastOperands(NamedTuple):
    """The kernel's bf16 operands (held in float32) and the per-row score error bound."""

    rows: torch.Tensor  # [N, D'] -2 x~ (hi, hi, lo, lo blocks when hi + lo; then two columns of 1 when augmented)
    codes: torch.Tensor  # [K, D'] c~ (hi, lo, hi, lo blocks when hi + lo; then bf16 hi, lo of the bias when augmented)
    bias: torch.Tensor  # [K] float32 code bias added to the product (zeros when augmented)
    center: torch.Tensor  # [D] float32 m, subtracted from rows and codes (after normalisation for cosine)
    tolerance: torch.Tensor  # [N] float64: E, a bound on |fast score - exact score| for every code


class IdealOperands(NamedTuple):
    """The exact operands the fast ones approximate, in float64, with the float64 computation's own error."""

    rows: torch.Tensor  # [N, D] x - m (l2) or x_hat - m (cosine)
    codes: torch.Tensor  # [K, D] c - m or c_hat - m
    bias: torch.Tensor  # [K] |c - m|^2 (l2) or |c_hat - m|^2 + 1 - |c_hat|^2 (cosine)
    row_error: torch.Tensor  # [N] bound on |rows - exact|
    code_error: torch.Tensor  # () bound on max_j |codes_j - exact_j|
    bias_error: torch.Tensor  # () bound on max_j |bias_j - exact_j|


def list_depth(k: int) -> int:
    """Entries per candidate list (the kernel's ``lists_c``)."""
    return 4 if k <= 4 else 16


def ideal_operands(x: torch.Tensor, codebook: torch.Tensor, metric: str, center: torch.Tensor) -> IdealOperands:
    """Rows, codes and code bias of the exact score ``S_j = b_j - 2 (x - m).(c_j - m)`` in float64.

    Whatever the centre ``m``, ``S_j`` orders codes as the exact distances do: l2 ``S_j = |x - c_j|^2 - |x - m|^2``;
    cosine (unit vectors ``v / max(|v|, eps)``) ``S_j = 2 (1 - x_hat.c_hat_j) + 2 x_hat.m - |m|^2 - 1``. Centring is
    what keeps bf16 usable on codebooks that share a large common part (the cosine score's bias absorbs ``-2 m.c_hat``,
    so the product only sees the small centred vectors).
    """
    x64, c64, shift = _exact_vectors(x, metric), _exact_vectors(codebook, metric), center.to(torch.float64)
    margin = (x.shape[1] + 8) * 2.0**-50  # relative rounding of float64 differences, norms and quotients, with margin
    rows, codes = x64 - shift, c64 - shift
    scale_x, scale_c = rows.norm(dim=1), codes.norm(dim=1).max()
    if metric == "cosine":  # the unit vectors' own rounding is relative to 1, not to the centred size
        scale_x, scale_c = scale_x + x64.norm(dim=1), scale_c + c64.norm(dim=1).max()
    bias = _bias(c64, shift, metric)
    return IdealOperands(rows, codes, bias, margin * scale_x, margin * scale_c, 4 * margin * scale_c**2)


def center_and_bias(codebook: torch.Tensor, metric: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The float32 centre ``m`` (the mean code, of the unit codes for cosine; any value keeps the search exact) and
    the float32 code bias the kernel adds (the float64 ideal bias, rounded once), from one float64 pass."""
    codes = _exact_vectors(codebook, metric)
    center = codes.mean(0).to(torch.float32)
    return center, _bias(codes, center.to(torch.float64), metric).to(torch.float32)


def _exact_vectors(a: torch.Tensor, metric: str) -> torch.Tensor:
    """``a`` (l2) or its unit rows (cosine) in float64."""
    a = a.to(torch.float64)
    return _unit(a) if metric == "cosine" else a


def _bias(codes64: torch.Tensor, shift: torch.Tensor, metric: str) -> torch.Tensor:
    """``|c - m|^2``, plus ``1 - |c|^2`` for unit codes (0 unless the code was shorter than eps)."""
    bias = (codes64 - shift).square().sum(1)
    return bias + (1.0 - codes64.square().sum(1)) if metric == "cosine" else bias


def prepare(x: torch.Tensor, codebook: torch.Tensor, metric: str, precise: bool = False) -> FastOperands:
    """Round rows and codes as the kernel does, and bound the score error of every row (see :func:`score_tolerance`);
    ``precise``: hi + lo operands at any D (the retry pass)."""
    x32, c32 = x.to(torch.float32), codebook.to(torch.float32)
    if metric == "cosine":
        x32, c32 = _unit(x32), _unit(c32)
    center, bias = center_and_bias(codebook, metric)
    hi_lo = hi_lo_operands(x.shape[1], precise)
    rows, codes = operand_columns(x32 - center, c32 - center, bias, hi_lo)
    x_fast, c_fast, added_bias = read_operands(rows, codes, bias, x.shape[1], hi_lo)
    tolerance = tolerance_from_operands(x, codebook, metric, x_fast, c_fast, added_bias, center, hi_lo)
    if x.shape[1] <= AUGMENT_MAX_DIM:
        bias = bias.new_zeros(len(bias))  # folded into the product
    return FastOperands(rows, codes, bias, center, tolerance)


def hi_lo_operands(dim: int, precise: bool) -> bool:
    """Whether operands are bf16 hi + lo pairs: always for D <= 3 (free), else in the precise pass."""
    return precise or dim <= HI_LO_MAX_DIM


def operand_columns(rows, codes, bias, hi_lo: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel's bf16 operand columns (held in float32) from centred float32 rows and codes: ``-2 x~`` and ``c~``;
    hi + lo: ``[x1, x1, x2, x2]`` against ``[c1, c2, c1, c2]`` (hi, lo terms); augmented (D <= 32): then ``1, 1``
    against the bias's hi, lo."""
    dim = rows.shape[1]
    if hi_lo:
        x_hi, c_hi = _bf16(rows), _bf16(codes)
        x_lo, c_lo = _bf16(rows - x_hi), _bf16(codes - c_hi)
        row_cols, code_cols = [x_hi, x_hi, x_lo, x_lo], [c_hi, c_lo, c_hi, c_lo]
    else:
        row_cols, code_cols = [_bf16(rows)], [_bf16(codes)]
    row_cols = [-2 * column for column in row_cols]
    if dim <= AUGMENT_MAX_DIM:
        hi = _bf16(bias)
        row_cols.append(rows.new_ones(len(rows), 2))
        code_cols.append(torch.stack([hi, _bf16(bias - hi)], dim=1))
    return torch.cat(row_cols, dim=1), torch.cat(code_cols, dim=1)


def read_operands(rows: torch.Tensor, codes: torch.Tensor, bias: torch.Tensor, dim: int, hi_lo: bool):
    """Inverse of :func:`operand_columns`: ``x~``, ``c~`` and the code bias as the kernel added it (hi + lo when
    augmented, else ``bias``), in float64, where every sum of terms is exact (hi + lo spans at most 32 bits)."""
    rows, codes = rows.double(), codes.double()
    x_fast = (rows[:, :dim] + rows[:, 2 * dim : 3 * dim] if hi_lo else rows[:, :dim]) / -2
    c_fast = codes[:, :dim] + codes[:, dim : 2 * dim] if hi_lo else codes[:, :dim]
    if dim > AUGMENT_MAX_DIM:
        return x_fast, c_fast, bias.double()
    column = 4 * dim if hi_lo else dim
    return x_fast, c_fast, codes[:, column] + codes[:, column + 1]


def tolerance_from_operands(x, codebook, metric, x_fast, c_fast, added_bias, center, hi_lo: bool) -> torch.Tensor:
    """:func:`score_tolerance` for the operands a search really used: ``x~``, ``c~`` (unscaled), the code bias as it
    was added (float64 of hi + lo, or of the float32 bias) and the centre ``m``."""
    ideal = ideal_operands(x, codebook, metric, center)
    return score_tolerance(x_fast, c_fast, added_bias, ideal, metric, hi_lo)


def score_tolerance(x_fast, c_fast, added_bias, ideal: IdealOperands, metric: str, hi_lo: bool) -> torch.Tensor:
    """Per row, ``E`` with ``|s_j - S_j| <= E`` for every code j, plus the float64 reference's own rounding.

    ``S_j = B_j - 2 X.C_j`` with the exact operands ``X, C_j, B_j`` (:func:`ideal_operands`), ``s_j = fl(b_j - 2
    x~.c~_j)``. Measured in float64 against the ideal operands, whose own error is added: ``e_x = |x~ - X|``,
    ``e_c = max_j |c~_j - C_j|``, ``e_b = max_j |b_j - B_j|``, ``C~ = max_j |c~_j|``, ``B = max_j |b_j|``. Then
    ``|s_j - S_j| <= g (B + 2 |x~| C~)`` (float32 sum of n exact terms, g = n U_ACC; n = D + 2, or 4 D + 2 for hi + lo
    operands, whose products sum to at most 1.01 |x~| |c~|)
    ``+ e_b + 2 (e_x C~ + |X| e_c)`` (``x~.c~ - X.C = (x~ - X).c~ + X.(c~ - C)``, Cauchy-Schwarz)
    ``+ n TINY`` (products flushed below the normal range).
    Float64 reference: l2 distances carry a relative error <= (D + 2) 2^-53 on at most ``(|X| + max|C|)^2``, cosine
    distances an absolute one <= (D + 8) 2^-53 (twice that in score units); twice the error is added so that a proven
    gap also holds for the reference's rounded values. Rows whose scores could approach float32 overflow get ``inf``
    (never certified).
    """
    dim = x_fast.shape[1]
    terms = (4 if hi_lo else 1) * dim + 2  # exact products and bias terms summed in float32
    slack = 1.0 + 2.0**-40

    def norms(a: torch.Tensor) -> torch.Tensor:
        return a.norm(dim=1) * (1 + (dim + 4) * 2.0**-50)

    x_err = norms(x_fast.double() - ideal.rows) + ideal.row_error
    c_err = norms(c_fast.double() - ideal.codes).max() + ideal.code_error
    bias_err = (added_bias - ideal.bias).abs().max() + ideal.bias_error
    x_size, c_size = norms(ideal.rows), norms(ideal.codes).max()
    x_fast_size, c_fast_size = norms(x_fast.double()), norms(c_fast.double()).max()
    magnitude = 1.01 * (added_bias.abs().max() + 2 * 1.01 * x_fast_size * c_fast_size)  # |hi| + |lo| <= 1.01 |hi + lo|
    error = terms * U_ACC * magnitude + bias_err + 2 * (x_err * c_fast_size + x_size * c_err)
    if metric == "l2":
        reference = 2 * (dim + 2) * U_FP64 * (x_size + c_size).square()
    else:
        reference = torch.full_like(x_size, 4 * (dim + 8) * U_FP64)
    growth = 1.0 / (1.0 - terms * U_ACC)  # gamma_n = n u / (1 - n u)
    tolerance = slack * (growth * error + terms * TINY) + slack * reference
    safe = torch.isfinite(tolerance) & (magnitude < SCORE_LIMIT)
    return torch.where(safe, tolerance, torch.full_like(tolerance, math.inf))


@functools.lru_cache(maxsize=32)
def list_members(n_codes: int, depth: int, splits: int, device: torch.device) -> torch.Tensor:
    """``[L, G]`` codes of each of the kernel's candidate lists (ascending), padded with ``n_codes``.

    The kernel deals codes to ``splits`` contiguous ranges of whole 128-code tiles; in a tile, warp ``w`` owns codes
    ``64 w ..`` and lane ``t`` of a quad the pairs ``8 i + 2 t, 8 i + 2 t + 1``: one list per (split, warp, lane).
    """
    tiles = -(-n_codes // TILE_CODES)
    tiles_per_split = -(-tiles // splits)
    codes_per_split = tiles_per_split * TILE_CODES
    n_lists = -(-tiles // tiles_per_split) * LISTS_PER_SPLIT
    code = torch.arange(n_codes)
    local = code % codes_per_split
    lane = (code // codes_per_split) * LISTS_PER_SPLIT + (local % TILE_CODES) // 64 * 4 + (local % 8) // 2
    counts = torch.bincount(lane, minlength=n_lists)
    order = torch.argsort(lane * n_codes + code)
    starts = torch.cumsum(counts, 0) - counts
    members = torch.full((n_lists, max(depth, int(counts.max()))), n_codes, dtype=torch.int64)
    members[lane[order], torch.arange(n_codes) - starts[lane[order]]] = order
    return members.to(device)


def candidate_lists(scores: torch.Tensor, depth: int, splits: int = 1):
    """The kernel's lists from fast scores ``[n, K]``: candidate indices ``[n, L * depth]`` (``K`` = empty slot),
    their scores, and ``floor`` ``[n]``, a lower bound on the score of every code outside the lists."""
    n, n_codes = scores.shape
    members = list_members(n_codes, depth, splits, scores.device)
    padded = torch.cat([scores, scores.new_full((n, 1), math.inf)], dim=1)
    values, slots = padded[:, members].topk(depth, dim=2, largest=False, sorted=True)
    indices = members.expand(n, -1, -1).gather(2, slots)
    return indices.flatten(1), values.flatten(1), values[:, :, -1].amin(dim=1)


def certify(candidate_scores, floor, tolerance, k: int) -> torch.Tensor:
    """``[n]`` bool: True where ``floor - kth > 2 E`` proves the candidates hold the k exact nearest codes."""
    kth = candidate_scores.double().sort(dim=1).values[:, k - 1]
    gap = floor.double() - kth
    return torch.isfinite(kth) & (gap > 2 * tolerance)


def rerank(x: torch.Tensor, codebook: torch.Tensor, candidates: torch.Tensor, k: int, metric: str):
    """The k nearest candidates by exact float64 (distance, index); slot ``K`` (empty) is never chosen over a code."""
    n_codes = codebook.shape[0]
    candidates = candidates.sort(dim=1).values  # index order first: ties -> lowest index
    distances = exact_distances(x[:, None, :], codebook[candidates.clamp_max(n_codes - 1)], metric)
    distances = distances.masked_fill(candidates == n_codes, math.inf)
    distances, order = distances.sort(dim=1, stable=True)
    return candidates.gather(1, order[:, :k]), distances[:, :k]


def certify_candidates(
    x, codebook, k, metric, candidates, candidate_scores, floor, tolerance, max_chunk_elements, operands=None
):
    """Certificate and exact re-rank of candidate lists (``candidates`` ``[N, L]``, ``K`` = empty slot), in row
    blocks whose gathered codes stay under ``max_chunk_elements``: a :class:`CertifiedSearch` before any fallback.

    With ``operands`` (the :class:`FastOperands` that produced the scores), each listed score is recomputed from its
    code's operands; a row where one differs by more than 2 E (two float32 sums of the same exact products) is not
    certified. That catches a search that mislabels codes; a code missing from every list is caught only where its
    absence changes the answer, by the self-check and the GPU tests.
    """
    n_codes = codebook.shape[0]
    width = codebook.shape[1] if operands is None else max(codebook.shape[1], operands.codes.shape[1])
    step = max(1, max_chunk_elements // (candidates.shape[1] * width))
    parts = []
    for start in range(0, x.shape[0], step):
        rows = slice(start, start + step)
        indices, distances = rerank(x[rows], codebook, candidates[rows], k, metric)
        ok = certify(candidate_scores[rows], floor[rows], tolerance[rows], k)
        if operands is not None:
            slots = candidates[rows].clamp_max(n_codes - 1)
            again = (operands.rows[rows, None, :] * operands.codes[slots]).sum(-1) + operands.bias[slots]
            agree = (again.double() - candidate_scores[rows].double()).abs() <= 2 * tolerance[rows, None]
            ok &= (agree | (candidates[rows] == n_codes)).all(dim=1)
        parts.append((indices, distances.to(torch.float32), ok))
    return CertifiedSearch(*(torch.cat(column) for column in zip(*parts)))


def apply_fallback(x, codebook, k, metric, result: CertifiedSearch, fallback: str, max_chunk_elements, retry=None):
    """Exact answers for the rows ``result`` could not certify (``"dense"`` or ``"compact"``, see the module doc).

    ``retry`` (compact only, D > 3): a callable giving the precise pass's :class:`CertifiedSearch` of the rows it is
    given; the rows it certifies keep its answer, the others go to the exact chunked search.
    """
    if fallback == "compact":
        if retry is not None and x.shape[1] > HI_LO_MAX_DIM:
            result = resolve_compact(x, result, retry)

        def exact(rows):
            indices, distances = nearest_codeword_chunked(rows, codebook, k, metric, max_chunk_elements)
            return CertifiedSearch(indices, distances, torch.zeros_like(indices[:, 0], dtype=torch.bool))

        return resolve_compact(x, result, exact)
    step = max(1, max_chunk_elements // (codebook.shape[0] * codebook.shape[1]))
    indices, distances = [], []
    for start in range(0, x.shape[0], step):
        rows = slice(start, start + step)
        exact_idx, exact_dist = exact_dense(x[rows], codebook, k, metric)
        proven = result.certified[rows, None]
        indices.append(torch.where(proven, result.indices[rows], exact_idx))
        distances.append(torch.where(proven, result.distances[rows], exact_dist.to(torch.float32)))
    return CertifiedSearch(torch.cat(indices), torch.cat(distances), result.certified)


def exact_dense(x: torch.Tensor, codebook: torch.Tensor, k: int, metric: str):
    """Float64 brute force of rows ``x`` by direct differences (the reference's formula), ties to the lowest index."""
    distances, order = exact_distances(x[:, None, :], codebook[None], metric).sort(dim=1, stable=True)
    return order[:, :k], distances[:, :k]


def certified_nearest_codeword(
    x: torch.Tensor,
    codebook: torch.Tensor,
    k: int,
    metric: str,
    *,
    splits: int = 1,
    fallback: str = "dense",
    max_chunk_elements: int = 1 << 21,
) -> CertifiedSearch:
    """The k nearest codes of each row, certified or from the exact fallback: equal to a float64 brute force.

    ``splits``: codebook splits of the emulated kernel launch (candidate lists = 8 x splits). ``fallback``:
    ``"dense"`` (no host sync: the float64 brute force, selected per row) or ``"compact"`` (reads the failed rows'
    count back: the precise hi + lo pass on them, then the exact chunked search of what it cannot prove either).
    """
    if fallback not in ("dense", "compact"):
        raise ValueError(f"fallback must be 'dense' or 'compact', got {fallback!r}")
    if x.shape[0] == 0:
        empty = x.new_empty((0, k), dtype=torch.int64)
        return CertifiedSearch(empty, empty.to(torch.float32), empty[:, 0].bool())
    search = functools.partial(
        certified_pass, codebook=codebook, k=k, metric=metric, splits=splits, max_chunk_elements=max_chunk_elements
    )
    retry = functools.partial(search, precise=True)
    return apply_fallback(x, codebook, k, metric, search(x), fallback, max_chunk_elements, retry)


def certified_pass(x, codebook, k, metric, splits, max_chunk_elements, precise=False) -> CertifiedSearch:
    """One emulated kernel pass over rows ``x`` (chunks of rows whose scores stay under ``max_chunk_elements``),
    certified and re-ranked, before any fallback."""
    operands = prepare(x, codebook, metric, precise)
    rows_per_chunk = max(1, max_chunk_elements // codebook.shape[0])
    parts = []
    for start in range(0, x.shape[0], rows_per_chunk):
        rows = slice(start, start + rows_per_chunk)
        scores = torch.addmm(operands.bias, operands.rows[rows], operands.codes.T)
        lists = candidate_lists(scores, list_depth(k), splits)
        chunk = operands._replace(rows=operands.rows[rows], tolerance=operands.tolerance[rows])
        parts.append(
            certify_candidates(x[rows], codebook, k, metric, *lists, chunk.tolerance, max_chunk_elements, chunk)
        )
    return CertifiedSearch(*(torch.cat(column) for column in zip(*parts)))


def resolve_compact(x, result: CertifiedSearch, search) -> CertifiedSearch:
    """Replace the uncertified rows by ``search`` of those rows alone (one host read-back of their indices); a row
    stays uncertified unless ``search`` certified it."""
    failed = (~result.certified).nonzero()[:, 0]
    if failed.numel() == 0:
        return result
    again = search(x[failed])
    indices, distances, certified = result.indices.clone(), result.distances.clone(), result.certified.clone()
    indices[failed], distances[failed], certified[failed] = again.indices, again.distances, again.certified
    return CertifiedSearch(indices, distances, certified)


def fallback_fraction(result: CertifiedSearch) -> torch.Tensor:
    """Share of rows that needed the exact fallback (a 0-d tensor on the result's device; no host sync)."""
    if result.certified.numel() == 0:
        return result.distances.new_zeros(())
    return (~result.certified).float().mean()


def _bf16(a: torch.Tensor) -> torch.Tensor:
    return a.to(torch.bfloat16).to(torch.float32)


def _unit(a: torch.Tensor) -> torch.Tensor:
    """``a / max(|a|, eps)`` row by row, computed in ``a``'s dtype as the kernel does (norm, clamp, reciprocal)."""
    return a * (1.0 / a.square().sum(1).sqrt().clamp_min(COSINE_EPS))[:, None]
