"""Share of rows the certified search cannot prove from its bf16 candidate lists, per kind of data.

The certified nearest-codeword search (``tokenizers_zoo/ops/certified.py``, the CUDA kernel's algorithm) answers a
row from its fast candidates only when its error bound proves them; the other rows are proposed again with bf16
hi + lo operands (the precise pass), and the rows still unproven take the exact search. Its answers are exact on
every input (the tests check that); its speed depends on these shares: "first pass" (rows the fast pass cannot
prove) and "exact" (rows left to the exact search). Each row of the table is one data
kind of ``tokenizers_zoo.ops.adversarial`` at the shapes of the kernel issue's H200 table. Every answer is also
compared with the exact chunked search ("wrong" must be 0).

On ``--device cpu`` the torch emulation runs with ``--splits`` codebook splits (the kernel chooses its own by
occupancy: up to 32 lists on an H200); on ``--device cuda`` the kernel itself runs (``TOKENIZERS_ZOO_CUDA=1``), and
the certified route and the exact chunked search are both timed (median of ``--repeats`` after a warm-up, CUDA events:
``nearest_codeword.cuda_time``).

    python benchmarks/certified_fallback.py --device cpu
    TOKENIZERS_ZOO_CUDA=1 python benchmarks/certified_fallback.py --device cuda
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys

import torch
from nearest_codeword import cuda_time

from tokenizers_zoo.atomic import atomic_write
from tokenizers_zoo.ops.adversarial import adversarial_case
from tokenizers_zoo.ops.certified import certified_nearest_codeword, certified_pass, fallback_fraction
from tokenizers_zoo.ops.chunked import nearest_codeword_chunked
from tokenizers_zoo.ops.nearest_codeword import max_chunk_elements

RESULTS = os.path.join(os.path.dirname(__file__), "results")
CASES = (  # (data kind, K, D, k, metric, dtype): the table first, then the other kinds
    ("offset", 1_000, 12, 1, "cosine", torch.bfloat16),
    ("offset", 1_000, 12, 1, "cosine", torch.float64),
    ("offset", 262_144, 48, 1, "cosine", torch.float32),
    ("offset", 100_000, 8, 1, "l2", torch.float32),
    ("dense_low_dim", 5_000, 1, 4, "l2", torch.float32),
    ("dense_low_dim", 65_536, 1, 4, "l2", torch.float32),
    ("dense_low_dim", 16_384, 3, 4, "l2", torch.float32),
    ("dense_low_dim", 100_000, 3, 4, "l2", torch.float32),
    ("dense_low_dim", 100_000, 2, 4, "cosine", torch.float32),
    ("low_rank", 16_384, 16, 4, "cosine", torch.float16),
    ("low_rank", 16_384, 16, 4, "l2", torch.float32),
    ("random", 100_000, 8, 1, "l2", torch.float32),
    ("random", 262_144, 32, 1, "l2", torch.float32),
    ("near_codes", 4_096, 512, 1, "l2", torch.float32),
    ("near_codes", 5_000, 1433, 1, "cosine", torch.float32),
    ("duplicates", 20_000, 16, 1, "l2", torch.float32),
    ("ties", 3_000, 8, 3, "l2", torch.float32),
    ("tiny", 16_384, 32, 2, "l2", torch.float16),
    ("huge", 16_384, 64, 2, "cosine", torch.float32),
)


def run_case(case, rows: int, device: str, splits: int, repeats: int) -> dict:
    kind, k_codes, dim, k, metric, dtype = case
    x, codebook = adversarial_case(kind, rows, k_codes, dim, torch.Generator().manual_seed(0), dtype=dtype)
    x, codebook = x.to(device), codebook.to(device)
    chunk = max_chunk_elements()
    if device == "cuda":
        from tokenizers_zoo.ops.cuda import load_extension

        kernel = load_extension()
        if kernel is None:
            raise SystemExit("the CUDA kernel is off or failed to build: set TOKENIZERS_ZOO_CUDA=1")
        first_pass = lambda: kernel.certified_pass(x, codebook, k, metric)  # noqa: E731
        search = lambda: kernel.search(x, codebook, k, metric)  # noqa: E731
    else:
        first_pass = lambda: certified_pass(x, codebook, k, metric, splits, chunk)  # noqa: E731
        search = lambda: certified_nearest_codeword(  # noqa: E731
            x, codebook, k, metric, splits=splits, fallback="compact", max_chunk_elements=chunk
        )
    exact = lambda: nearest_codeword_chunked(x, codebook, k, metric, chunk)  # noqa: E731
    result, (expected, _) = search(), exact()
    row = {
        "kind": kind, "N": rows, "K": k_codes, "D": dim, "k": k, "metric": metric, "dtype": str(dtype).split(".")[-1],
        "first_pass": float(fallback_fraction(first_pass())), "fallback": float(fallback_fraction(result)),
        "wrong": int((result.indices != expected).any(dim=1).sum()),
    }
    if device == "cuda":
        row["certified_ms"], row["exact_ms"] = cuda_time(search, repeats), cuda_time(exact, repeats)
    return row


def table(rows: list[dict]) -> str:
    timed = "certified_ms" in rows[0]
    head = "| data | N x K x D | k | metric | dtype | unproven after first pass | exact search | wrong |"
    head += " certified ms | exact ms |" if timed else ""
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        line = (f"| {r['kind']} | {r['N']} x {r['K']} x {r['D']} | {r['k']} | {r['metric']} | {r['dtype']} | "
                f"{100 * r['first_pass']:.1f}% | {100 * r['fallback']:.1f}% | {r['wrong']} |")
        if timed:
            line += f" {r['certified_ms']:.2f} | {r['exact_ms']:.2f} |"
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--rows", type=int, help="rows per case (default: 256 on cpu, 4096 on cuda)")
    parser.add_argument("--splits", type=int, default=4, help="emulated codebook splits (cpu)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per route (cuda)")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    rows_per_case = args.rows or (256 if args.device == "cpu" else 4096)
    rows = [run_case(case, rows_per_case, args.device, args.splits, args.repeats) for case in CASES]
    if args.device == "cpu":
        device = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads (torch emulation)"
    else:
        device = torch.cuda.get_device_name()
    record = {
        "device": device, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(["python", *sys.argv]), "torch": torch.__version__, "rows": rows,
    }
    for path in filter(None, [os.path.join(RESULTS, f"certified_fallback_{args.device}.json"), args.json]):
        atomic_write(path, lambda temporary: temporary.write_text(json.dumps(record, indent=2) + "\n"))
    print(f"{datetime.date.today()} | torch {torch.__version__} | {device}")
    print(table(rows))


if __name__ == "__main__":
    main()
