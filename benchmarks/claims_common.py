"""What the small-scale claims scripts share: the CIFAR split, Kodak tiles, the measurement, and the results file."""

from __future__ import annotations

import datetime
import fcntl
import fnmatch
import json
import os
import platform
from pathlib import Path

import torch

from tokenizers_zoo.atomic import atomic_write
from tokenizers_zoo.data import ImageFolder, list_images, load_image
from tokenizers_zoo.metrics import CodebookUsage, psnr

HELD_OUT = "*/000?.jpg"
"""The first 10 images of each CIFAR-10 class: never trained on."""


def cifar_split(root: Path) -> tuple[list[Path], torch.Tensor, torch.Tensor]:
    """The training files, and the training and held-out images as ``[N, 3, 32, 32]`` tensors in [-1, 1]."""
    files = list_images(root)
    held_out = [f for f in files if fnmatch.fnmatch(f.relative_to(root).as_posix(), HELD_OUT)]
    training = [f for f in files if f not in set(held_out)]
    stack = lambda paths: torch.stack([ImageFolder(paths, size=32)[i] for i in range(len(paths))])  # noqa: E731
    return training, stack(training), stack(held_out)


def kodak_tiles(folder: Path, side: int = 32) -> torch.Tensor:
    """Every non-overlapping ``side`` x ``side`` tile of every image under ``folder``: ``[M, 3, side, side]``."""
    tiles = []
    for path in list_images(folder):
        grid = load_image(path).unfold(1, side, side).unfold(2, side, side)  # [3, H/side, W/side, side, side]
        tiles.append(grid.permute(1, 2, 0, 3, 4).reshape(-1, 3, side, side))
    return torch.cat(tiles)


@torch.no_grad()
def measure(model, images: torch.Tensor, batch_size: int = 256, **decode_options) -> dict:
    """Codebook usage and perplexity (means over groups, and per group) and mean PSNR of the decoded images."""
    usage = CodebookUsage(model.quantizer.codebook_size, model.quantizer.num_groups)
    scores = []
    for batch in images.split(batch_size):
        indices = model.encode(batch).indices
        usage.update(indices)
        scores.append(psnr(model.decode(indices, **decode_options).clamp(-1, 1), batch))
    return {
        "usage": usage.usage,
        "perplexity": usage.perplexity,
        "usage_per_group": [round(float(u), 4) for u in usage.group_usage()],
        "psnr_db": float(torch.cat(scores).mean()),
    }


def merge_rows(results: Path, rows: list[dict], order: list[str]) -> list[dict]:
    """Write ``rows`` into ``results`` in place of earlier rows of the same models (sorted by ``order``); returns
    all rows. The results folder is locked meanwhile, so runs of different models can go in parallel."""
    results.parent.mkdir(exist_ok=True)
    folder = os.open(results.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        earlier = json.loads(results.read_text())["rows"] if results.is_file() else []
        mine = {row["model"] for row in rows}
        merged = sorted([row for row in earlier if row["model"] not in mine] + rows, key=lambda row: order.index(row["model"]))
        text = json.dumps({
            "device": f"{platform.machine()} CPU, {torch.get_num_threads()} threads per run",
            "date": str(datetime.date.today()),
            "command": " ; ".join(dict.fromkeys(row["command"] for row in merged)),
            "rows": merged,
        }, indent=2) + "\n"
        atomic_write(results, lambda path: path.write_text(text))
    finally:
        os.close(folder)
    return merged
