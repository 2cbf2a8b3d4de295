"""The fused CUDA nearest-codeword kernel against float64 brute force (GPU only; skipped without one)."""

import pytest
import torch

from tokenizers_zoo.ops import nearest_codeword
from tokenizers_zoo.ops.cuda import load_extension
from tokenizers_zoo.quantizers import VectorQuantizer

pytestmark = pytest.mark.gpu
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@pytest.fixture(scope="module", autouse=True)
def extension():
    module = load_extension()
    assert module is not None, "the CUDA extension did not build"
    return module


def reference(x, codebook, k, metric, rows_per_chunk=256):
    """Float64 brute force by direct differences on the GPU; ties to the lowest index."""
    x, codebook = x.double(), codebook.double()
    out_idx, out_dist = [], []
    for start in range(0, x.shape[0], rows_per_chunk):
        rows = x[start : start + rows_per_chunk]
        if metric == "l2":
            dist = torch.cdist(rows, codebook, compute_mode="donot_use_mm_for_euclid_dist").square()
        else:
            dot = rows @ codebook.T
            dist = 1 - dot / (rows.norm(dim=1).clamp_min(1e-12)[:, None] * codebook.norm(dim=1).clamp_min(1e-12)[None])
        values, indices = dist.sort(dim=1, stable=True)
        out_idx.append(indices[:, :k])
        out_dist.append(values[:, :k])
    return torch.cat(out_idx), torch.cat(out_dist)


def near_codes(n, k_codes, dim, offset=0.0, noise=1e-2, dtype=torch.float32):
    codebook = torch.randn(k_codes, dim, device="cuda") + offset
    x = codebook[torch.randint(k_codes, (n,), device="cuda")] + noise * torch.randn(n, dim, device="cuda")
    return x.to(dtype), codebook.to(dtype)


def check_exact(x, codebook, k=1, metric="l2"):
    out = nearest_codeword(x, codebook, k=k, metric=metric)
    indices = out.indices if k > 1 else out.indices[:, None]
    distances = out.distances if k > 1 else out.distances[:, None]
    expected_idx, expected_dist = reference(x, codebook, k, metric)
    mismatched = (indices != expected_idx).any(dim=1)
    assert not mismatched.any(), f"{int(mismatched.sum())} of {x.shape[0]} rows differ from float64"
    torch.testing.assert_close(distances.double(), expected_dist, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [8, 32, 64, 256, 1433])
def test_exact_on_data_near_the_codes(dtype, dim):
    x, codebook = near_codes(3000, 2000, dim, dtype=dtype)
    check_exact(x, codebook)


@pytest.mark.parametrize("dtype", DTYPES)
def test_exact_with_a_large_common_offset(dtype):
    scale = 1.0 if dtype == torch.float32 else 0.01  # stay inside the half/bf16 range and resolution
    x, codebook = near_codes(3000, 5000, 16, offset=1000.0 * scale, noise=0.05 * scale, dtype=dtype)
    check_exact(x, codebook)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("k", [1, 4, 16])
def test_top_k_exact_near_the_codes(metric, k):
    x, codebook = near_codes(2000, 3000, 24, noise=0.3)
    check_exact(x, codebook, k=k, metric=metric)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [8, 32, 512])
def test_flip_rate_on_random_data(dtype, dim):
    """Independent Gaussian rows and codes (many near-ties): fewer than 1e-5 rows differ from float64."""
    n, k_codes = 200_000 if dim <= 32 else 50_000, 4096
    generator = torch.Generator(device="cuda").manual_seed(dim)
    x = torch.randn(n, dim, device="cuda", generator=generator).to(dtype)
    codebook = torch.randn(k_codes, dim, device="cuda", generator=generator).to(dtype)
    got = nearest_codeword(x, codebook).indices
    x64, c64 = x.double(), codebook.double()
    expected = torch.cat(
        [(c64.square().sum(1)[None] - 2 * rows @ c64.T).argmin(1) for rows in x64.split(8192)]
    )  # float64 expansion: its rounding is far below the gaps of random data
    flips = int((got != expected).sum())
    assert flips / n < 1e-5 or flips <= 1, f"{flips} flips in {n} rows"


def test_duplicates_and_ties_go_to_the_lowest_index():
    codebook = torch.randn(700, 12, device="cuda")
    codebook[350:] = codebook[:350]  # every code twice
    codebook[10] = codebook[600]  # and a triple
    x = codebook[torch.randint(700, (4000,), device="cuda")]
    out = nearest_codeword(x, codebook)
    expected, _ = reference(x, codebook, 1, "l2")
    assert torch.equal(out.indices, expected[:, 0]) and (out.indices < 350).all()
    zero = torch.zeros(3, 12, device="cuda")
    assert nearest_codeword(zero, torch.zeros(40, 12, device="cuda"), k=3).indices.tolist() == [[0, 1, 2]] * 3


@pytest.mark.parametrize(
    "n, k_codes, dim",
    [(1, 1, 1), (1, 5, 3), (127, 129, 33), (129, 127, 65), (300, 1000, 100), (64, 300, 2048), (513, 4097, 7)],
)
def test_tails(n, k_codes, dim):
    x, codebook = near_codes(n, k_codes, dim, noise=0.1)
    check_exact(x, codebook, k=min(3, k_codes))


def test_large_codebook():
    x, codebook = near_codes(2000, 1 << 20, 8, noise=1e-3)
    check_exact(x, codebook)


def test_non_contiguous_and_offset_inputs():
    base_x, base_c = near_codes(4000, 3000, 40, noise=0.05)
    x = base_x[::2, :]  # row stride 2
    codebook = base_c.T.contiguous().T[100:]  # column-major, with a storage offset
    assert not x.is_contiguous() and not codebook.is_contiguous() and codebook.storage_offset() == 100
    check_exact(x, codebook)
    check_exact(base_x[:, 5:37], base_c[:, 5:37])  # column slices


def test_mixed_dtypes_promote():
    x, codebook = near_codes(1000, 500, 16)
    out = nearest_codeword(x, codebook.bfloat16())
    expected, _ = reference(x, codebook.bfloat16().float(), 1, "l2")
    assert torch.equal(out.indices, expected[:, 0])


def test_non_finite_inputs():
    x, codebook = near_codes(100, 50, 8)
    x[3, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        nearest_codeword(x, codebook)
    unchecked = nearest_codeword(x, codebook, check_finite=False)
    assert unchecked.indices.min() >= 0 and unchecked.indices.max() < 50  # unspecified but safe to gather with
    assert torch.isnan(unchecked.distances[3])


def test_torch_compile_and_cuda_graphs():
    x, codebook = near_codes(4096, 8192, 32)
    eager = nearest_codeword(x, codebook, k=2)

    compiled = torch.compile(lambda a, b: nearest_codeword(a, b, k=2), fullgraph=True)
    out = compiled(x, codebook)
    assert torch.equal(out.indices, eager.indices) and torch.equal(out.distances, eager.distances)

    static_x = x.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        nearest_codeword(static_x, codebook, k=2)  # warm-up outside capture
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = nearest_codeword(static_x, codebook, k=2)
    static_x.copy_(x.flip(0))
    graph.replay()
    assert torch.equal(captured.indices, eager.indices.flip(0))


def test_quantizer_on_gpu_matches_cpu():
    torch.manual_seed(0)
    cpu = VectorQuantizer(16, 512, ema=True, dead_code_threshold=0.1).train()
    gpu = VectorQuantizer(16, 512, ema=True, dead_code_threshold=0.1).train()
    gpu.load_state_dict(cpu.state_dict())
    gpu.cuda()
    z = torch.randn(8, 16, 12, 12)
    z.requires_grad_()
    out_cpu, out_gpu = cpu(z), gpu(z.cuda())
    assert torch.equal(out_cpu.indices, out_gpu.indices.cpu())
    torch.testing.assert_close(gpu.embed_sum.cpu(), cpu.embed_sum, rtol=1e-5, atol=1e-6)
    out_gpu.quantized.sum().backward()  # straight-through: the gradient reaches z
    torch.testing.assert_close(z.grad, torch.ones_like(z))
