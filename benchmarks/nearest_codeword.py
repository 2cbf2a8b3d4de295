"""Benchmark the nearest-codeword op against the usual torch baselines: time, throughput, peak extra memory.

    python benchmarks/nearest_codeword.py --device cpu     # the kernel issue's CPU shapes
    python benchmarks/nearest_codeword.py --device cuda    # the zoo's shapes on a GPU, with a measured roofline

CPU: each (variant, shape) runs in a fresh subprocess; peak extra memory is the growth of the peak resident
set (``ru_maxrss``) over what the inputs took. CUDA: one process; ``torch.cuda.max_memory_allocated`` above
the inputs; times from CUDA events (median). Baselines search chunks of rows whose score matrix stays under
1 GiB (FAISS's tiling); "flips" counts rows whose index differs from a float64 search (4096 rows sampled).
"fallback" is the share of those rows the certified search could not prove from its bf16 candidate lists (they
take the exact fallback): the kernel's own on CUDA, the torch emulation of the kernel's algorithm on CPU.
The rows, with device, date, command and machine load, go to ``benchmarks/results/nearest_codeword_<device>.json``
(and to ``--json`` if given).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

from tokenizers_zoo.atomic import atomic_write

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
CPU_SHAPES = ["16384x100000x8", "4096x4096x512"]
CUDA_SHAPES = [  # the zoo's searches: VQGAN-LC, FQGAN, SimVQ-262k, WavTokenizer, VQGraph (Cora), a large stress case
    "65536x100000x8", "65536x16384x8", "16384x262144x32", "9000x4096x512", "2485x5000x1433", "65536x100000x256",
]
TILE_BYTES = 1 << 30
FLIP_ROWS = 4096


def parse(shape: str) -> tuple[int, int, int]:
    n, k, d = map(int, shape.split("x"))
    return n, k, d


def make_inputs(n: int, k: int, d: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x, codebook = torch.randn(n, d, generator=generator), torch.randn(k, d, generator=generator)
    return x.to(device), codebook.to(device)


# ----------------------------------------------------------------------------------------------- variants


def zoo_op(x, codebook):
    from tokenizers_zoo.ops import nearest_codeword

    return nearest_codeword(x, codebook, check_finite=False).indices


def _chunked(score):
    def search(x, codebook):
        rows = max(1, TILE_BYTES // (4 * codebook.shape[0]))
        return torch.cat([score(part, codebook) for part in x.split(rows)])

    return search


def _addmm(part, codebook):
    return torch.addmm(codebook.square().sum(1), part, codebook.T, alpha=-2).argmin(1)


def cdist_argmin_whole(x, codebook):
    return torch.cdist(x, codebook).argmin(1)


cdist_argmin = _chunked(cdist_argmin_whole)
addmm_argmin = _chunked(_addmm)


def addmm_argmin_bf16(x, codebook):
    return addmm_argmin(x.bfloat16(), codebook.bfloat16())


_COMPILED = {}


def compiled_addmm_argmin(x, codebook, dtype):
    if dtype not in _COMPILED:
        _COMPILED[dtype] = torch.compile(_addmm, dynamic=True)
    return _chunked(_COMPILED[dtype])(x.to(dtype), codebook.to(dtype))


def with_tf32(fn, enabled: bool):
    def run(x, codebook):
        previous = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = enabled
        try:
            return fn(x, codebook)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = previous

    return run


CPU_VARIANTS = {"tokenizers_zoo.ops": zoo_op, "cdist+argmin": cdist_argmin_whole}
KERNEL = "tokenizers_zoo kernel"
CUDA_VARIANTS = {
    KERNEL: zoo_op,
    "cdist+argmin (fp32)": with_tf32(cdist_argmin, False),
    "addmm+argmin (fp32)": with_tf32(addmm_argmin, False),
    "addmm+argmin (tf32)": with_tf32(addmm_argmin, True),
    "addmm+argmin (bf16)": addmm_argmin_bf16,
    "compile(addmm+argmin) (tf32)": with_tf32(lambda x, c: compiled_addmm_argmin(x, c, torch.float32), True),
    "compile(addmm+argmin) (bf16)": lambda x, c: compiled_addmm_argmin(x, c, torch.bfloat16),
}


def exact_indices(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Float64 nearest codes of the first FLIP_ROWS rows, by direct differences."""
    codebook = codebook.double()
    return torch.cat([
        torch.cdist(rows, codebook, compute_mode="donot_use_mm_for_euclid_dist").argmin(1)
        for rows in x[:FLIP_ROWS].double().split(256)
    ])


def fallback_share(x: torch.Tensor, codebook: torch.Tensor) -> float:
    """Share of the first FLIP_ROWS rows that the certified search sends to the exact fallback (k = 1, l2)."""
    from tokenizers_zoo.ops.certified import certified_nearest_codeword, fallback_fraction

    rows = x[:FLIP_ROWS]
    if x.is_cuda:
        from tokenizers_zoo.ops.cuda import load_extension

        kernel = load_extension()
        result = kernel.search(rows, codebook, 1, "l2") if kernel else None
    else:
        result = certified_nearest_codeword(rows, codebook, 1, "l2", fallback="compact")
    return float("nan") if result is None else float(fallback_fraction(result))


# ----------------------------------------------------------------------------------------------- CPU


def measure_cpu(variant: str, shape: str, repeats: int) -> dict:
    """Child process: time and peak extra memory of one variant on one shape."""
    n, k, d = parse(shape)
    x, codebook = make_inputs(n, k, d, "cpu")
    fn = CPU_VARIANTS[variant]
    fn(x[:64], codebook[:64])  # initialise the libraries' thread pools and buffers outside the measurement
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    indices = fn(x, codebook)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x, codebook)
        times.append(time.perf_counter() - start)
    flips = int((indices[:FLIP_ROWS] != exact_indices(x, codebook)).sum())
    row = {"variant": variant, "shape": shape, "ms": 1000 * statistics.median(times),
           "ms_all": [1000 * t for t in times], "peak_mb": peak / 2**20, "flips": flips}
    if variant == "tokenizers_zoo.ops":
        row["fallback"] = fallback_share(x, codebook)
    return row


def run_cpu(shapes: list[str], repeats: int) -> list[dict]:
    rows = []
    for shape in shapes:
        for variant in CPU_VARIANTS:
            time.sleep(5)  # let the kernel reclaim the previous child's memory: it slows the next one down otherwise
            command = [sys.executable, __file__, "--child", variant, "--shapes", shape, "--repeats", str(repeats)]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode:
                rows.append({"variant": variant, "shape": shape, "error": result.stderr.strip().splitlines()[-1]})
            else:
                rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return rows


# ----------------------------------------------------------------------------------------------- CUDA


def cuda_time(fn, repeats: int) -> float:
    """Median milliseconds of ``fn()`` by CUDA events, after one warm-up call."""
    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def ceilings() -> dict:
    """Measured bf16 GEMM rate (TFLOP/s) and device-to-device copy bandwidth (bytes read + written, TB/s)."""
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    gemm_ms = cuda_time(lambda: a @ b, 20)
    src = torch.randn(1 << 29, device="cuda")  # 2 GiB
    dst = torch.empty_like(src)
    copy_ms = cuda_time(lambda: dst.copy_(src), 20)
    return {"bf16_tflops": 2 * 8192**3 / gemm_ms / 1e9, "copy_tbps": 2 * src.numel() * 4 / copy_ms / 1e9}


def run_cuda(shapes: list[str], repeats: int, variants: list[str], save) -> tuple[list[dict], dict]:
    """All variants on every shape; ``save(rows, ceilings)`` after each shape (a killed run keeps what it measured)."""
    roof = ceilings()
    rows = []
    for shape in shapes:
        n, k, d = parse(shape)
        x, codebook = make_inputs(n, k, d, "cuda")
        exact = exact_indices(x, codebook)
        flops = 2.0 * n * k * d
        floor_ms = max(flops / (roof["bf16_tflops"] * 1e9), (n * d * 4 + k * d * 4 + n * 12) / (roof["copy_tbps"] * 1e9))
        for variant in variants:
            fn = CUDA_VARIANTS[variant]
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            base = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            try:
                indices = fn(x, codebook)
                torch.cuda.synchronize()
                peak = torch.cuda.max_memory_allocated() - base
                ms = cuda_time(lambda: fn(x, codebook), repeats)
            except torch.cuda.OutOfMemoryError as error:
                rows.append({"shape": shape, "variant": variant, "error": f"out of memory: {str(error)[:80]}"})
                continue
            rows.append({
                "shape": shape, "variant": variant, "ms": ms, "tflops": flops / ms / 1e9,
                "roofline_pct": 100 * floor_ms / ms, "peak_mb": peak / 2**20,
                "flips": int((indices[:FLIP_ROWS] != exact).sum()),
            })
            if variant == KERNEL:
                rows[-1]["fallback"] = fallback_share(x, codebook)
            del indices
        best = min((r["ms"] for r in rows if r["shape"] == shape and "ms" in r and r["variant"] != KERNEL), default=None)
        for row in rows:
            if row["shape"] == shape and "ms" in row and best:
                row["speedup"] = best / row["ms"]
        save(rows, roof)
    return rows, roof


# ----------------------------------------------------------------------------------------------- report


def table(rows: list[dict], device: str) -> str:
    if device == "cpu":
        head = ("| shape N x K x D | variant | median ms | peak extra MB | N x K fp32 MB | flips / 4096 | fallback |\n"
                "|---|---|---|---|---|---|---|")
        body = [
            f"| {r['shape']} | {r['variant']} | " + (f"failed: {r['error']} | | | | |" if "error" in r else
            f"{r['ms']:.1f} | {r['peak_mb']:.0f} | {parse(r['shape'])[0] * parse(r['shape'])[1] * 4 / 2**20:.0f} | "
            f"{r['flips']} | {_share(r)} |")
            for r in rows
        ]
    else:
        head = ("| shape N x K x D | variant | median ms | speedup vs best baseline | TFLOP/s | % of roofline | peak extra MB "
                "| flips / 4096 | fallback |\n|---|---|---|---|---|---|---|---|---|")
        body = [
            f"| {r['shape']} | {r['variant']} | " + (f"failed: {r['error']} | | | | | | |" if "error" in r else
            f"{r['ms']:.3f} | {r.get('speedup', float('nan')):.2f}x | {r['tflops']:.1f} | {r['roofline_pct']:.1f} | "
            f"{r['peak_mb']:.0f} | {r['flips']} | {_share(r)} |")
            for r in rows
        ]
    return "\n".join([head, *body])


def _share(row: dict) -> str:
    return f"{100 * row['fallback']:.2f}%" if "fallback" in row else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--shapes", nargs="+", help="NxKxD (default: the device's list)")
    parser.add_argument("--variants", nargs="+", help="CUDA variants to run (default: all)")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure_cpu(args.child, args.shapes[0], args.repeats)))
        return
    shapes = args.shapes or (CPU_SHAPES if args.device == "cpu" else CUDA_SHAPES)
    start_load = list(os.getloadavg())

    def save(rows: list[dict], extra: dict) -> None:
        record = {
            "device": where(extra), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(["python", *sys.argv]), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "load_average": {"start": start_load, "end": list(os.getloadavg())}, "ceilings": extra, "rows": rows,
        }
        for path in filter(None, [os.path.join(RESULTS, f"nearest_codeword_{args.device}.json"), args.json]):
            atomic_write(path, lambda temporary: temporary.write_text(json.dumps(record, indent=2) + "\n"))

    def where(extra: dict) -> str:
        if args.device == "cpu":
            return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"
        rates = f"bf16 GEMM {extra['bf16_tflops']:.0f} TFLOP/s, copy {extra['copy_tbps']:.2f} TB/s"
        return f"{torch.cuda.get_device_name()}, {rates}"

    if args.device == "cpu":
        rows, extra = run_cpu(shapes, args.repeats or 5), {}
        save(rows, extra)
    else:
        rows, extra = run_cuda(shapes, args.repeats or 10, args.variants or list(CUDA_VARIANTS), save)
    load = os.getloadavg()
    loads = " ".join(f"{value:.2f}" for value in load)
    print(f"{datetime.date.today()} | torch {torch.__version__} | {where(extra)} | load average {loads}")
    print(table(rows, args.device))


if __name__ == "__main__":
    main()
