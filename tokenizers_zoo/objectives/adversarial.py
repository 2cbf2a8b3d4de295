"""Adversarial terms shared by every GAN objective: G/D losses, LeCAM, feature matching, the adaptive weight.

Each loss takes lists of logit maps (one per sub-discriminator, as multi-period / multi-resolution
discriminators return) and sums the per-discriminator means. Conventions: hinge and non-saturating D
losses carry taming's factor 1/2; least squares follows LSGAN / vocos without it; ``clamped_hinge`` is
vocos's hinge (the generator's term clamped too, ``mean(relu(1 - fake))``, and no 1/2 on the D loss).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import distributed

ADVERSARIAL_LOSSES = ("hinge", "non_saturating", "least_squares", "clamped_hinge")


def generator_adversarial_loss(kind: str, fake: list[torch.Tensor]) -> torch.Tensor:
    """What the generator minimises given the discriminator's logits on its output."""
    if kind == "hinge":
        terms = [-f.mean() for f in fake]
    elif kind == "non_saturating":
        terms = [F.softplus(-f).mean() for f in fake]
    elif kind == "least_squares":
        terms = [(1 - f).square().mean() for f in fake]
    elif kind == "clamped_hinge":
        terms = [F.relu(1 - f).mean() for f in fake]
    else:
        raise ValueError(f"adversarial loss must be one of {ADVERSARIAL_LOSSES}, got {kind!r}")
    return sum(terms)


def discriminator_adversarial_loss(kind: str, real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """What the discriminator minimises given its logits on real signals and on reconstructions."""
    if kind == "hinge":
        terms = [0.5 * (F.relu(1 - r).mean() + F.relu(1 + f).mean()) for r, f in zip(real, fake)]
    elif kind == "non_saturating":
        terms = [0.5 * (F.softplus(-r).mean() + F.softplus(f).mean()) for r, f in zip(real, fake)]
    elif kind == "least_squares":
        terms = [(1 - r).square().mean() + f.square().mean() for r, f in zip(real, fake)]
    elif kind == "clamped_hinge":
        terms = [F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake)]
    else:
        raise ValueError(f"adversarial loss must be one of {ADVERSARIAL_LOSSES}, got {kind!r}")
    return sum(terms)


def feature_matching_loss(real: list[list[torch.Tensor]], fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Mean L1 distance between the discriminator's feature maps on real and generated signals, summed
    over layers and sub-discriminators (the real features are treated as constants)."""
    return sum(F.l1_loss(f, r.detach()) for real_maps, fake_maps in zip(real, fake) for r, f in zip(real_maps, fake_maps))


def adaptive_weight(reconstruction: torch.Tensor, adversarial: torch.Tensor, last_layer: torch.Tensor, maximum: float) -> torch.Tensor:
    """taming's balance: ``||grad reconstruction|| / (||grad adversarial|| + 1e-4)`` at ``last_layer``,
    clamped to ``[0, maximum]`` and detached, so neither term swamps the other at the decoder's output."""
    rec_grad, = torch.autograd.grad(reconstruction, last_layer, retain_graph=True)
    adv_grad, = torch.autograd.grad(adversarial, last_layer, retain_graph=True)
    return (rec_grad.norm() / (adv_grad.norm() + 1e-4)).clamp(0.0, maximum).detach()


class LeCAM(nn.Module):
    """LeCAM regularisation (Tseng et al., CVPR 2021): keeps the discriminator's logits on real and fake
    near the running means of the other side, ``mean(relu(real - ema_fake)^2) + mean(relu(ema_real - fake)^2)``.

    The running means (decay ``decay``, from 0) are buffers, updated before the term is computed; under DDP
    they average the batch means of every rank, so they stay identical everywhere.
    """

    def __init__(self, decay: float = 0.999):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"LeCAM decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.register_buffer("ema_real", torch.zeros(()))
        self.register_buffer("ema_fake", torch.zeros(()))

    def forward(self, real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            means = torch.stack([torch.stack([r.float().mean() for r in real]).mean(), torch.stack([f.float().mean() for f in fake]).mean()])
            if distributed.is_distributed():
                distributed.all_reduce_sum(means).div_(distributed.world_size())
            self.ema_real.lerp_(means[0], 1 - self.decay)
            self.ema_fake.lerp_(means[1], 1 - self.decay)
        return sum(F.relu(r - self.ema_fake).square().mean() + F.relu(self.ema_real - f).square().mean() for r, f in zip(real, fake))
