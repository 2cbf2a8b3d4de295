"""Peak memory and wall time of `tokenizers-zoo encode` over a folder, against the memory of importing the package.

    python benchmarks/encode_memory.py --data ../shared/data/images/cifar10_test_subset --batch-sizes 16 256

Each run is a fresh process; its peak resident set comes from the OS (``getrusage`` of the finished child).
Writes the rows to ``benchmarks/results/encode_memory.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "encode_memory.json"


def peak_mb(command: list[str]) -> tuple[float, float]:
    """(peak resident MB, wall seconds) of ``command`` run in a fresh child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if after <= before:
        raise RuntimeError("run the benchmark from a fresh process: an earlier child already peaked higher")
    return after / 1024, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder of images")
    parser.add_argument("--model", default="vqvae_tiny")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 256])
    args = parser.parse_args()
    files = sum(1 for p in Path(args.data).rglob("*") if p.is_file())
    rows = []
    import_mb, import_s = peak_mb([sys.executable, "-c", "import tokenizers_zoo"])
    rows.append({"what": "import tokenizers_zoo", "batch_size": None, "peak_mb": round(import_mb), "seconds": round(import_s, 2)})
    with tempfile.TemporaryDirectory() as folder:
        for batch_size in args.batch_sizes:
            command = [sys.executable, "-m", "tokenizers_zoo", "encode", args.model, args.data, "-o", f"{folder}/t.safetensors",
                       "--force", "--batch-size", str(batch_size)]
            mb, seconds = peak_mb(command)
            rows.append({"what": f"encode {files} files", "batch_size": batch_size, "peak_mb": round(mb), "seconds": round(seconds, 2)})
    result = {
        "device": f"{platform.machine()} CPU, {os.cpu_count()} cores",
        "date": str(datetime.date.today()),
        "command": " ".join(sys.argv),
        "rows": rows,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print("| run | batch size | peak resident MB | wall s |\n|---|---|---|---|")
    for row in rows:
        print(f"| {row['what']} | {row['batch_size'] or '-'} | {row['peak_mb']} | {row['seconds']} |")


if __name__ == "__main__":
    main()
