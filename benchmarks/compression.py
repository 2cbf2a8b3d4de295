"""Bits per pixel against PSNR on Kodak for a tokenizer, its k-means-shrunk codebooks and Gaussian PTQ of its latent.

    OMP_NUM_THREADS=1 python benchmarks/compression.py --kodak ../shared/data/kodak

The zoo's tiny models are trained on 32 x 32 CIFAR images, so each Kodak image is cut into 32 x 32 tiles and every
``--tile-stride``-th tile in both directions is coded (stride 4: 24 tiles per 768 x 512 image, spread over it);
whole images would go out of the training distribution (GroupNorm statistics over the whole image) and, for
``vqvae_tiny``, through its middle attention over 24,576 positions. PSNR is computed per image over its coded tiles
(in [-1, 1], reconstructions clamped) and averaged over the 24 images.

Rows per model: the model as trained; its codebook shrunk by k-means to K/2, K/4, ... down to ``--min-codebook``
codes, weighted by code usage and uniformly (the shrunk model re-assigns every latent to its nearest centroid); and TokenBridge-style PTQ
of the continuous pre-quantization latent at 1 to 8 bits per channel, decoded by the model's decoder. Code usage
(k-means weights) and the PTQ channel statistics are measured on a separate calibration folder (default: the 100
held-out CIFAR-10 images in ``tests/data/cifar10``), never on Kodak. ``bpp`` is the fixed-length cost (tokens x
log2 K / pixels); ``entropy_bpp`` entropy-codes each group's (PTQ: each channel's) tokens with their histogram
over the coded Kodak tiles themselves, so it is an optimistic static-code bound. Rows go to
``benchmarks/results/compression.json``; a Markdown table is printed.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

import tokenizers_zoo
from tokenizers_zoo.atomic import atomic_write
from tokenizers_zoo.compression import WEIGHTINGS, GaussianPTQ, continuous_latents, entropy_bpp, plain_bpp, shrink_codebook
from tokenizers_zoo.data import ImageFolder, list_images, load_image
from tokenizers_zoo.metrics import CodebookUsage

RESULTS = Path(__file__).parent / "results" / "compression.json"
CALIBRATION = Path(__file__).parents[1] / "tests" / "data" / "cifar10"
TILE = 32


def kodak_tiles(folder: Path, stride: int) -> list[torch.Tensor]:
    """Per image, every ``stride``-th 32 x 32 tile in both directions: ``[n, 3, 32, 32]`` in [-1, 1]."""
    tiles = []
    for path in list_images(folder):
        grid = load_image(path).unfold(1, TILE, TILE).unfold(2, TILE, TILE)[:, ::stride, ::stride]  # [3, rows, cols, 32, 32]
        tiles.append(grid.permute(1, 2, 0, 3, 4).reshape(-1, 3, TILE, TILE))
    return tiles


class Meter:
    """PSNR per image (over its tiles) and the index histograms of one row."""

    def __init__(self, codebook_size: int, groups: int):
        self.usage, self.psnrs, self.pixels, self.bpp = CodebookUsage(codebook_size, groups), [], 0, 0.0

    def add(self, tiles: torch.Tensor, reconstruction: torch.Tensor, indices: torch.Tensor, codebook_sizes) -> None:
        error = (reconstruction.clamp(-1, 1) - tiles).square().mean()
        self.psnrs.append(float(10 * torch.log10(4 / error)))
        self.usage.update(indices)
        self.pixels += tiles.shape[0] * TILE * TILE
        self.bpp = plain_bpp(indices, (TILE, TILE), codebook_sizes)

    def row(self, **fields) -> dict:
        return {**fields, "bpp": round(self.bpp, 4), "entropy_bpp": round(entropy_bpp(self.usage, self.pixels), 4),
                "psnr": round(sum(self.psnrs) / len(self.psnrs), 3)}


@torch.no_grad()
def benchmark(name: str, tiles: list[torch.Tensor], calibration: torch.Tensor, args) -> list[dict]:
    model = tokenizers_zoo.from_pretrained(name)
    latents = [continuous_latents(model, batch) for batch in tiles]
    rows = []
    size = model.quantizer.codebook_size
    sizes = [size // 2**i for i in range(int(math.log2(size / args.min_codebook)) + 1)]
    variants = [(size, None)] + [(k, weighting) for k in sizes[1:] for weighting in args.weightings]
    for codebook_size, weighting in variants:
        started = time.perf_counter()
        shrunk = model if weighting is None else shrink_codebook(
            model, codebook_size, weighting=weighting, data=calibration if weighting == "usage" else None, iters=args.iters
        )[0]
        meter = Meter(codebook_size, shrunk.quantizer.num_groups)
        sizes_per_group = getattr(shrunk.quantizer, "codebook_sizes", codebook_size)  # a PerGroupQuantizer's own sizes
        for batch, latent in zip(tiles, latents):
            out = shrunk.quantizer(latent)
            meter.add(batch, shrunk.decode_latents(out.quantized), out.indices, sizes_per_group)
        method = "base" if weighting is None else f"shrink ({weighting} k-means)"
        rows.append(meter.row(model=name, method=method, codebook_size=codebook_size, bits=None,
                              seconds=round(time.perf_counter() - started, 1)))
        print(rows[-1], file=sys.stderr)
    calibration_latents = continuous_latents(model, calibration)
    for bits in args.bits:
        started = time.perf_counter()
        ptq = GaussianPTQ.calibrate(calibration_latents, bits)
        meter = Meter(ptq.levels, len(ptq.mean))
        for batch, latent in zip(tiles, latents):
            indices = ptq.quantize(latent)
            meter.add(batch, model.decode_latents(ptq.dequantize(indices, model.dtype)), indices, ptq.levels)
        rows.append(meter.row(model=name, method="gaussian ptq (per-channel)", codebook_size=None, bits=bits,
                              seconds=round(time.perf_counter() - started, 1)))
        print(rows[-1], file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kodak", required=True, help="folder of the 24 Kodak images")
    parser.add_argument("--models", nargs="+", default=["simvq_tiny", "vqvae_tiny"])
    parser.add_argument("--calibration", default=str(CALIBRATION), help="images for code usage and PTQ statistics")
    parser.add_argument("--tile-stride", type=int, default=4, help="code every N-th 32 x 32 tile in both directions")
    parser.add_argument("--min-codebook", type=int, default=16, help="smallest shrunk codebook")
    parser.add_argument("--bits", type=int, nargs="+", default=list(range(1, 9)), help="PTQ bits per channel")
    parser.add_argument("--iters", type=int, default=20, help="k-means iterations")
    parser.add_argument("--weightings", nargs="+", choices=WEIGHTINGS, default=list(WEIGHTINGS), help="k-means weightings to compare")
    args = parser.parse_args()
    torch.manual_seed(0)
    tiles = kodak_tiles(Path(args.kodak), args.tile_stride)
    dataset = ImageFolder(args.calibration, size=TILE)
    calibration = torch.stack([dataset[i] for i in range(len(dataset))])
    rows = [row for name in args.models for row in benchmark(name, tiles, calibration, args)]
    result = {
        "device": f"{platform.machine()} CPU, {torch.get_num_threads()} thread(s) (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})",
        "date": str(datetime.date.today()),
        "command": " ".join(["python", *sys.argv]),
        "kodak_tiles": sum(t.shape[0] for t in tiles),
        "rows": rows,
    }
    atomic_write(RESULTS, lambda temporary: temporary.write_text(json.dumps(result, indent=2) + "\n"))
    print("| model | method | K | bits/channel | bpp | entropy-coded bpp | PSNR dB |\n|---|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['model']} | {row['method']} | {row['codebook_size'] or '-'} | {row['bits'] or '-'} | {row['bpp']:.4f} | "
              f"{row['entropy_bpp']:.4f} | {row['psnr']:.2f} |")


if __name__ == "__main__":
    main()
