"""Discriminators, registered by name, each returning logits and feature maps per sub-discriminator."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..outputs import ModelOutput
from ..plugins import Registry

DISCRIMINATORS: Registry[nn.Module] = Registry("discriminator")
register_discriminator = DISCRIMINATORS.register
build_discriminator = DISCRIMINATORS.build


@dataclass
class DiscriminatorOutput(ModelOutput):
    """``logits[i]``: the i-th sub-discriminator's logit map; ``features[i]``: its intermediate maps."""

    logits: list[torch.Tensor]
    features: list[list[torch.Tensor]]


@register_discriminator("patchgan")
class PatchGANDiscriminator(nn.Module):
    """pix2pix's PatchGAN as taming-transformers builds it (``NLayerDiscriminator``): 4x4 convs, stride 2
    for the first ``n_layers``, BatchNorm and LeakyReLU(0.2) between, one logit per overlapping patch.

    Layer indices in ``main`` follow the official module, so official discriminator weights load as they are.
    Weights start as taming's ``weights_init``: convs N(0, 0.02), norm scales N(1, 0.02), norm biases 0.
    """

    def __init__(self, in_channels: int = 3, channels: int = 64, n_layers: int = 3):
        super().__init__()
        if in_channels < 1 or channels < 1 or n_layers < 1:
            raise ValueError(f"in_channels, channels and n_layers must be positive, got {in_channels}, {channels}, {n_layers}")
        widths = [channels * min(2**n, 8) for n in range(n_layers + 1)]
        layers: list[nn.Module] = [nn.Conv2d(in_channels, channels, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        for n in range(1, n_layers + 1):
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(widths[n - 1], widths[n], 4, stride=stride, padding=1, bias=False),
                nn.BatchNorm2d(widths[n]),
                nn.LeakyReLU(0.2),
            ]
        layers.append(nn.Conv2d(widths[n_layers], 1, 4, stride=1, padding=1))
        self.main = nn.Sequential(*layers)
        self.apply(_taming_init)

    def forward(self, x: torch.Tensor) -> DiscriminatorOutput:
        features = []
        for layer in self.main:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                features.append(x)
        return DiscriminatorOutput(logits=[x], features=[features])


def _taming_init(module: nn.Module) -> None:
    if isinstance(module, nn.Conv2d):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
