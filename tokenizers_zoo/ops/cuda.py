"""The CUDA kernel behind ``tokenizers_zoo::nearest_codeword``, built from ``cuda/`` with torch's extension tooling.

The extension compiles at the first CUDA call (cached under ``TORCH_EXTENSIONS_DIR``) or ahead of time with
``tokenizers-zoo build-cuda``. ``TOKENIZERS_ZOO_CUDA`` chooses: ``0`` (default: the exact chunked torch search
on CUDA tensors), ``auto`` (use the kernel, fall back to the chunked search with one warning if it cannot be
built), ``1`` (use the kernel, raise if it cannot be built). The kernel is opt-in until it is exact on every
input: on an H200 it returned wrong codes for dense, low-rank and offset codebooks (see
``benchmarks/RESULTS.md``), which its first-use self-check did not catch. ``TOKENIZERS_ZOO_CUDA_ARCHS`` (e.g. ``"80;90"``) sets the architectures to build for;
by default the visible GPU's, or sm_80 and sm_90 on a machine without one.

On CUDA the search is the fused kernel: bf16 tensor-core scores on centred (or, for cosine, unit) vectors,
the best candidates of each lane's share of the codebook, then an exact float64 re-rank of the best 8
(2k for top-k) on the original inputs, ties to the lowest index. It can differ from the exact CPU search
only when the true nearest code falls outside those candidates, which needs several codes within bf16
rounding of it; the measured rates are in ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import functools
import os
import shutil
import warnings
from pathlib import Path

import torch

from ..resources import data_dir
from .chunked import nearest_codeword_chunked
from .nearest_codeword import max_chunk_elements, nearest_codeword_op

EXTENSION_NAME = "tokenizers_zoo_nearest_codeword"
SOURCES = ("nearest_codeword.cu",)
CPU_MACHINE_ARCHS = ("80", "90")
MAX_K = 16
_TOOLKIT_GUESSES = ("/usr/local/cuda", "/usr/local/cuda-13.0", "/usr/local/cuda-12.8", "/opt/cuda")


class CudaUnavailable(RuntimeError):
    """The CUDA extension cannot be built or loaded here (no CUDA torch, no toolkit, or a compile error)."""


def find_cuda_home() -> Path | None:
    """The CUDA toolkit folder: ``CUDA_HOME``/``CUDA_PATH``, the toolkit nvcc belongs to, or a usual location."""
    candidates = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = shutil.which("nvcc")
    if nvcc:
        candidates.append(str(Path(nvcc).resolve().parent.parent))
    candidates.extend(_TOOLKIT_GUESSES)
    for candidate in filter(None, candidates):
        home = Path(candidate)
        if (home / "bin" / "nvcc").is_file() and (home / "include" / "cuda_runtime.h").is_file():
            return home
    return None


def target_archs() -> list[str]:
    """Compute capabilities to compile for (``"90"`` = sm_90)."""
    configured = os.environ.get("TOKENIZERS_ZOO_CUDA_ARCHS")
    if configured:
        return [a.strip().replace(".", "") for a in configured.replace(",", ";").split(";") if a.strip()]
    if torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability()
        return [f"{major}{minor}"]
    return list(CPU_MACHINE_ARCHS)


def build_extension(build_dir: str | os.PathLike | None = None, archs: list[str] | None = None, verbose: bool = False):
    """Compile (or load the cached build of) the extension module; raises :class:`CudaUnavailable`."""
    if torch.version.cuda is None:
        raise CudaUnavailable(f"torch {torch.__version__} is a CPU-only build; install a CUDA build to use the kernel")
    home = find_cuda_home()
    if home is None:
        raise CudaUnavailable("no CUDA toolkit found: set CUDA_HOME to the folder that holds bin/nvcc")
    os.environ["CUDA_HOME"] = str(home)
    from torch.utils import cpp_extension

    cpp_extension.CUDA_HOME = str(home)  # torch guesses it once, at import, from nvcc's location; that can be wrong
    archs = archs or target_archs()
    gencode = [f"-gencode=arch=compute_{a},code=sm_{a}" for a in archs]
    gencode.append(f"-gencode=arch=compute_{max(archs)},code=compute_{max(archs)}")  # PTX for newer GPUs
    if build_dir is not None:
        Path(build_dir).mkdir(parents=True, exist_ok=True)
    sources = [str(data_dir("cuda") / name) for name in SOURCES]
    try:
        return cpp_extension.load(
            name=EXTENSION_NAME,
            sources=sources,
            extra_cflags=["-O3"],
            extra_cuda_cflags=["-O3", "-std=c++17", "-lineinfo", *gencode],
            build_directory=None if build_dir is None else str(build_dir),
            verbose=verbose,
        )
    except (RuntimeError, OSError, ImportError) as error:
        raise CudaUnavailable(f"building the CUDA extension from {sources[0]} failed: {error}") from error


SELF_CHECK_CASES = (  # (N, K, D, k, metric): every kernel variant (augmented or biased scores, resident or
    (100, 300, 8, 1, "l2"),  # streamed rows, lists of 4 or 16, cosine) on data near the codes
    (130, 200, 33, 1, "l2"),
    (70, 500, 100, 3, "l2"),
    (65, 129, 300, 8, "l2"),
    (90, 257, 8, 2, "cosine"),
    (40, 3000, 64, 16, "cosine"),
    (3, 1, 5, 1, "l2"),
)


def self_check(module, device: torch.device | str = "cuda") -> None:
    """Compare the kernel with the exact CPU search on small problems; raise :class:`CudaUnavailable` if it differs."""
    generator = torch.Generator().manual_seed(0)
    for n, k_codes, dim, k, metric in SELF_CHECK_CASES:
        codebook = torch.randn(k_codes, dim, generator=generator)
        x = codebook[torch.randint(k_codes, (n,), generator=generator)] + 0.01 * torch.randn(n, dim, generator=generator)
        indices, _ = module.nearest_codeword(x.to(device), codebook.to(device), k, metric)
        expected, _ = nearest_codeword_chunked(x, codebook, k, metric, max_chunk_elements())
        wrong = int((indices.cpu() != expected).any(dim=1).sum())
        if wrong:
            raise CudaUnavailable(
                f"the CUDA kernel disagrees with the exact search on this GPU ({wrong}/{n} rows, N={n} K={k_codes} "
                f"D={dim} k={k} {metric}); please report it"
            )


@functools.cache
def load_extension():
    """The built and self-checked module, or ``None`` (after one warning) when the kernel is disabled, cannot
    be built, or fails its first-use check against the exact CPU search."""
    mode = os.environ.get("TOKENIZERS_ZOO_CUDA", "0")
    if mode == "0":
        return None
    try:
        module = build_extension()
        self_check(module)
        return module
    except CudaUnavailable as error:
        if mode == "1":
            raise
        warnings.warn(f"{error}; using the chunked torch search on CUDA tensors instead", stacklevel=3)
        return None


@nearest_codeword_op.register_kernel("cuda")
def _nearest_codeword_cuda(x: torch.Tensor, codebook: torch.Tensor, k: int, metric: str):
    extension = load_extension() if k <= MAX_K else None
    if extension is None:
        return nearest_codeword_chunked(x, codebook, k, metric, max_chunk_elements())
    if x.dtype != codebook.dtype:
        dtype = torch.promote_types(x.dtype, codebook.dtype)
        x, codebook = x.to(dtype), codebook.to(dtype)
    indices, distances = extension.nearest_codeword(x, codebook, k, metric)
    return indices, distances
