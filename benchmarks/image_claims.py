"""The SimVQ and VQGAN-LC papers' central claim at small scale: with a large codebook, plain VQ uses few of its
codes while SimVQ (frozen basis x learnt linear layer) and VQGAN-LC (frozen feature table x learnt projector)
keep using most of them.

    python benchmarks/image_claims.py --data ../shared/data/images/cifar10_test_subset --kodak ../shared/data/kodak

Every run: the same taming backbone (``vqvae_tiny``: f4, 8x8 tokens per 32 px image, code dim 8), the same
steps, optimizer, seed and data (the CIFAR-10 subset minus ``*/000?.jpg``, which is held out); only the
quantizer differs. Usage = fraction of the K codes used at least once; measured on the held-out CIFAR
images (6,400 tokens: at most 6,400 / K), on the training images, and on every 32 x 32 tile of the Kodak
images (another domain, 589,824 tokens). VQGAN-LC's table is k-means of 4 x 4 pooled patch features of the
training images; CLIP ViT-L/14 cannot be downloaded here, so two stand-ins: ``vqgan_lc`` uses a randomly
initialised small ViT (192-d), ``vqgan_lc_trained`` the encoder of the bundled ``vqvae_tiny`` (64-d latents,
trained on the same images). Rows go to ``benchmarks/results/image_claims.json``, replacing those of the same
quantizers, so runs of different quantizers can go in parallel.
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
from tokenizers_zoo.training import OptimizerConfig, TrainConfig, Trainer
from tokenizers_zoo.training.codebook import fill_table, patch_features
from tokenizers_zoo.quantizers import kmeans

RESULTS = Path(__file__).parent / "results" / "image_claims.json"
QUANTIZERS = {
    "vq": lambda k, table_dim: {"type": "vq", "codebook_size": k},
    "simvq": lambda k, table_dim: {"type": "projected", "codebook_size": k},
    "vqgan_lc": lambda k, table_dim: {"type": "lc", "codebook_size": k, "table_dim": table_dim},
    "vqgan_lc_trained": lambda k, table_dim: {"type": "lc", "codebook_size": k, "table_dim": table_dim},
}


def random_vit_features(images: torch.Tensor) -> torch.Tensor:
    """4 x 4 pooled tokens of a randomly initialised small ViT over 32 px images (4 px patches), seeded: ``[M, 192]``."""
    import timm

    torch.manual_seed(0)
    encoder = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=4, num_classes=0).eval()
    return patch_features(images, encoder, pool=2)  # an 8 x 8 grid pooled to 4 x 4, as the paper's 16 per image


@torch.no_grad()
def vqvae_tiny_features(images: torch.Tensor) -> torch.Tensor:
    """4 x 4 pooled latents of the bundled ``vqvae_tiny`` encoder (8 x 8 x 64 per 32 px image): ``[M, 64]``."""
    encoder = tokenizers_zoo.from_pretrained("vqvae_tiny").encoder
    grids = torch.cat([torch.nn.functional.avg_pool2d(encoder(batch), 2) for batch in images.split(256)])
    return grids.flatten(2).transpose(1, 2).reshape(-1, grids.shape[1])


FEATURES = {"vqgan_lc": random_vit_features, "vqgan_lc_trained": vqvae_tiny_features}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the CIFAR-10 subset (class folders)")
    parser.add_argument("--kodak", help="folder of Kodak images (held-out usage and PSNR on 32 px tiles)")
    parser.add_argument("--quantizers", nargs="+", default=list(QUANTIZERS), choices=list(QUANTIZERS))
    parser.add_argument("--codebook-size", type=int, default=16384)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--output", default="runs/image_claims")
    args = parser.parse_args()

    training, train_images, test_images = cifar_split(Path(args.data))
    tiles = kodak_tiles(Path(args.kodak)) if args.kodak else None

    command = " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])
    for kind in args.quantizers:
        table = None
        if kind in FEATURES:
            table = kmeans(FEATURES[kind](train_images), args.codebook_size, iters=10, generator=torch.Generator().manual_seed(0))
        torch.manual_seed(0)
        spec = QUANTIZERS[kind](args.codebook_size, None if table is None else table.shape[1])
        model = tokenizers_zoo.create_model("vqvae_tiny", embed_dim=8, quantizer=spec)
        if table is not None:
            fill_table(model, table)
        config = TrainConfig(
            steps=args.steps, batch_size=args.batch_size, log_every=max(1, args.steps // 10), warmup_steps=100,
            schedule="cosine", optimizer=OptimizerConfig(lr=1e-3, betas=(0.9, 0.99)), seed=0,
        )
        started = time.perf_counter()
        Trainer(model, ImageFolder(training, size=32, hflip=True), config, Path(args.output) / kind).fit()
        minutes = (time.perf_counter() - started) / 60
        model.eval()
        row = {"model": kind, "quantizer": spec["type"], "codebook_size": args.codebook_size, "steps": args.steps,
               "batch_size": args.batch_size, "train_minutes": round(minutes, 1), "command": command}
        held = measure(model, test_images)
        row.update(usage_heldout=round(held["usage"], 4), psnr_db=round(held["psnr_db"], 3))
        row["usage_train"] = round(measure(model, train_images)["usage"], 4)
        if tiles is not None:
            kodak = measure(model, tiles)
            row.update(usage=round(kodak["usage"], 4), perplexity_kodak=round(kodak["perplexity"], 1), psnr_db_kodak=round(kodak["psnr_db"], 3))
        else:
            row["usage"] = row["usage_heldout"]
        print(json.dumps(row), flush=True)
        rows = merge_rows(RESULTS, [row], list(QUANTIZERS))  # each row is kept as soon as it is measured
    print("| quantizer | K | steps | usage Kodak tiles | usage held-out CIFAR | usage train | PSNR held-out (dB) | PSNR Kodak (dB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['codebook_size']} | {r['steps']} | {r['usage']} | {r['usage_heldout']} | {r['usage_train']} | {r['psnr_db']} | {r.get('psnr_db_kodak', '-')} |")


if __name__ == "__main__":
    main()
