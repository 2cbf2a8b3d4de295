"""The CUDA extension compiles with torch's extension tooling (no GPU needed), and fails over cleanly."""

import pytest
import torch

from tokenizers_zoo.ops import cuda


def _toolchain_missing() -> str | None:
    if torch.version.cuda is None:
        return "this torch build has no CUDA support"
    if cuda.find_cuda_home() is None:
        return "no CUDA toolkit (set CUDA_HOME)"
    return None


@pytest.mark.cuda_build
@pytest.mark.slow
@pytest.mark.skipif(_toolchain_missing() is not None, reason=str(_toolchain_missing()))
def test_extension_compiles_for_sm90_and_sm80(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKENIZERS_ZOO_CUDA_ARCHS", "80;90")
    module = cuda.build_extension(build_dir=tmp_path)
    assert callable(module.candidates)
    assert list(tmp_path.glob("*.so"))


def test_missing_toolkit_gives_a_clear_error(monkeypatch):
    monkeypatch.setattr(cuda, "find_cuda_home", lambda: None)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    with pytest.raises(cuda.CudaUnavailable, match="set CUDA_HOME"):
        cuda.build_extension()


def test_cpu_only_torch_gives_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(cuda.CudaUnavailable, match="CPU-only build"):
        cuda.build_extension()


def test_architectures_from_the_environment(monkeypatch):
    monkeypatch.setenv("TOKENIZERS_ZOO_CUDA_ARCHS", "8.0; 9.0")
    assert cuda.target_archs() == ["80", "90"]


class _FakeModule:
    """Stands in for the built extension: answers like the exact search, optionally with one wrong row."""

    def __init__(self, wrong: bool):
        self.wrong = wrong

    def nearest_codeword(self, x, codebook, k, metric):
        indices, distances = cuda.nearest_codeword_chunked(x, codebook, k, metric, 1 << 20)
        if self.wrong and x.shape[0] > 50:
            indices[7] = (indices[7] + 1) % codebook.shape[0]
        return indices, distances


def test_first_use_self_check_accepts_a_correct_kernel_and_rejects_a_wrong_one():
    cuda.self_check(_FakeModule(wrong=False), device="cpu")
    with pytest.raises(cuda.CudaUnavailable, match="disagrees with the exact search"):
        cuda.self_check(_FakeModule(wrong=True), device="cpu")


@pytest.mark.parametrize("mode", ["auto", "1", "0"])
def test_load_extension_falls_back_or_raises(monkeypatch, mode):
    def broken(*args, **kwargs):
        raise cuda.CudaUnavailable("no CUDA toolkit found")

    monkeypatch.setattr(cuda, "build_extension", broken)
    monkeypatch.setenv("TOKENIZERS_ZOO_CUDA", mode)
    cuda.load_extension.cache_clear()
    try:
        if mode == "1":
            with pytest.raises(cuda.CudaUnavailable):
                cuda.load_extension()
        elif mode == "auto":
            with pytest.warns(UserWarning, match="chunked torch search"):
                assert cuda.load_extension() is None
        else:
            assert cuda.load_extension() is None
    finally:
        cuda.load_extension.cache_clear()


@pytest.mark.cuda_build
@pytest.mark.skipif(cuda.find_cuda_home() is None, reason="no CUDA toolkit (set CUDA_HOME)")
def test_score_kernels_do_not_spill(tmp_path):
    """The hot kernels keep their accumulators and candidate lists in registers (ptxas report, sm_90)."""
    import subprocess

    from tokenizers_zoo.resources import data_dir

    signature = "(const __nv_bfloat16*, const __nv_bfloat16*, const float*, int, int, int, int, float*, int*)"
    source = tmp_path / "instances.cu"
    source.write_text(
        f'#include "{data_dir("cuda") / "nearest_codeword.cuh"}"\n'
        + "".join(
            f"template __global__ void tzoo::score_topc<{args}>{signature};\n"
            for args in ("16, 2, 4, true", "48, 2, 4, true", "64, 2, 4, false", "64, 1, 16, false")
        )
    )
    nvcc = cuda.find_cuda_home() / "bin" / "nvcc"
    result = subprocess.run(
        [str(nvcc), "-std=c++17", "-O3", "-gencode=arch=compute_90,code=sm_90", "-cubin", "--resource-usage",
         "-o", str(tmp_path / "k.cubin"), str(source)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    reports = [line for line in result.stderr.splitlines() if "spill" in line]
    assert len(reports) == 4 and all("0 bytes spill stores, 0 bytes spill loads" in line for line in reports), reports
