"""The CUDA kernel behind ``tokenizers_zoo::nearest_codeword``, built from ``cuda/`` with torch's extension tooling.

The extension compiles at the first CUDA call (cached under ``TORCH_EXTENSIONS_DIR``) or ahead of time with
``tokenizers-zoo build-cuda``. ``TOKENIZERS_ZOO_CUDA`` chooses: ``0`` (default: the exact chunked torch search
on CUDA tensors), ``auto`` (use the kernel, fall back to the chunked search with one warning if it cannot be
built or fails its first-use check), ``1`` (use the kernel, raise if it cannot be built or fails the check).
``TOKENIZERS_ZOO_CUDA_ARCHS`` (e.g. ``"80;90"``) sets the architectures to build for; by default the visible
GPU's, or sm_80 and sm_90 on a machine without one.

The kernel is never trusted on its own. It only produces candidates: bf16 tensor-core scores on centred vectors
(unit vectors for cosine, hi + lo pairs for D <= 3) and per-lane lists of the best ones. :class:`CertifiedKernel`
then certifies every row in torch (:mod:`tokenizers_zoo.ops.certified`: a rigorous bound on the kernel's score
error, measured on the very operands it used, must prove that the lists hold the k nearest codes), re-ranks the
candidates in float64 and sends the rows without a proof to an exact search: the chunked search of those rows in
eager mode, the float64 brute force of every row selected per row while a CUDA graph is being captured (no host
sync). The answer therefore equals the float64 brute force on every input; only its speed depends on the data.
(Before this design, an H200 run found the kernel's fixed-depth candidates wrong on dense, low-rank and offset
codebooks.) The proof does rest on the lists' invariant (a code missing from a list scores no better than the list's
last entry) and on listed scores belonging to their codes; the latter is re-checked per row in torch, the former by
the first-use self-check (adversarial data, :data:`SELF_CHECK_CASES`) and ``tests/test_cuda_kernel.py``.
"""

from __future__ import annotations

import functools
import os
import shutil
import warnings
from pathlib import Path

import torch

from ..resources import data_dir
from . import certified
from .adversarial import adversarial_case
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


SELF_CHECK_CASES = (  # (data kind, N, K, D, k, metric, dtype): every kernel variant (augmented or biased scores,
    ("near_codes", 100, 300, 8, 1, "l2", torch.float32),  # resident or streamed rows, lists of 4 or 16, cosine),
    ("near_codes", 130, 200, 33, 1, "l2", torch.float32),  # then the data that defeated fixed-depth candidates on
    ("near_codes", 70, 500, 100, 3, "l2", torch.float32),  # an H200: offset, dense low-D, low-rank, duplicates,
    ("near_codes", 65, 129, 300, 8, "l2", torch.float32),  # all-tied, tiny and huge scales, fp16/bf16/fp64 inputs
    ("near_codes", 90, 257, 8, 2, "cosine", torch.float32),
    ("near_codes", 40, 3000, 64, 16, "cosine", torch.float32),
    ("near_codes", 3, 1, 5, 1, "l2", torch.float32),
    ("offset", 64, 1000, 12, 1, "cosine", torch.float32),
    ("offset", 64, 1000, 12, 4, "l2", torch.bfloat16),
    ("dense_low_dim", 64, 5000, 1, 4, "l2", torch.float32),
    ("dense_low_dim", 64, 5000, 3, 1, "l2", torch.float64),
    ("low_rank", 64, 2000, 16, 4, "cosine", torch.float16),  # low rank: the precise (hi + lo) pass, streamed,
    ("low_rank", 64, 4000, 100, 2, "l2", torch.float32),  # augmented at D = 16, with a float32 bias at D = 100
    ("duplicates", 64, 700, 12, 1, "l2", torch.float32),
    ("ties", 32, 300, 8, 3, "l2", torch.float32),
    ("tiny", 64, 500, 16, 2, "l2", torch.float16),
    ("huge", 64, 500, 40, 2, "cosine", torch.float32),
)


def self_check(module, device: torch.device | str = "cuda") -> None:
    """Compare the search with the exact chunked search on small adversarial problems; raise :class:`CudaUnavailable`
    if any index differs."""
    generator = torch.Generator().manual_seed(0)
    for kind, n, k_codes, dim, k, metric, dtype in SELF_CHECK_CASES:
        x, codebook = adversarial_case(kind, n, k_codes, dim, generator, dtype=dtype)
        indices, _ = module.nearest_codeword(x.to(device), codebook.to(device), k, metric)
        expected, _ = nearest_codeword_chunked(x, codebook, k, metric, max_chunk_elements())
        wrong = int((indices.cpu() != expected).any(dim=1).sum())
        if wrong:
            raise CudaUnavailable(
                f"the CUDA kernel disagrees with the exact search on this GPU ({wrong}/{n} rows, {kind} data, N={n} "
                f"K={k_codes} D={dim} k={k} {metric} {dtype}); please report it"
            )


class CertifiedKernel:
    """The extension's candidate lists, certified row by row in torch, with the exact fallback for the rest."""

    def __init__(self, module):
        self.module = module

    def nearest_codeword(self, x: torch.Tensor, codebook: torch.Tensor, k: int, metric: str):
        """``(indices [N, k], distances [N, k])``, equal to the float64 brute force."""
        return self.search(x, codebook, k, metric)[:2]

    def search(self, x: torch.Tensor, codebook: torch.Tensor, k: int, metric: str) -> certified.CertifiedSearch:
        """The full result, with the per-row ``certified`` flags (see :func:`certified.fallback_fraction`)."""
        if x.dtype != codebook.dtype:
            dtype = torch.promote_types(x.dtype, codebook.dtype)
            x, codebook = x.to(dtype), codebook.to(dtype)
        if x.shape[0] == 0:
            empty = x.new_empty((0, k), dtype=torch.int64)
            return certified.CertifiedSearch(empty, empty.float(), empty[:, 0].bool())
        result = self.certified_pass(x, codebook, k, metric)
        capturing = x.is_cuda and torch.cuda.is_current_stream_capturing()
        fallback = "dense" if capturing else "compact"
        retry = functools.partial(self.certified_pass, codebook=codebook, k=k, metric=metric, precise=True)
        return certified.apply_fallback(x, codebook, k, metric, result, fallback, max_chunk_elements(), retry)

    def certified_pass(self, x, codebook, k, metric, precise=False) -> certified.CertifiedSearch:
        """One kernel pass (``precise``: hi + lo operands), its lists certified and re-ranked, before any fallback."""
        dim = x.shape[1]
        values, slots, rows, codes, bias, center = self.module.candidates(x, codebook, k, metric, precise)
        hi_lo = certified.hi_lo_operands(dim, precise)
        rows, codes = rows.float(), codes.float()
        x_fast, c_fast, added = certified.read_operands(rows, codes, bias, dim, hi_lo)
        tolerance = certified.tolerance_from_operands(x, codebook, metric, x_fast, c_fast, added, center, hi_lo)
        if bias.numel() == 0:  # folded into the product (D <= 32)
            bias = codes.new_zeros(codes.shape[0])
        floor = values.view(x.shape[0], -1, certified.list_depth(k))[:, :, -1].amin(dim=1)
        candidates = torch.where(slots < 0, codebook.shape[0], slots.long())
        operands = certified.FastOperands(rows, codes, bias, center, tolerance)
        return certified.certify_candidates(
            x, codebook, k, metric, candidates, values, floor, tolerance, max_chunk_elements(), operands
        )


@functools.cache
def load_extension():
    """The built and self-checked :class:`CertifiedKernel`, or ``None`` (after one warning) when the kernel is
    disabled, cannot be built, or fails its first-use check against the exact chunked search."""
    mode = os.environ.get("TOKENIZERS_ZOO_CUDA", "0")
    if mode == "0":
        return None
    try:
        kernel = CertifiedKernel(build_extension())
        self_check(kernel)
        return kernel
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
    return extension.nearest_codeword(x, codebook, k, metric)
