"""Training objectives: what only training needs (discriminators, adversarial terms, later perceptual
networks and teachers), kept beside the model so that nothing of it is saved with the model."""

from .adversarial import (
    ADVERSARIAL_LOSSES,
    LeCAM,
    adaptive_weight,
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from .base import Objective, ObjectiveOutput
from .discriminators import DISCRIMINATORS, DiscriminatorOutput, PatchGANDiscriminator, build_discriminator, register_discriminator
from .gan import GANObjective
from .registry import OBJECTIVES, build_objective, register_objective

__all__ = [
    "ADVERSARIAL_LOSSES", "DISCRIMINATORS", "DiscriminatorOutput", "GANObjective", "LeCAM", "OBJECTIVES", "Objective",
    "ObjectiveOutput", "PatchGANDiscriminator", "adaptive_weight", "build_discriminator", "build_objective",
    "discriminator_adversarial_loss", "feature_matching_loss", "generator_adversarial_loss", "register_discriminator",
    "register_objective",
]
