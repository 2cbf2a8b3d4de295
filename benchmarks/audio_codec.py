"""Encode + decode speed of the full-size 75 tokens/s WavTokenizer, as a real-time factor.

    python benchmarks/audio_codec.py [--device cpu] [--batch 1] [--seconds 10] [--repeats 5] [--threads 1 2]
    python benchmarks/audio_codec.py --device cuda --batch 1 32

The model is ``wavtokenizer_small_75`` with random weights (time does not depend on the weights; the k-means
initialisation is skipped in eval mode), in eval mode under ``torch.no_grad``. The input is ``--seconds`` of real
24 kHz speech (the LibriTTS clips of ``../shared/data/audio/libritts_24k`` joined and cut), repeated ``--batch``
times. One call is ``decode(encode(audio).indices)``; ``seconds`` is the median of ``--repeats`` calls after one
warm-up (on CUDA, synchronised), and ``realtime_factor`` is audio seconds processed (batch x duration) per second
of wall time: above 1 is faster than real time. Each row also keeps the fastest call (``min_seconds``), the torch
thread count and the 1-minute load average when it was measured: on a shared machine other jobs slow it down, and
more threads than free cores is much slower (threads wait for each other at every operation). Rows go to
``benchmarks/results/audio_speed.json``: CPU and CUDA rows are kept side by side (``device`` and ``command`` are
keyed by device type), and the rows of the device measured now replace its earlier ones.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from tokenizers_zoo import create_model
from tokenizers_zoo.atomic import atomic_write
from tokenizers_zoo.data import load_audio

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT.parent / "shared" / "data" / "audio" / "libritts_24k"
RESULTS = ROOT / "benchmarks" / "results" / "audio_speed.json"
MODEL = "wavtokenizer_small_75"


def speech(seconds: float, sample_rate: int) -> torch.Tensor:
    """``seconds`` of real speech ``[T]``: the LibriTTS clips joined (and looped) then cut."""
    clips = [load_audio(path, sample_rate) for path in sorted(SPEECH.glob("*.wav"))]
    if not clips:
        raise FileNotFoundError(f"no .wav clips in {SPEECH}")
    audio = torch.cat(clips)
    samples = round(seconds * sample_rate)
    return audio.repeat(-(-samples // len(audio)))[:samples]


def time_call(call, device: torch.device, repeats: int) -> list[float]:
    """Wall times of ``call()`` in seconds, ``repeats`` runs after a warm-up."""
    times = []
    for attempt in range(repeats + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        started = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if attempt:
            times.append(time.perf_counter() - started)
    return times


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} ({platform.machine()}), {os.cpu_count()} cores"


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else the platform's processor string."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else platform.processor() or "unknown CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, nargs="+", default=[1])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", help="CPU: one row per torch thread count (default: torch's own)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if min(args.batch + (args.threads or [1]) + [args.repeats]) < 1 or not args.seconds > 0:
        parser.error("--batch, --threads, --repeats and --seconds must be positive")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: no CUDA GPU is available on this machine")
    torch.manual_seed(0)
    model = create_model(MODEL).eval().to(device)
    audio = speech(args.seconds, model.input_spec.sample_rate).to(device)

    rows = []
    with torch.no_grad():
        for threads, batch in itertools.product(args.threads or [torch.get_num_threads()], args.batch):
            torch.set_num_threads(threads)
            wav = audio.expand(batch, -1).contiguous()
            times = time_call(lambda: model.decode(model.encode(wav).indices), device, args.repeats)
            seconds = statistics.median(times)
            rows.append({"model": MODEL, "device": device.type, "batch": batch, "seconds": round(seconds, 4),
                         "realtime_factor": round(batch * args.seconds / seconds, 2), "min_seconds": round(min(times), 4),
                         "threads": threads, "load_average": round(os.getloadavg()[0], 2)})
            print(rows[-1], flush=True)

    previous = json.loads(args.output.read_text()) if args.output.exists() else {"rows": []}
    kept = [row for row in previous.get("rows", []) if row.get("device") != device.type]
    command = " ".join(["python benchmarks/audio_codec.py", *sys.argv[1:]])
    result = {
        "device": {**previous.get("device", {}), device.type: device_name(device)} if isinstance(previous.get("device"), dict)
        else {device.type: device_name(device)},
        "date": str(datetime.date.today()),
        "command": {**(previous.get("command") if isinstance(previous.get("command"), dict) else {}), device.type: command},
        "audio_seconds": args.seconds,
        "torch": torch.__version__,
        "rows": kept + rows,
    }
    atomic_write(args.output, lambda temporary: temporary.write_text(json.dumps(result, indent=2) + "\n"))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
