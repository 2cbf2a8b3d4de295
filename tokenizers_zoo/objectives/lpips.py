"""LPIPS-VGG (Zhang et al., CVPR 2018) as taming-transformers builds it, loaded only from local files.

Module names follow taming's ``LPIPS`` (``scaling_layer``, ``net.slice1..5``, ``lin0..4.model.1``), so an
official ``perceptual_loss.*`` sub-state loads as it is. The backbone is torchvision's VGG16 feature stack
(``features.N`` in its state dict; the classifier is never built), the linear heads are the
``richzhang/PerceptualSimilarity`` v0.1 ``vgg.pth`` layout (``lin0.model.1.weight`` ... ``[1, C, 1, 1]``).
Nothing is ever downloaded: give both files.
"""

from __future__ import annotations

import importlib
import os

import torch
from torch import nn

from ..hub import load_state_dict_checked, read_weights

CHANNELS = (64, 128, 256, 512, 512)
"""Widths of the five VGG16 taps relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""
SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))
"""``features`` layers per tap (taming's ``vgg16.slice1..5``); layer indices are kept as module names."""


class ScalingLayer(nn.Module):
    """Maps [-1, 1] inputs to the statistics the VGG expects (LPIPS v0.1 constants, buffers as in taming)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class VGGSlices(nn.Module):
    """VGG16's convolutional stack cut after each tap; returns the five feature maps."""

    def __init__(self, features: nn.Sequential):
        super().__init__()
        for number, (start, stop) in enumerate(SLICES, start=1):
            self.add_module(f"slice{number}", nn.Sequential())
            for index in range(start, stop):
                getattr(self, f"slice{number}").add_module(str(index), features[index])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for number in range(1, len(SLICES) + 1):
            x = getattr(self, f"slice{number}")(x)
            taps.append(x)
        return taps


class NetLinLayer(nn.Module):
    """One learned weight per channel: dropout, then a bias-free 1x1 convolution to one channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class LPIPS(nn.Module):
    """Learned perceptual distance: per tap, unit-normalise the channels, square the difference, weight the
    channels (``linK``), average over space; sum the five taps. ``forward(a, b)`` gives ``[B]`` for
    images ``[B, 3, H, W]`` in [-1, 1].

    ``LPIPS()`` has random weights; :meth:`from_files` loads real ones and freezes the network. The module
    never leaves eval mode (taming's copy trains with its dropout on; here it is always off).
    """

    def __init__(self):
        super().__init__()
        vgg = _require_torchvision()
        self.scaling_layer = ScalingLayer()
        self.net = VGGSlices(vgg.make_layers(vgg.cfgs["D"]))  # exactly vgg16(weights=None).features
        for number, channels in enumerate(CHANNELS):
            self.add_module(f"lin{number}", NetLinLayer(channels))
        self.eval()

    @classmethod
    def from_files(cls, backbone: str | os.PathLike, linear: str | os.PathLike) -> LPIPS:
        """Frozen LPIPS from a torchvision ``vgg16`` state dict (``classifier.*`` keys are ignored) and the
        official linear weights; both load strictly (``.pth`` read with ``weights_only``, or ``.safetensors``)."""
        lpips = cls()
        features = {k: v for k, v in read_weights(backbone, "LPIPS backbone weights").items() if not k.startswith("classifier.")}
        load_state_dict_checked(_View(features=nn.Sequential(*_features(lpips.net))), features, str(backbone))
        lins = _View(**{f"lin{number}": getattr(lpips, f"lin{number}") for number in range(len(CHANNELS))})
        load_state_dict_checked(lins, read_weights(linear, "LPIPS linear weights"), str(linear))
        return lpips.requires_grad_(False)

    def train(self, mode: bool = True) -> LPIPS:
        return super().train(False)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        if a.shape != b.shape or a.ndim != 4 or a.shape[1] != 3:
            raise ValueError(f"LPIPS compares two RGB image batches [B, 3, H, W] of one shape, got {list(a.shape)} and {list(b.shape)}")
        taps = self.net(self.scaling_layer(torch.cat([a, b])))
        distance = 0
        for number, tap in enumerate(taps):
            left, right = _unit_channels(tap).chunk(2)
            distance = distance + getattr(self, f"lin{number}").model((left - right).square()).mean((2, 3))
        return distance.flatten()


class _View(nn.Module):
    """Shares some of LPIPS's layers under the names a file uses, so the file loads strictly into them."""

    def __init__(self, **modules: nn.Module):
        super().__init__()
        for name, module in modules.items():
            self.add_module(name, module)


def _features(net: VGGSlices) -> list[nn.Module]:
    """``vgg16().features`` layers 0-29 back in order (the last max-pool, 30, holds nothing)."""
    return [layer for number in range(1, len(SLICES) + 1) for layer in getattr(net, f"slice{number}")]


def _unit_channels(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """taming's ``normalize_tensor``; ``vector_norm`` gives the same value, and a finite gradient (taming's
    ``sqrt(sum(x**2))`` gives NaN) where every channel is zero."""
    return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + eps)


def _require_torchvision():
    try:
        return importlib.import_module("torchvision.models.vgg")
    except ImportError as error:
        raise ImportError("LPIPS needs torchvision: pip install 'tokenizers-zoo[vision]'") from error
