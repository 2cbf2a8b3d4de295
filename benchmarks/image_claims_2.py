"""FQGAN's and WeTok's claims at small scale, each against its control at the same budget.

    python benchmarks/image_claims_2.py --data ../shared/data/images/cifar10_test_subset --kodak ../shared/data/kodak

- ``fqgan_dual`` vs ``fqgan_one_codebook``: ``fqgan_tiny`` (two factors, a cosine codebook of K codes each) against
  the same model whose two factors share one codebook of 2K codes (the same total size): usage per sub-codebook, PSNR.
- ``wetok_grouped`` vs ``lfq_plain``: ``wetok_tiny`` (16 bits per token as 2 groups of 8) against one lookup-free
  group of 16 bits (entropy over 65,536 codes instead of 2 x 256): PSNR at the same bits per pixel.
- ``wetok_f8_gd`` vs ``wetok_f8_plain``: at the highest compression (f8 on 32 px images: 4 x 4 tokens of 8 bits,
  0.125 bits per pixel), a deterministic model trained first, then a second stage of the same length against a
  PatchGAN with encoder and quantizer frozen, once with the generative decoder (conv_in zero-extended to a noise
  input) and once with the plain decoder. PSNR, and for the generative decoder the spread of its images over noise.

Every model: the same steps, batch, optimizer (AdamW 1e-3, betas 0.9/0.99, warm-up 100, cosine), seed and data (the
CIFAR-10 subset minus ``*/000?.jpg``, held out). Kodak: every 32 x 32 tile. Rows go to
``benchmarks/results/image_claims_2.json``, replacing those of the same models.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from claims_common import cifar_split, kodak_tiles, measure, merge_rows

import tokenizers_zoo
from tokenizers_zoo.data import ImageFolder
from tokenizers_zoo.metrics import bits_per_pixel
from tokenizers_zoo.objectives import build_objective
from tokenizers_zoo.registry import model_config
from tokenizers_zoo.training import OptimizerConfig, TrainConfig, Trainer
from tokenizers_zoo.training.generative_decoder import extend_decoder

RESULTS = Path(__file__).parent / "results" / "image_claims_2.json"
F8 = {"ch_mult": (1, 2, 2, 2), "z_channels": 8, "quantizer": {"type": "lfq", "codebook_size": 256, "groups": 1}}
STAGE_2_GAN = {
    "type": "gan", "discriminator": {"type": "patchgan", "channels": 32, "n_layers": 2}, "disc_start": 0, "disc_weight": 0.1,
    "adaptive_weight": False, "generator_loss": "non_saturating", "discriminator_loss": "hinge", "lecam_weight": 0.05,
}
MODELS = {  # name -> (registered model, overrides)
    "fqgan_dual": ("fqgan_tiny", {}),
    "fqgan_one_codebook": ("fqgan_tiny", {"shared_codebook": True}),
    "wetok_grouped": ("wetok_tiny", {}),
    "lfq_plain": ("wetok_tiny", {"quantizer": {"type": "lfq", "codebook_size": 65_536, "groups": 1}}),
    "wetok_f8_plain": ("wetok_tiny", F8),
    "wetok_f8_gd": ("wetok_tiny", F8),
}
STAGE_2 = {"wetok_f8_plain", "wetok_f8_gd"}


def build(name: str):
    """The untrained model of a row: the registered config with the row's overrides."""
    registered, overrides = MODELS[name]
    if overrides.get("shared_codebook"):
        quantizer = model_config(registered).quantizer
        overrides = {"quantizer": {**quantizer, "shared_codebook": True, "codebook_size": 2 * quantizer["codebook_size"]}}
    return tokenizers_zoo.create_model(registered, **overrides)


def train(model, dataset, args, output: Path, objective=None, freeze=()):
    config = TrainConfig(
        steps=args.steps, batch_size=args.batch_size, log_every=max(1, args.steps // 10), warmup_steps=100,
        schedule="cosine", optimizer=OptimizerConfig(name="adamw", lr=1e-3, betas=(0.9, 0.99)), seed=0, freeze=tuple(freeze),
    )
    trainer = Trainer(model, dataset, config, output, objective=objective)
    trainer.fit()
    return model.eval()


@torch.no_grad()
def noise_spread(model, images: torch.Tensor, draws: int = 4) -> float:
    """Mean over pixels of the standard deviation of the decoded images over ``draws`` noise draws."""
    indices = model.encode(images).indices
    decoded = torch.stack([model.decode(indices, generator=torch.Generator().manual_seed(seed)) for seed in range(draws)])
    return float(decoded.std(0).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the CIFAR-10 subset (class folders)")
    parser.add_argument("--kodak", help="folder of Kodak images (PSNR and usage on 32 px tiles)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--output", default="runs/image_claims_2")
    args = parser.parse_args()

    training, train_images, test_images = cifar_split(Path(args.data))
    tiles = kodak_tiles(Path(args.kodak)) if args.kodak else None
    dataset = ImageFolder(training, size=32, hflip=True)
    command = " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    for name in args.models:
        torch.manual_seed(0)
        started = time.perf_counter()
        model = train(build(name), dataset, args, Path(args.output) / name)
        if name in STAGE_2:  # both second stages start from the same deterministic model (the same seed and data)
            model = extend_decoder(model) if name.endswith("_gd") else model
            model = train(model.train(), dataset, args, Path(args.output) / f"{name}_stage2", build_objective(STAGE_2_GAN), ("encoder", "quantizer"))
        row = {"model": name, "steps": args.steps * (2 if name in STAGE_2 else 1), "batch_size": args.batch_size,
               "train_minutes": round((time.perf_counter() - started) / 60, 1), "command": command,
               "bpp": bits_per_pixel(model.encode(test_images[:1]).indices, (32, 32), model.quantizer.codebook_size)}
        decode_options = {"generator": torch.Generator().manual_seed(0)} if name.endswith("_gd") else {}
        held = measure(model, test_images, **decode_options)
        row.update(usage_heldout=round(held["usage"], 4), usage_heldout_per_group=held["usage_per_group"], psnr_db=round(held["psnr_db"], 3))
        if tiles is not None:
            kodak = measure(model, tiles, **decode_options)
            row.update(usage_kodak=round(kodak["usage"], 4), usage_kodak_per_group=kodak["usage_per_group"], psnr_db_kodak=round(kodak["psnr_db"], 3))
        if name.endswith("_gd"):
            row["noise_spread"] = round(noise_spread(model, test_images), 4)
        print(json.dumps(row), flush=True)
        rows = merge_rows(RESULTS, [row], list(MODELS))
    print("| model | steps | bpp | usage per group (held-out) | PSNR held-out (dB) | PSNR Kodak (dB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['steps']} | {r['bpp']} | {r['usage_heldout_per_group']} | {r['psnr_db']} | {r.get('psnr_db_kodak', '-')} |")


if __name__ == "__main__":
    main()
