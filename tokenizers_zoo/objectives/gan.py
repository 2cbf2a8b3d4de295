"""The adversarial objective: the model's losses plus a discriminator's judgement, for any modality."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..outputs import TokenizerOutput
from .adversarial import (
    ADVERSARIAL_LOSSES,
    LeCAM,
    adaptive_weight,
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from .base import Objective, ObjectiveOutput
from .discriminators import build_discriminator
from .registry import register_objective


@register_objective("gan")
class GANObjective(Objective):
    """Generator loss = the model's losses (+ the perceptual term) + ``disc_weight`` x adversarial (x the
    adaptive weight) + ``feature_matching_weight`` x feature matching; discriminator loss =
    ``disc_loss_weight`` x its adversarial loss + ``lecam_weight`` x LeCAM. Before ``disc_start`` the
    discriminator is neither trained nor consulted.

    Args:
        discriminator: a discriminator spec such as ``{"type": "patchgan", "n_layers": 3}``, or a module.
        disc_start: first step at which the discriminator trains and judges.
        disc_weight: weight of the generator's adversarial term.
        adaptive_weight: scale that term by taming's gradient-norm ratio at the decoder's last layer, taken
            between reconstruction + perceptual (taming's ``nll_loss``) and the adversarial term.
        adaptive_weight_max: clamp of that ratio.
        generator_loss / discriminator_loss: ``"hinge"``, ``"non_saturating"`` or ``"least_squares"``.
        disc_loss_weight: factor on the discriminator's adversarial loss.
        lecam_weight, lecam_decay: LeCAM regularisation of the discriminator (0 disables it).
        feature_matching_weight: L1 between the discriminator's features on real and generated signals.
        **options: those of :class:`Objective` (``perceptual``, ``perceptual_weight``).
    """

    def __init__(
        self,
        discriminator: dict | nn.Module,
        *,
        disc_start: int = 0,
        disc_weight: float = 1.0,
        adaptive_weight: bool = False,
        adaptive_weight_max: float = 1e4,
        generator_loss: str = "hinge",
        discriminator_loss: str = "hinge",
        disc_loss_weight: float = 1.0,
        lecam_weight: float = 0.0,
        lecam_decay: float = 0.999,
        feature_matching_weight: float = 0.0,
        **options,
    ):
        super().__init__(**options)
        for kind in (generator_loss, discriminator_loss):
            if kind not in ADVERSARIAL_LOSSES:
                raise ValueError(f"adversarial losses must be one of {ADVERSARIAL_LOSSES}, got {kind!r}")
        if disc_start < 0 or min(disc_weight, adaptive_weight_max, disc_loss_weight, lecam_weight, feature_matching_weight) < 0:
            raise ValueError("disc_start and every weight must be >= 0")
        self.discriminator = discriminator if isinstance(discriminator, nn.Module) else build_discriminator(discriminator)
        self.disc_start, self.disc_weight, self.disc_loss_weight = disc_start, disc_weight, disc_loss_weight
        self.use_adaptive_weight, self.adaptive_weight_max = adaptive_weight, adaptive_weight_max
        self.generator_kind, self.discriminator_kind = generator_loss, discriminator_loss
        self.feature_matching_weight, self.lecam_weight = feature_matching_weight, lecam_weight
        self.lecam = LeCAM(lecam_decay) if lecam_weight > 0 else None

    def discriminator_active(self, step: int) -> bool:
        return step >= self.disc_start

    def generator_loss(
        self, out: TokenizerOutput, x: torch.Tensor, *, step: int, last_layer: Callable[[], torch.Tensor]
    ) -> ObjectiveOutput:
        base = super().generator_loss(out, x, step=step, last_layer=last_layer)
        losses, logs = base.losses, base.logs
        if self.discriminator_active(step):
            fake = self.discriminator(out.reconstruction)
            adversarial = generator_adversarial_loss(self.generator_kind, fake.logits)
            weight = torch.tensor(self.disc_weight, device=adversarial.device)
            if self.use_adaptive_weight:
                nll = losses["reconstruction"] + losses.get("perceptual", 0.0)
                ratio = adaptive_weight(nll, adversarial, last_layer(), self.adaptive_weight_max)
                weight, logs["adaptive_weight"] = weight * ratio, ratio
            losses["adversarial"] = weight * adversarial
            if self.feature_matching_weight > 0:
                with torch.no_grad():
                    real = self.discriminator(x)
                losses["feature_matching"] = self.feature_matching_weight * feature_matching_loss(real.features, fake.features)
        return ObjectiveOutput(loss=sum(losses.values()), losses=losses, logs=logs)

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor, *, step: int, discriminator: nn.Module) -> ObjectiveOutput:
        real_logits, fake_logits = discriminator(real.detach()).logits, discriminator(fake.detach()).logits
        losses = {"discriminator": self.disc_loss_weight * discriminator_adversarial_loss(self.discriminator_kind, real_logits, fake_logits)}
        if self.lecam is not None:
            losses["lecam"] = self.lecam_weight * self.lecam(real_logits, fake_logits)
        logs = {
            "logits_real": torch.stack([r.detach().float().mean() for r in real_logits]).mean(),
            "logits_fake": torch.stack([f.detach().float().mean() for f in fake_logits]).mean(),
        }
        return ObjectiveOutput(loss=sum(losses.values()), losses=losses, logs=logs)
