"""The training objective: what only training needs, kept beside the model and never saved with it.

An objective turns the model's training output into the generator loss and, when it owns a
discriminator, gives the discriminator's loss too. Perceptual networks, discriminators, frozen teachers
and loss weights live here, so ``save_pretrained``, the weight EMA and strict loading never see them.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..config import ConfigError
from ..outputs import ModelOutput, TokenizerOutput
from .lpips import LPIPS

log = logging.getLogger(__name__)


@dataclass
class ObjectiveOutput(ModelOutput):
    """A loss, the named weighted terms that sum to it, and scalars worth logging that are not loss terms."""

    loss: torch.Tensor
    losses: dict[str, torch.Tensor]
    logs: dict[str, torch.Tensor] = field(default_factory=dict)


class Objective(nn.Module):
    """The plain objective: the model's own losses (reconstruction, quantizer, the family's), plus
    ``perceptual_weight`` x mean LPIPS(reconstruction, x) as the term ``"perceptual"`` when ``perceptual``
    names local LPIPS files (``{"backbone": vgg16 state dict, "linear": LPIPS lin weights}``, see
    :meth:`LPIPS.from_files`; images in [-1, 1]). No discriminator.

    The frozen LPIPS network is a plain attribute, not a submodule: it is in neither ``state_dict()`` nor
    the trainer's checkpoint (14.7 M constant parameters), is rebuilt from its files, and follows the
    inputs' device when used. Subclasses add terms in :meth:`generator_loss` and, with a ``discriminator``,
    define :meth:`discriminator_loss`; the trainer runs the discriminator step when :meth:`discriminator_active`.
    """

    def __init__(self, *, perceptual: dict[str, str] | None = None, perceptual_weight: float = 1.0):
        super().__init__()
        if not (math.isfinite(perceptual_weight) and perceptual_weight >= 0):
            raise ValueError(f"perceptual_weight must be a finite number >= 0, got {perceptual_weight}")
        if perceptual is not None and set(perceptual) != {"backbone", "linear"}:
            raise ConfigError(f"perceptual must name the local LPIPS files 'backbone' and 'linear', got keys {sorted(perceptual)}")
        if perceptual is None:
            log.info("perceptual loss is off: no local LPIPS weights were given (perceptual={'backbone': ..., 'linear': ...})")
        self.discriminator: nn.Module | None = None
        self.perceptual_weight = perceptual_weight
        # Bypasses nn.Module.__setattr__, so the network is not registered: no state_dict keys, no parameters().
        self.__dict__["perceptual_loss"] = LPIPS.from_files(**perceptual) if perceptual is not None else None

    def generator_loss(
        self, out: TokenizerOutput, x: torch.Tensor, *, step: int, last_layer: Callable[[], torch.Tensor]
    ) -> ObjectiveOutput:
        """The loss the model's optimizer minimises at ``step``. ``last_layer()`` gives the decoder's last weight."""
        if self.perceptual_loss is None:
            return ObjectiveOutput(loss=out.loss, losses=dict(out.losses))
        distance = self.perceptual_loss.to(x.device)(out.reconstruction, x)
        perceptual = self.perceptual_weight * distance.mean()
        return ObjectiveOutput(loss=out.loss + perceptual, losses={**out.losses, "perceptual": perceptual})

    def prepare(self, model: nn.Module) -> None:
        """Build what depends on the model (e.g. heads sized by its latents); the trainer calls it before it
        makes the optimizers. Nothing by default."""

    def generator_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """The objective's trainable parameters that the generator's optimizer trains with the model (e.g.
        feature-prediction heads): all but the discriminator's, so none for the reconstruction and GAN objectives."""
        discriminator = {id(p) for p in self.discriminator.parameters()} if self.discriminator is not None else set()
        return [(name, p) for name, p in self.named_parameters() if p.requires_grad and id(p) not in discriminator]

    def discriminator_active(self, step: int) -> bool:
        """Whether the discriminator trains (and judges the generator) at ``step``."""
        return False

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor, *, step: int, discriminator: nn.Module) -> ObjectiveOutput:
        """The discriminator's loss on real signals and detached reconstructions; ``discriminator`` is this
        objective's discriminator, possibly wrapped for DDP by the trainer."""
        raise NotImplementedError(f"{type(self).__name__} has no discriminator")
