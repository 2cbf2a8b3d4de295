"""Long audio in overlapping chunks: code agreement with whole-file encoding, and peak memory.

    python benchmarks/audio_chunking.py --data ../shared/data/audio/libritts_24k --models wavtokenizer_tiny wavtokenizer_small_75

Agreement: the clips of ``--data`` joined into one file, encoded whole and in 2 s chunks with 0 to 2 s of context on
each side; a model without trained codes (a registered architecture) first fills its codebook by k-means on the first
4 s, so that codes are not all one. Memory: ``wavtokenizer_small_75`` (random weights) encoding 30 s and 120 s of noise
whole and chunked, each run a fresh process: the growth of its peak resident set during ``encode`` (Linux: the
peak is restarted through ``/proc/self/clear_refs`` just before).
Writes ``benchmarks/results/audio_chunking.json`` and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

import tokenizers_zoo
from tokenizers_zoo.data import list_audio, load_audio

RESULTS = Path(__file__).parent / "results" / "audio_chunking.json"
CONTEXTS_S = (0.0, 0.25, 0.5, 1.0, 2.0)
CHUNK_S = 2.0
MEMORY_MODEL = "wavtokenizer_small_75"
ENCODE_NOISE = """
import re, time, torch, tokenizers_zoo
kib = lambda field: int(re.search(field + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1))
torch.manual_seed(0)
model = tokenizers_zoo.create_model({model!r}).eval()
audio = torch.randn(1, {samples}) * 0.1
before = kib("VmRSS")
open("/proc/self/clear_refs", "w").write("5")  # Linux: restart the peak (VmHWM) from the current resident set
started = time.perf_counter()
with torch.no_grad():
    model.encode(audio{options})
print((kib("VmHWM") - before) / 1024, time.perf_counter() - started)
"""


def load_model(name: str):
    """A model folder or a registered model with weights, loaded; a registered architecture alone, built."""
    has_weights = Path(name).is_dir() or tokenizers_zoo.model_info(name).weights is not None
    return (tokenizers_zoo.from_pretrained(name) if has_weights else tokenizers_zoo.create_model(name)).eval()


@torch.no_grad()
def agreement_rows(name: str, audio: torch.Tensor) -> list[dict]:
    torch.manual_seed(0)
    model = load_model(name)
    rate, hop = model.input_spec.sample_rate, model.input_spec.hop_length
    trained = bool(model.quantizer.initialized)
    if not trained:
        model.quantizer.train()
        model.encode(audio[:, : 4 * rate])
        model.quantizer.eval()
    whole = model.encode(audio)
    rows = []
    for context_s in CONTEXTS_S:
        chunked = model.encode(audio, chunk_size=int(CHUNK_S * rate) // hop * hop, chunk_context=round(context_s * rate / hop) * hop)
        rows.append({
            "model": name, "weights": "trained" if trained else "random (k-means codebook)", "seconds": round(audio.shape[-1] / rate, 2),
            "chunk_s": CHUNK_S, "context_s": context_s,
            "code_agreement": round(float((chunked.indices == whole.indices).float().mean()), 4),
            "relative_latent_error": float((chunked.latents - whole.latents).norm() / whole.latents.norm()),
        })
    return rows


def memory_rows(seconds_list: list[float]) -> list[dict]:
    rate = tokenizers_zoo.model_info(MEMORY_MODEL).input_spec.sample_rate
    rows = []
    for seconds in seconds_list:
        for mode, options in (("whole", ""), ("chunked", f", chunk_size={int(CHUNK_S * rate)}, chunk_context={rate}")):
            script = ENCODE_NOISE.format(model=MEMORY_MODEL, samples=int(seconds * rate), options=options)
            grown_mb, wall = map(float, subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True).stdout.split())
            rows.append({"model": MEMORY_MODEL, "seconds": seconds, "mode": mode, "peak_mb_growth": round(grown_mb), "wall_s": round(wall, 1)})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="folder of audio clips, joined into one long file")
    parser.add_argument("--models", nargs="+", default=["wavtokenizer_tiny"], help="registered names or model folders")
    parser.add_argument("--memory-seconds", type=float, nargs="*", default=[30.0, 120.0])
    args = parser.parse_args()
    rate = 24_000
    audio = torch.cat([load_audio(path, rate) for path in list_audio(args.data)])[None]
    agreement = [row for name in args.models for row in agreement_rows(name, audio)]
    memory = memory_rows(args.memory_seconds)
    result = {
        "device": f"{platform.machine()} CPU, {os.cpu_count()} cores", "date": str(datetime.date.today()),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]), "rows": agreement + memory,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print("| model | weights | context each side (s) | code agreement | relative latent error |\n|---|---|---|---|---|")
    for row in agreement:
        print(f"| {row['model']} | {row['weights']} | {row['context_s']} | {row['code_agreement']} | {row['relative_latent_error']:.1e} |")
    print("\n| audio (s) | encode | peak resident growth during encode (MB) | wall s |\n|---|---|---|---|")
    for row in memory:
        print(f"| {row['seconds']:.0f} | {row['mode']} | {row['peak_mb_growth']} | {row['wall_s']} |")


if __name__ == "__main__":
    main()
