"""Reconstruction and codebook metrics used by ``tokenizers-zoo eval``, validation and the benchmarks.

SSIM and rFID come from torchmetrics (rFID also needs torch-fidelity): the ``vision`` extra, imported on
first use. LPIPS is :class:`tokenizers_zoo.objectives.LPIPS`.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .hub import read_weights

if TYPE_CHECKING:
    from torchmetrics.image.fid import FrechetInceptionDistance

SSIM_WINDOW = 11
"""Side of SSIM's Gaussian window (sigma 1.5, torchmetrics' default): smaller images have no SSIM."""


def psnr(reconstruction: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per item (``data_range`` 2 for signals in [-1, 1])."""
    error = (reconstruction.float() - target.float()).square().flatten(1).mean(1)
    return 10 * torch.log10(data_range**2 / error.clamp_min(1e-12))


def has_ssim() -> bool:
    """Whether torchmetrics, which computes SSIM, is installed (it is not a core dependency)."""
    return importlib.util.find_spec("torchmetrics") is not None


def ssim(reconstruction: torch.Tensor, target: torch.Tensor, data_range: float = 2.0) -> torch.Tensor:
    """Structural similarity per item of images ``[B, C, H, W]`` (torchmetrics, 11x11 Gaussian window)."""
    if min(target.shape[-2:]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {list(target.shape[-2:])}")
    try:
        from torchmetrics.functional.image import structural_similarity_index_measure
    except ImportError as error:
        raise ImportError("SSIM needs torchmetrics: pip install 'tokenizers-zoo[vision]'") from error
    return structural_similarity_index_measure(reconstruction.float(), target.float(), data_range=data_range, reduction="none")


def bits_per_pixel(indices: torch.Tensor, image_size: tuple[int, int], codebook_size: int) -> float:
    """Bits one image's tokens take: tokens per image (all groups) x log2(codebook size) / pixels.
    ``indices`` is a batch ``[B, h, w]`` or ``[B, G, h, w]``; ``image_size`` is (H, W)."""
    return indices[0].numel() * math.log2(codebook_size) / (image_size[0] * image_size[1])


def frechet_inception_distance(weights: str | os.PathLike, features: int = 2048) -> FrechetInceptionDistance:
    """torchmetrics' FID with InceptionV3 read from a local file, never downloaded; update it with uint8
    images ``[B, 3, H, W]``. ``features``: the pooled layer compared (2048, the standard; or 64, 192, 768).

    ``weights`` is torch-fidelity's FID Inception state dict (``weights-inception-2015-12-05-6726825d.pth``).
    torch-fidelity reads it with full unpickling, so it is first read with ``weights_only=True``: only a file
    of plain tensors gets that far.
    """
    path = Path(weights)
    read_weights(path, "InceptionV3 weights")  # tensors only, before torch-fidelity unpickles the file
    if importlib.util.find_spec("torch_fidelity") is None or importlib.util.find_spec("torchmetrics") is None:
        raise ImportError("rFID needs torchmetrics and torch-fidelity: pip install 'tokenizers-zoo[vision]'")
    from torchmetrics.image.fid import FrechetInceptionDistance

    try:
        return FrechetInceptionDistance(feature=features, feature_extractor_weights_path=str(path))
    except RuntimeError as error:
        raise ValueError(f"{path} is not torch-fidelity's InceptionV3 for FID: {error}") from error


class CodebookUsage:
    """Histogram of codes over a whole dataset: usage (fraction of codes ever used) and perplexity.

    With ``num_groups > 1`` the indices carry the group axis at dim 1 and each group has its own
    histogram; usage and perplexity are then the means over groups.
    """

    def __init__(self, codebook_size: int, num_groups: int = 1):
        self.codebook_size, self.num_groups = codebook_size, num_groups
        self.counts = torch.zeros(num_groups, codebook_size, dtype=torch.float64)

    def update(self, indices: torch.Tensor) -> None:
        per_group = indices.movedim(1, -1) if self.num_groups > 1 else indices[..., None]
        per_group = per_group.reshape(-1, self.num_groups).cpu()
        offsets = torch.arange(self.num_groups) * self.codebook_size
        flat = torch.bincount((per_group + offsets).reshape(-1), minlength=self.counts.numel())
        self.counts += flat.double().view_as(self.counts)

    @property
    def usage(self) -> float:
        return float(self.group_usage().mean())

    @property
    def perplexity(self) -> float:
        return float(self.group_perplexity().mean())

    def group_usage(self) -> torch.Tensor:
        """Fraction of each group's codes ever used, ``[num_groups]``."""
        return (self.counts > 0).double().mean(1)

    def group_perplexity(self) -> torch.Tensor:
        """exp(entropy) of each group's code histogram, ``[num_groups]``."""
        probs = self.counts / self.counts.sum(1, keepdim=True).clamp_min(1)
        return torch.exp(-(probs * probs.clamp_min(1e-300).log()).sum(1))
