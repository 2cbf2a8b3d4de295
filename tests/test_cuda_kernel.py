"""The certified CUDA route (fused kernel candidates + torch certificate + exact fallback) against float64 brute
force (GPU only; skipped without one). Run with ``TOKENIZERS_ZOO_CUDA=1`` (``benchmarks/gpu_check.sh`` does)."""

import pytest
import torch

from tokenizers_zoo.ops import certified, nearest_codeword
from tokenizers_zoo.ops.adversarial import ADVERSARIAL_KINDS, adversarial_case
from tokenizers_zoo.ops.certified import certified_nearest_codeword, fallback_fraction
from tokenizers_zoo.ops.chunked import exact_distances
from tokenizers_zoo.ops.cuda import load_extension
from tokenizers_zoo.quantizers import VectorQuantizer

pytestmark = pytest.mark.gpu
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@pytest.fixture(scope="module", autouse=True)
def extension():
    kernel = load_extension()
    assert kernel is not None, "the CUDA extension did not build (is TOKENIZERS_ZOO_CUDA=1 set?)"
    return kernel


def reference(x, codebook, k, metric):
    """Float64 brute force by direct differences on the GPU (the CPU reference's formula); ties to the lowest index."""
    x, codebook = x.double(), codebook.double()
    rows_per_chunk = max(1, (1 << 27) // codebook.numel())
    out_idx, out_dist = [], []
    for rows in x.split(rows_per_chunk):
        values, indices = exact_distances(rows[:, None, :], codebook[None], metric).sort(dim=1, stable=True)
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


@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("kind", ADVERSARIAL_KINDS)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_exact_on_adversarial_data(kind, metric, dtype):
    generator = torch.Generator().manual_seed(len(kind))
    x, codebook = adversarial_case(kind, 512, 4000, 12, generator, dtype=dtype)
    for k in (1, 4, 16):
        check_exact(x.cuda(), codebook.cuda(), k=k, metric=metric)


@pytest.mark.parametrize("dim, k_codes", [(1, 5000), (1, 65536), (2, 100_000), (3, 16384), (3, 100_000)])
def test_dense_codebooks_in_very_low_dimension(dim, k_codes):
    """The H200 run: up to 89% of rows wrong here before the certificate."""
    x, codebook = adversarial_case("dense_low_dim", 256, k_codes, dim, torch.Generator().manual_seed(dim))
    for metric in ("l2", "cosine"):
        check_exact(x.cuda(), codebook.cuda(), k=4, metric=metric)


def test_the_issue_cases():
    """Offset cosine (D=12 K=1000, D=48 K=262144), low-rank fp16 cosine (N=4096 K=16384 k=4): 57-100% wrong before."""
    generator = torch.Generator().manual_seed(0)
    for n, k_codes, dim in ((1000, 1000, 12), (512, 262_144, 48)):
        x, codebook = adversarial_case("offset", n, k_codes, dim, generator)
        check_exact(x.cuda(), codebook.cuda(), metric="cosine")
    x, codebook = adversarial_case("low_rank", 4096, 16384, 16, generator, dtype=torch.float16)
    check_exact(x.cuda(), codebook.cuda(), k=4, metric="cosine")


def test_certificate_statistics_and_emulation(extension):
    """Near-code data is certified (no fallback); the kernel's certified rows agree with the CPU emulation's."""
    generator = torch.Generator().manual_seed(1)
    x, codebook = adversarial_case("near_codes", 4096, 8192, 32, generator)
    result = extension.search(x.cuda(), codebook.cuda(), 1, "l2")
    assert float(fallback_fraction(result)) < 0.01
    emulated = certified_nearest_codeword(x, codebook, 1, "l2", fallback="compact")
    assert torch.equal(result.indices.cpu(), emulated.indices)
    x, codebook = adversarial_case("low_rank", 1024, 16384, 16, generator)  # the precise (hi + lo) pass proves these
    low_rank = extension.search(x.cuda(), codebook.cuda(), 4, "l2")
    assert float(fallback_fraction(low_rank)) < 0.01
    assert torch.equal(low_rank.indices, reference(x.cuda(), codebook.cuda(), 4, "l2")[0])
    x, codebook = adversarial_case("ties", 256, 3000, 8, generator)
    tied = extension.search(x.cuda(), codebook.cuda(), 3, "l2")
    assert float(fallback_fraction(tied)) > 0.5 and torch.equal(tied.indices.cpu(), reference(x, codebook, 3, "l2")[0])


@pytest.mark.parametrize("precise", [False, True])
@pytest.mark.parametrize("metric", ["l2", "cosine"])
@pytest.mark.parametrize("dim", [2, 12, 40])
def test_kernel_operands_are_the_emulation_operands(extension, dim, metric, precise):
    """The kernel's centring, normalisation, hi + lo split (D <= 3, or the precise pass) and bias columns are those of
    ``certified.prepare``: same layout, same values up to the order of the float32 norm sums."""
    x, codebook = adversarial_case("offset", 300, 1000, dim, torch.Generator().manual_seed(dim))
    _, _, rows, codes, bias, center = extension.module.candidates(x.cuda(), codebook.cuda(), 1, metric, precise)
    ops = certified.prepare(x, codebook, metric, precise)
    hi_lo = certified.hi_lo_operands(dim, precise)
    width = ops.rows.shape[1]
    assert not rows[:, width:].float().any() and not codes[:, width:].float().any()  # zero padding
    torch.testing.assert_close(center.cpu(), ops.center, rtol=1e-6, atol=1e-7)
    kernel_x, kernel_c, kernel_bias = certified.read_operands(
        rows.float().cpu(), codes.float().cpu(), bias.cpu(), dim, hi_lo
    )
    emulated_x, emulated_c, emulated_bias = certified.read_operands(ops.rows, ops.codes, ops.bias, dim, hi_lo)
    for kernel_value, emulated_value in ((kernel_x, emulated_x), (kernel_c, emulated_c)):
        ulp = emulated_value.abs() * 2.0**-7 + 1e-30  # one bf16 step: a norm summed in another order may round over
        assert ((kernel_value - emulated_value).abs() <= ulp).all()
    torch.testing.assert_close(kernel_bias, emulated_bias, rtol=1e-6, atol=1e-9)


def test_cuda_graph_capture_with_fallback_rows():
    """Under capture the fallback is the dense float64 search, selected per row (no host sync)."""
    x, codebook = adversarial_case("dense_low_dim", 300, 20_000, 1, torch.Generator().manual_seed(2))
    x, codebook = x.cuda(), codebook.cuda()
    eager = nearest_codeword(x, codebook, k=2)
    static_x = x.clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        nearest_codeword(static_x, codebook, k=2, check_finite=False)
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        captured = nearest_codeword(static_x, codebook, k=2, check_finite=False)
    graph.replay()
    assert torch.equal(captured.indices, eager.indices)
