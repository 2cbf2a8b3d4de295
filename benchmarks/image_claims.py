"""The SimVQ and VQGAN-LC papers' central claim at small scale: with a large codebook, plain VQ uses few of its
codes while SimVQ (frozen basis x learnt linear layer) and VQGAN-LC (frozen feature table x learnt projector)
keep using most of them.

    python benchmarks/image_claims.py --data ../shared/data/images/cifar10_test_subset --kodak ../shared/data/kodak

Every run: the same taming backbone (``vqvae_tiny``: f4, 8x8 tokens per 32 px image, code dim 8), the same
steps, optimizer, seed and data (the CIFAR-10 subset minus ``*/000?.jpg``, which is held out); only the
quantizer differs. Usage = fraction of the K codes used at least once; measured on the held-out CIFAR
images (6,400 tokens: at most 6,400 / K), on the training images, and on every 32 x 32 tile of the Kodak
images (another domain, 589,824 tokens). VQGAN-LC's table is k-means of pooled patch features of the training
images from a randomly initialised small ViT (CLIP ViT-L/14 cannot be downloaded here): a stand-in for
the paper's CLIP features, stated as such. Rows go to ``benchmarks/results/image_claims.json``.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import platform
import sys
import time
from pathlib import Path

import torch

import tokenizers_zoo
from tokenizers_zoo.data import ImageFolder, list_images, load_image
from tokenizers_zoo.metrics import CodebookUsage, psnr
from tokenizers_zoo.training import OptimizerConfig, TrainConfig, Trainer
from tokenizers_zoo.training.codebook import fill_table, patch_features
from tokenizers_zoo.quantizers import kmeans

RESULTS = Path(__file__).parent / "results" / "image_claims.json"
HELD_OUT = "*/000?.jpg"
QUANTIZERS = {
    "vq": lambda k, table_dim: {"type": "vq", "codebook_size": k},
    "simvq": lambda k, table_dim: {"type": "projected", "codebook_size": k},
    "vqgan_lc": lambda k, table_dim: {"type": "lc", "codebook_size": k, "table_dim": table_dim},
}


def feature_encoder() -> torch.nn.Module:
    """A small randomly initialised ViT over 32 px images (4 px patches: an 8 x 8 token grid), seeded."""
    import timm

    torch.manual_seed(0)
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=4, num_classes=0).eval()


def kodak_tiles(folder: Path, side: int = 32) -> torch.Tensor:
    """Every non-overlapping ``side`` x ``side`` tile of every image under ``folder``: ``[M, 3, side, side]``."""
    tiles = []
    for path in list_images(folder):
        image = load_image(path)
        grid = image.unfold(1, side, side).unfold(2, side, side)  # [3, H/side, W/side, side, side]
        tiles.append(grid.permute(1, 2, 0, 3, 4).reshape(-1, 3, side, side))
    return torch.cat(tiles)


@torch.no_grad()
def measure(model, images: torch.Tensor, batch_size: int = 256) -> dict[str, float]:
    usage = CodebookUsage(model.quantizer.codebook_size)
    scores = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size]
        out = model.encode(batch)
        usage.update(out.indices)
        scores.append(psnr(model.decode(out.indices).clamp(-1, 1), batch))
    return {"usage": usage.usage, "perplexity": usage.perplexity, "psnr_db": float(torch.cat(scores).mean())}


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

    root = Path(args.data)
    files = list_images(root)
    held_out = [f for f in files if fnmatch.fnmatch(f.relative_to(root).as_posix(), HELD_OUT)]
    training = [f for f in files if f not in set(held_out)]
    train_images = torch.stack([ImageFolder(training, size=32)[i] for i in range(len(training))])
    test_images = torch.stack([ImageFolder(held_out, size=32)[i] for i in range(len(held_out))])
    tiles = kodak_tiles(Path(args.kodak)) if args.kodak else None

    rows = []
    for kind in args.quantizers:
        encoder = feature_encoder()
        table = None
        if kind == "vqgan_lc":
            features = patch_features(train_images, encoder, pool=2)  # 4 x 4 pooled vectors per image, as the paper's 16
            table = kmeans(features, args.codebook_size, iters=10, generator=torch.Generator().manual_seed(0))
        torch.manual_seed(0)
        spec = QUANTIZERS[kind](args.codebook_size, encoder.num_features)
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
               "batch_size": args.batch_size, "train_minutes": round(minutes, 1)}
        held = measure(model, test_images)
        row.update(usage_heldout=round(held["usage"], 4), psnr_db=round(held["psnr_db"], 3))
        row["usage_train"] = round(measure(model, train_images)["usage"], 4)
        if tiles is not None:
            kodak = measure(model, tiles)
            row.update(usage=round(kodak["usage"], 4), perplexity_kodak=round(kodak["perplexity"], 1), psnr_db_kodak=round(kodak["psnr_db"], 3))
        else:
            row["usage"] = row["usage_heldout"]
        rows.append(row)
        print(json.dumps(row), flush=True)

    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({
        "device": f"{platform.machine()} CPU, {torch.get_num_threads()} threads",
        "date": str(datetime.date.today()),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "rows": rows,
    }, indent=2) + "\n")
    print("| quantizer | K | steps | usage Kodak tiles | usage held-out CIFAR | usage train | PSNR held-out (dB) | PSNR Kodak (dB) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['codebook_size']} | {r['steps']} | {r['usage']} | {r['usage_heldout']} | {r['usage_train']} | {r['psnr_db']} | {r.get('psnr_db_kodak', '-')} |")


if __name__ == "__main__":
    main()
