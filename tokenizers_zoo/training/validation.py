"""Evaluating a model on a validation split: mean losses, reconstruction metrics and codebook use."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import torch

from ..metrics import CodebookUsage
from .batches import split_batch

DIRECTIONS = {
    "loss": "min", "reconstruction": "min", "psnr": "max", "ssim": "max", "lpips": "min", "codebook_usage": "max",
    "codebook_perplexity": "max",
}
"""Whether a larger value of a known metric is better; other names need ``val_mode``."""


@torch.no_grad()
def evaluate(model: Any, loader: torch.utils.data.DataLoader, device: torch.device) -> dict[str, float]:
    """Every loss term, ``loss``, the model's per-item reconstruction metrics (e.g. ``psnr``) averaged over
    the split, and the split's codebook usage and perplexity. The model runs as it is (call ``eval()`` first)."""
    sums: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    usage = CodebookUsage(model.quantizer.codebook_size, model.quantizer.num_groups)
    for batch in loader:
        x, context = split_batch(batch, device)
        out = model(x, **context)
        items = x.shape[0] if model.latent_ndim > 2 else 1  # a graph is one item
        for name, value in (("loss", out.loss), *out.losses.items()):
            sums[name] += float(value) * items
            counts[name] += items
        for name, values in model.reconstruction_metrics(x, out.reconstruction, **context).items():
            sums[name] += float(values.sum())
            counts[name] += values.numel()
        usage.update(out.indices)
    metrics = {name: sums[name] / counts[name] for name in sums}
    metrics.update(codebook_usage=usage.usage, codebook_perplexity=usage.perplexity)
    return metrics


def is_better(value: float, best: float | None, mode: str) -> bool:
    return best is None or (value < best if mode == "min" else value > best)
