"""Training objectives: what only training needs (discriminators, adversarial terms, the LPIPS perceptual
network, representation-alignment teachers and heads), kept beside the model so that nothing of it is saved
with the model."""

from .adversarial import (
    ADVERSARIAL_LOSSES,
    LeCAM,
    adaptive_weight,
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)
from .alignment import AlignmentObjective, FeatPredHead, Teacher
from .audio import AudioGANObjective, DiscriminatorTerm
from .audio_discriminators import DACDiscriminator, MultiPeriodDiscriminator, MultiResolutionDiscriminator
from .base import Objective, ObjectiveOutput
from .discriminators import DISCRIMINATORS, DiscriminatorOutput, PatchGANDiscriminator, build_discriminator, register_discriminator
from .gan import GANObjective
from .lpips import LPIPS
from .mel import MelL1
from .registry import OBJECTIVES, build_objective, register_objective

__all__ = [
    "ADVERSARIAL_LOSSES", "AlignmentObjective", "AudioGANObjective", "DACDiscriminator", "DISCRIMINATORS", "DiscriminatorTerm", "DiscriminatorOutput", "FeatPredHead", "GANObjective", "LPIPS",
    "LeCAM", "MelL1", "MultiPeriodDiscriminator", "MultiResolutionDiscriminator", "OBJECTIVES", "Objective", "ObjectiveOutput", "PatchGANDiscriminator", "Teacher", "adaptive_weight",
    "build_discriminator", "build_objective", "discriminator_adversarial_loss", "feature_matching_loss",
    "generator_adversarial_loss", "register_discriminator", "register_objective",
]
