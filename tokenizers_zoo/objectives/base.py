"""The training objective: what only training needs, kept beside the model and never saved with it.

An objective turns the model's training output into the generator loss and, when it owns a
discriminator, gives the discriminator's loss too. Perceptual networks, discriminators, frozen teachers
and loss weights live here, so ``save_pretrained``, the weight EMA and strict loading never see them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..outputs import ModelOutput, TokenizerOutput


@dataclass
class ObjectiveOutput(ModelOutput):
    """A loss, the named weighted terms that sum to it, and scalars worth logging that are not loss terms."""

    loss: torch.Tensor
    losses: dict[str, torch.Tensor]
    logs: dict[str, torch.Tensor] = field(default_factory=dict)


class Objective(nn.Module):
    """The plain objective: the model's own losses (reconstruction, quantizer, the family's). No discriminator.

    Subclasses add terms in :meth:`generator_loss` and, with a ``discriminator``, define
    :meth:`discriminator_loss`; the trainer runs the discriminator step when :meth:`discriminator_active`.
    """

    def __init__(self):
        super().__init__()
        self.discriminator: nn.Module | None = None

    def generator_loss(
        self, out: TokenizerOutput, x: torch.Tensor, *, step: int, last_layer: Callable[[], torch.Tensor]
    ) -> ObjectiveOutput:
        """The loss the model's optimizer minimises at ``step``. ``last_layer()`` gives the decoder's last weight."""
        return ObjectiveOutput(loss=out.loss, losses=dict(out.losses))

    def discriminator_active(self, step: int) -> bool:
        """Whether the discriminator trains (and judges the generator) at ``step``."""
        return False

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor, *, step: int, discriminator: nn.Module) -> ObjectiveOutput:
        """The discriminator's loss on real signals and detached reconstructions; ``discriminator`` is this
        objective's discriminator, possibly wrapped for DDP by the trainer."""
        raise NotImplementedError(f"{type(self).__name__} has no discriminator")
