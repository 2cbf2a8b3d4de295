"""The nearest-codeword op: exact against float64 brute force, bounded memory, compile-friendly."""

import pytest
import torch

from tokenizers_zoo.ops import chunk_elements, nearest_codeword
from tokenizers_zoo.ops.chunked import nearest_codeword_chunked

from op_helpers import LargestTensor, reference_search as reference


def make_case(case, n, k_codes, dim):
    codebook = torch.randn(k_codes, dim)
    if case == "random":
        x = torch.randn(n, dim)
    elif case == "near_codes":
        x = codebook[torch.randint(k_codes, (n,))] + 1e-3 * torch.randn(n, dim)
    elif case == "large_offset":
        offset = 1000 * torch.randn(dim)
        codebook, x = codebook + offset, torch.randn(n, dim) + offset
    elif case == "duplicates":
        codebook[k_codes // 2 :] = codebook[: k_codes - k_codes // 2].clone()
        x = codebook[torch.randint(k_codes, (n,))].clone()
    return x, codebook


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("case", ["random", "near_codes", "large_offset", "duplicates"])
@pytest.mark.parametrize("shape", [(700, 300, 8), (300, 1100, 64), (64, 37, 3)])
def test_matches_float64_reference(metric, case, shape):
    x, codebook = make_case(case, *shape)
    for k in (1, 5):
        expected_idx, expected_dist = reference(x, codebook, k, metric)
        out = nearest_codeword(x, codebook, k=k, metric=metric)
        indices = out.indices if k > 1 else out.indices[:, None]
        distances = out.distances if k > 1 else out.distances[:, None]
        assert indices.dtype == torch.int64 and distances.dtype == torch.float32
        assert torch.equal(indices, expected_idx)
        torch.testing.assert_close(distances.double(), expected_dist, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_exact_for_every_input_dtype(dtype):
    x, codebook = make_case("large_offset", 500, 400, 16)
    x, codebook = (x / 100).to(dtype), (codebook / 100).to(dtype)
    expected, _ = reference(x, codebook, 1, "l2")
    assert torch.equal(nearest_codeword(x, codebook).indices, expected[:, 0])


def test_large_offset_defeats_the_plain_fp32_expansion():
    """The data the op is exact on is data where the usual ||c||^2 - 2 x.c argmin is not."""
    x, codebook = make_case("large_offset", 2000, 500, 8)
    expected, _ = reference(x, codebook, 1, "l2")
    naive = torch.addmm(codebook.square().sum(1), x, codebook.T, alpha=-2).argmin(1)
    assert (naive != expected[:, 0]).any()
    assert torch.equal(nearest_codeword(x, codebook).indices, expected[:, 0])


def test_ties_go_to_the_lowest_index():
    codebook = torch.tensor([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0], [2.0, 0.0]])
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0]])  # second row: equidistant (1) from codes 0, 1, 2 and 3
    out = nearest_codeword(x, codebook, k=3)
    assert out.indices.tolist() == [[1, 2, 0], [0, 1, 2]]
    assert nearest_codeword(x, codebook).indices.tolist() == [1, 0]


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_never_holds_more_than_the_chunk_of_the_score_matrix(metric):
    n, k_codes, dim, budget = 3000, 2500, 16, 1 << 16
    x, codebook = torch.randn(n, dim), torch.randn(k_codes, dim)
    with LargestTensor() as recorder:
        indices, _ = nearest_codeword_chunked(x, codebook, 4, metric, budget)
    assert n * k_codes > 100 * budget
    assert recorder.largest <= budget
    assert torch.equal(indices, reference(x, codebook, 4, metric)[0])


def test_chunk_limit_does_not_change_the_answer():
    x, codebook = make_case("random", 1000, 700, 12)
    full = nearest_codeword(x, codebook, k=3)
    with chunk_elements(701):
        small = nearest_codeword(x, codebook, k=3)
    assert torch.equal(full.indices, small.indices) and torch.equal(full.distances, small.distances)
    with pytest.raises(ValueError, match="positive"):
        with chunk_elements(0):
            pass


@pytest.mark.parametrize("k_codes", [63, 64, 65, 130])
def test_single_nearest_across_block_edges_and_near_ties(k_codes):
    """k = 1 searches blocks of 64 codes (padded): the answer at every position, and exact near-ties, are exact."""
    codebook = torch.randn(k_codes, 6)
    x = codebook + 1e-3 * torch.randn(k_codes, 6)  # every code is some row's nearest, at every block position
    assert torch.equal(nearest_codeword(x, codebook).indices, torch.arange(k_codes))
    codebook[-1] = codebook[0]  # an exact tie between the first and the last code (last block, padded)
    assert nearest_codeword(codebook[-1:], codebook).indices.tolist() == [0]
    codebook[-2] = codebook[1] + 1e-7  # a near-tie inside float32 resolution of the scores
    expected, _ = reference(codebook[-2:-1] + 1e-8, codebook, 1, "l2")
    assert torch.equal(nearest_codeword(codebook[-2:-1] + 1e-8, codebook).indices, expected[:, 0])


@pytest.mark.parametrize("k", [1, 3])
def test_unchecked_non_finite_rows_get_valid_indices(k):
    x, codebook = torch.randn(100, 8), torch.randn(50, 8)
    x[3, 2] = float("nan")
    for metric in ("l2", "cosine"):
        out = nearest_codeword(x, codebook, k=k, metric=metric, check_finite=False)
        assert out.indices.min() >= 0 and out.indices.max() < 50 and torch.isnan(out.distances[3]).all()
        expected, _ = reference(x[:3], codebook, k, metric)
        assert torch.equal(out.indices[:3].reshape(3, k), expected)


@pytest.mark.parametrize("k", [1, 4])
def test_rows_split_between_threads_give_the_same_answer(k):
    """With several torch threads the CPU search splits the rows between Python threads (one torch thread each)."""
    x, codebook = make_case("large_offset", 900, 700, 8)
    previous = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        with chunk_elements(3 * 700 * 20):  # 20 rows per chunk and thread: every thread runs several chunks
            out = nearest_codeword(x, codebook, k=k)
        assert torch.get_num_threads() == 3  # restored after the search
    finally:
        torch.set_num_threads(previous)
    expected, _ = reference(x, codebook, k, "l2")
    assert torch.equal(out.indices.reshape(900, k), expected)


def test_no_gradient_flows_through_the_search():
    x = torch.randn(10, 4, requires_grad=True)
    codebook = torch.randn(6, 4, requires_grad=True)
    out = nearest_codeword(x, codebook)
    assert not out.distances.requires_grad and not out.indices.requires_grad


def test_empty_input():
    out = nearest_codeword(torch.empty(0, 4), torch.randn(5, 4), k=2)
    assert out.indices.shape == (0, 2) and out.distances.shape == (0, 2)


@pytest.mark.parametrize(
    "x, codebook, kwargs, error, match",
    [
        (torch.randn(3, 4), torch.randn(5, 3), {}, ValueError, "D=4"),
        (torch.randn(3, 4, 1), torch.randn(5, 4), {}, ValueError, "2-D"),
        (torch.randint(0, 3, (3, 4)), torch.randn(5, 4), {}, TypeError, "floating"),
        (torch.randn(3, 4), torch.randn(5, 4), {"metric": "manhattan"}, ValueError, "metric"),
        (torch.randn(3, 4), torch.randn(5, 4), {"k": 6}, ValueError, "k must be"),
        (torch.tensor([[0.0, float("nan")]]), torch.randn(5, 2), {}, ValueError, "NaN"),
        (torch.randn(3, 2), torch.tensor([[float("inf"), 0.0]]), {}, ValueError, "NaN or infinite"),
    ],
)
def test_bad_inputs_raise_clear_errors(x, codebook, kwargs, error, match):
    with pytest.raises(error, match=match):
        nearest_codeword(x, codebook, **kwargs)


def test_registered_op_passes_opcheck():
    x, codebook = torch.randn(20, 6), torch.randn(9, 6)
    for k, metric in ((1, "l2"), (3, "cosine")):
        torch.library.opcheck(torch.ops.tokenizers_zoo.nearest_codeword.default, (x, codebook, k, metric))


@pytest.mark.slow
def test_works_under_torch_compile():
    def lookup(x, codebook):
        indices = nearest_codeword(x * 2.0, codebook, k=2).indices
        return codebook[indices[:, 0]] - x

    x, codebook = torch.randn(50, 8), torch.randn(30, 8)
    compiled = torch.compile(lookup, fullgraph=True)
    torch.testing.assert_close(compiled(x, codebook), lookup(x, codebook), rtol=0, atol=0)
