"""The certified search (the kernel's algorithm in torch) equals float64 brute force on adversarial data."""

import random

import pytest
import torch

from tokenizers_zoo.ops import certified
from tokenizers_zoo.ops.certified import certified_nearest_codeword, fallback_fraction

from op_helpers import ADVERSARIAL_KINDS, adversarial_case, dense_distances, non_contiguous, reference_search

DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


def check_exact(x, codebook, k, metric, **options):
    result = certified_nearest_codeword(x, codebook, k, metric, **options)
    expected_idx, expected_dist = reference_search(x, codebook, k, metric)
    wrong = (result.indices != expected_idx).any(dim=1)
    assert not wrong.any(), f"{int(wrong.sum())}/{len(x)} rows differ (certified: {result.certified[wrong]})"
    assert result.indices.dtype == torch.int64 and result.distances.dtype == torch.float32
    torch.testing.assert_close(result.distances.double(), expected_dist.float().double(), rtol=0, atol=0)
    return result


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("kind", ADVERSARIAL_KINDS)
def test_exact_on_every_data_kind(kind, metric):
    generator = torch.Generator().manual_seed(1)
    x, codebook = adversarial_case(kind, 40, 700, 12, generator)
    for k in (1, 3, 16):
        check_exact(x, codebook, k, metric)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("dim", [1, 2, 3])
def test_dense_codebooks_in_very_low_dimension(dim, metric):
    """The H200 run's worst case: up to 89% of rows wrong at D = 1..3 with up to 100,000 codes."""
    generator = torch.Generator().manual_seed(dim)
    x, codebook = adversarial_case("dense_low_dim", 6, 100_000, dim, generator)
    result = check_exact(x, codebook, 4, metric)
    if metric == "l2" and dim == 1:
        assert not result.certified.all()  # bf16 cannot separate 100,000 codes on a line: the fallback is used


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["offset", "low_rank", "tiny", "huge", "duplicates"])
def test_exact_for_every_input_dtype(kind, dtype):
    generator = torch.Generator().manual_seed(2)
    x, codebook = adversarial_case(kind, 30, 500, 16, generator, dtype=dtype)
    for metric in ("l2", "cosine"):
        check_exact(x, codebook, 2, metric)


def test_every_k_from_1_to_16():
    generator = torch.Generator().manual_seed(3)
    x, codebook = adversarial_case("random", 30, 300, 6, generator)
    for k in range(1, 17):
        check_exact(x, codebook, k, "l2" if k % 2 else "cosine")


def test_ties_go_to_the_lowest_index():
    codebook = torch.zeros(50, 4)
    codebook[7] = 1.0
    x = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    result = check_exact(x, codebook, 3, "l2")
    assert result.indices.tolist() == [[0, 1, 2], [7, 0, 1]]
    generator = torch.Generator().manual_seed(4)
    x, codebook = adversarial_case("duplicates", 60, 400, 8, generator)
    assert (check_exact(x, codebook, 1, "l2").indices < 200).all()


def test_non_contiguous_inputs():
    generator = torch.Generator().manual_seed(5)
    x, codebook = adversarial_case("offset", 50, 600, 10, generator)
    for metric in ("l2", "cosine"):
        check_exact(non_contiguous(x), non_contiguous(codebook), 3, metric)


def test_compact_and_dense_fallbacks_agree():
    generator = torch.Generator().manual_seed(6)
    x, codebook = adversarial_case("ties", 40, 900, 5, generator)
    dense = check_exact(x, codebook, 5, "l2", fallback="dense")
    compact = check_exact(x, codebook, 5, "l2", fallback="compact")
    assert torch.equal(dense.certified, compact.certified) and not dense.certified.all()
    with pytest.raises(ValueError, match="fallback"):
        certified_nearest_codeword(x, codebook, 1, "l2", fallback="none")


@pytest.mark.parametrize("splits", [1, 3])
def test_randomized_shapes_metrics_dtypes_and_kinds(splits):
    rng = random.Random(splits)
    for trial in range(12):
        kind = rng.choice(ADVERSARIAL_KINDS)
        dim = rng.choice([1, 2, 3, 5, 8, 16, 33, 40])
        k_codes = rng.choice([1, 7, 129, 300, 1000, 3000])
        k = rng.randint(1, min(16, k_codes))
        dtype, metric = rng.choice(DTYPES), rng.choice(["l2", "cosine"])
        generator = torch.Generator().manual_seed(trial)
        x, codebook = adversarial_case(kind, rng.randint(1, 40), k_codes, dim, generator, dtype=dtype)
        check_exact(x, codebook, k, metric, splits=splits, max_chunk_elements=rng.choice([5000, 1 << 21]))


def exact_scores(x, codebook, metric, center):
    """Float64 scores whose order is the distances' order: |x - c|^2 - |x - m|^2 (l2), 2 (1 - cos) + 2 x_hat.m -
    |m|^2 - 1 (cosine), with m the search's centre (see certified.ideal_operands)."""
    distances = dense_distances(x, codebook, metric)
    m = center.double()
    if metric == "l2":
        return distances - (x.double() - m).square().sum(1, keepdim=True)
    x_hat = x.double() / x.double().norm(dim=1, keepdim=True).clamp_min(1e-12)
    return 2 * distances + (2 * x_hat @ m - m.square().sum() - 1)[:, None]


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("kind", ["offset", "huge", "low_rank", "dense_low_dim", "random"])
def test_score_error_bound_holds_and_is_not_vacuous(kind, metric):
    generator = torch.Generator().manual_seed(7)
    for dim in (3, 40):
        x, codebook = adversarial_case(kind, 50, 400, dim, generator, dtype=torch.float32)
        ops = certified.prepare(x, codebook, metric)
        fast = torch.addmm(ops.bias, ops.rows, ops.codes.T).double()
        error = (fast - exact_scores(x, codebook, metric, ops.center)).abs().amax(dim=1)
        assert (error <= ops.tolerance).all()
        assert (ops.tolerance <= 200 * error.clamp_min(1e-30)).float().mean() > 0.9  # tight within ~2 decades


def test_without_the_fallback_the_candidates_alone_are_wrong_exactly_where_not_certified():
    generator = torch.Generator().manual_seed(8)
    x, codebook = adversarial_case("dense_low_dim", 200, 20_000, 1, generator)
    ops = certified.prepare(x, codebook, "l2")
    scores = torch.addmm(ops.bias, ops.rows, ops.codes.T)
    candidates, candidate_scores, floor = certified.candidate_lists(scores, 4)
    proven = certified.certify(candidate_scores, floor, ops.tolerance, 1)
    guess, _ = certified.rerank(x, codebook.double(), candidates, 1, "l2")
    expected, _ = reference_search(x, codebook, 1, "l2")
    wrong = (guess != expected)[:, 0]
    assert wrong.any() and not (wrong & proven).any()


def test_candidate_lists_follow_the_kernel_layout():
    members = certified.list_members(1000, 4, 3, torch.device("cpu"))
    assert members.shape[0] == 3 * 8
    real = members[members < 1000]
    assert torch.equal(real.sort().values, torch.arange(1000))  # every code in exactly one list
    assert members[0, :4].tolist() == [0, 1, 8, 9]  # lane 0 of warp 0: pairs 8 i, 8 i + 1
    assert members[4, :2].tolist() == [64, 65]  # warp 1 starts at code 64 of each 128-code tile


def test_near_code_data_is_certified_and_the_statistic_needs_no_sync():
    generator = torch.Generator().manual_seed(9)
    x, codebook = adversarial_case("near_codes", 300, 2000, 32, generator)
    result = check_exact(x, codebook, 1, "l2")
    fraction = fallback_fraction(result)
    assert isinstance(fraction, torch.Tensor) and fraction.ndim == 0 and float(fraction) == 0.0
    x, codebook = adversarial_case("ties", 30, 1000, 12, generator)
    assert float(fallback_fraction(check_exact(x, codebook, 1, "l2"))) > 0.5  # no bound separates exact ties


@pytest.mark.parametrize("dim", [2, 3])
def test_hi_lo_operands_certify_dense_codebooks_in_two_and_three_dimensions(dim):
    """D <= 3 rows and codes go in as bf16 hi + lo pairs (columns the MMA would pad anyway): 100,000 uniform codes,
    which a single bf16 term cannot tell apart, are certified; the split really is in the operands."""
    generator = torch.Generator().manual_seed(13)
    x, codebook = adversarial_case("dense_low_dim", 40, 100_000, dim, generator)
    assert float(fallback_fraction(check_exact(x, codebook, 4, "l2", splits=8))) == 0.0
    ops = certified.prepare(x, codebook, "l2")
    assert ops.rows.shape[1] == 4 * dim + 2
    x_fast, c_fast, _ = certified.read_operands(ops.rows, ops.codes, ops.bias, dim, hi_lo=True)
    assert (x_fast - (x - ops.center)).abs().max() < 2.0**-15  # hi + lo: about 16 bits, not bf16's 8


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_the_precise_pass_certifies_low_rank_codebooks(metric):
    """A rank-3 codebook in D = 16 defeats single bf16 operands (most rows unproven after the first pass); the
    compact fallback proposes those rows again with hi + lo operands, which prove all of them: no exact search."""
    generator = torch.Generator().manual_seed(14)
    x, codebook = adversarial_case("low_rank", 60, 16384, 16, generator)
    first = certified.certified_pass(x, codebook, 4, metric, splits=4, max_chunk_elements=1 << 21)
    assert float(fallback_fraction(first)) > 0.5
    final = check_exact(x, codebook, 4, metric, splits=4, fallback="compact")
    assert float(fallback_fraction(final)) == 0.0
    dense = check_exact(x, codebook, 4, metric, splits=4, fallback="dense")  # no retry without a read-back
    assert torch.equal(dense.certified, first.certified)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_a_large_common_offset_is_certified(metric):
    """Centring (after normalisation for cosine) leaves bf16 only the small differences between codes: the offset
    data that defeated the first kernel (96-100% of cosine rows wrong) needs no fallback at all."""
    generator = torch.Generator().manual_seed(12)
    for dim, k_codes in ((12, 1000), (48, 20_000)):
        x, codebook = adversarial_case("offset", 40, k_codes, dim, generator)
        assert float(fallback_fraction(check_exact(x, codebook, 1, metric))) == 0.0


def test_empty_rows():
    result = certified_nearest_codeword(torch.empty(0, 3), torch.randn(10, 3), 2, "l2")
    assert result.indices.shape == (0, 2) and result.certified.shape == (0,)
    assert float(fallback_fraction(result)) == 0.0


class EmulatedExtension:
    """Answers the extension's ``candidates`` call from the torch emulation, in the kernel's layout (int32 slots,
    -1 for empty; bf16 operands; the bias empty where it entered the product). ``fault``: a broken
    kernel that drops every row's best code (``"drop"``) or labels each candidate with its neighbour's index
    (``"mislabel"``)."""

    def __init__(self, splits=1, fault=None):
        self.splits, self.fault = splits, fault

    def candidates(self, x, codebook, k, metric, precise):
        ops = certified.prepare(x, codebook, metric, precise)
        scores = torch.addmm(ops.bias, ops.rows, ops.codes.T)
        slots, values, _ = certified.candidate_lists(scores, certified.list_depth(k), self.splits)
        if self.fault == "drop":
            best = values.argmin(dim=1, keepdim=True)
            slots, values = slots.scatter(1, best, codebook.shape[0]), values.scatter(1, best, float("inf"))
        elif self.fault == "mislabel":
            slots = torch.where(slots < codebook.shape[0], (slots + 1) % codebook.shape[0], slots)
        slots = torch.where(slots == codebook.shape[0], -1, slots).int()
        bias = ops.bias if x.shape[1] > certified.AUGMENT_MAX_DIM else ops.bias[:0]
        return values, slots, ops.rows.bfloat16(), ops.codes.bfloat16(), bias, ops.center


@pytest.mark.parametrize("splits", [1, 2])
def test_kernel_route_certifies_the_extension_candidates(splits):
    """The CUDA route's torch half (operands -> bound -> certificate -> re-rank -> fallback), fed by an emulated
    kernel: the first-use self-check (adversarial cases) passes, and the fallback does real work."""
    cuda_ops = pytest.importorskip("tokenizers_zoo.ops.cuda")
    kernel = cuda_ops.CertifiedKernel(EmulatedExtension(splits))
    cuda_ops.self_check(kernel, device="cpu")
    generator = torch.Generator().manual_seed(10)
    x, codebook = adversarial_case("dense_low_dim", 50, 20_000, 1, generator)
    result = kernel.search(x, codebook, 2, "l2")
    assert torch.equal(result.indices, reference_search(x, codebook, 2, "l2")[0])
    assert not result.certified.all()
    x, codebook = adversarial_case("near_codes", 60, 800, 40, generator)
    assert bool(kernel.search(x, codebook, 1, "cosine").certified.all())
    x, codebook = adversarial_case("low_rank", 40, 8000, 16, generator)  # the precise pass proves what the first cannot
    assert not kernel.certified_pass(x, codebook, 4, "l2").certified.all()
    result = kernel.search(x, codebook, 4, "l2")
    assert result.certified.all() and torch.equal(result.indices, reference_search(x, codebook, 4, "l2")[0])


def test_kernel_route_catches_broken_kernels():
    cuda_ops = pytest.importorskip("tokenizers_zoo.ops.cuda")
    generator = torch.Generator().manual_seed(11)
    x, codebook = adversarial_case("near_codes", 60, 800, 40, generator)
    mislabeled = cuda_ops.CertifiedKernel(EmulatedExtension(fault="mislabel")).search(x, codebook, 1, "l2")
    assert torch.equal(mislabeled.indices, reference_search(x, codebook, 1, "l2")[0])  # exact all the same:
    assert not mislabeled.certified.any()  # no listed score matches its code, so no row is certified
    with pytest.raises(cuda_ops.CudaUnavailable, match="disagrees"):  # a dropped code is the self-check's to catch
        cuda_ops.self_check(cuda_ops.CertifiedKernel(EmulatedExtension(fault="drop")), device="cpu")
