"""The audio codec objective (WavTokenizer / vocos): mel L1, several waveform discriminators, each with its
own adversarial loss and feature matching, plus the model's commitment; every discriminator is trained.

Generator loss = the model's losses except the waveform reconstruction (quantizer commitment, the family's
own; ``reconstruction_weight`` x the waveform L1 when wanted) + ``mel_weight`` x mel L1 + per discriminator
``weight`` x adversarial + ``feature_matching_weight`` x feature matching. Discriminator loss = per
discriminator ``weight`` x its adversarial loss. With ``average`` a discriminator's terms are divided by its
number of sub-discriminators (vocos); without, summed (DAC).

WavTokenizer's release trains with ``WAVTOKENIZER_DISCRIMINATORS`` (below), mel x45 and commitment x1000 (set
on the model's quantizer), GAN from step 0. Its training code never updates the DAC discriminator that its
loss consults: the module its optimizer trains is a second copy, so the judge stays at random init. Here one
module per discriminator is both consulted and trained by the discriminator optimizer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ..config import Config, ConfigError
from ..outputs import TokenizerOutput
from .adversarial import ADVERSARIAL_LOSSES, discriminator_adversarial_loss, feature_matching_loss, generator_adversarial_loss
from .base import Objective, ObjectiveOutput
from .discriminators import DiscriminatorOutput, build_discriminator
from .mel import MelL1
from .registry import register_objective

WAVTOKENIZER_DISCRIMINATORS = (
    {"name": "mpd", "discriminator": {"type": "multi_period"}, "loss": "clamped_hinge", "average": True},
    {"name": "mrd", "discriminator": {"type": "multi_resolution"}, "loss": "clamped_hinge", "average": True},
    {"name": "dac", "discriminator": {"type": "dac"}, "loss": "least_squares", "average": False},
)


@dataclass
class DiscriminatorTerm(Config):
    """One discriminator of the objective: its spec, loss kind, weights and whether its terms are averaged
    over its sub-discriminators. ``name`` labels its loss terms (``adversarial_<name>``, ...)."""

    name: str = "mpd"
    discriminator: dict[str, Any] = field(default_factory=lambda: {"type": "multi_period"})
    loss: str = "clamped_hinge"
    weight: float = 1.0
    feature_matching_weight: float = 1.0
    average: bool = True

    def validate(self) -> None:
        if self.loss not in ADVERSARIAL_LOSSES:
            raise ConfigError(f"discriminator {self.name!r}: loss must be one of {ADVERSARIAL_LOSSES}, got {self.loss!r}")
        if not (_finite_non_negative(self.weight) and _finite_non_negative(self.feature_matching_weight)):
            raise ConfigError(f"discriminator {self.name!r}: weights must be finite and >= 0")
        if not self.name.isidentifier():
            raise ConfigError(f"a discriminator name must be an identifier, got {self.name!r}")
        super().validate()


class AudioDiscriminators(nn.ModuleDict):
    """The objective's discriminators under their names; ``forward(audio)`` -> ``{name: DiscriminatorOutput}``."""

    def forward(self, audio: torch.Tensor) -> dict[str, DiscriminatorOutput]:
        return {name: discriminator(audio) for name, discriminator in self.items()}


@register_objective("audio_gan")
class AudioGANObjective(Objective):
    """Mel L1 + several trained waveform discriminators (see the module docstring).

    Args:
        discriminators: :class:`DiscriminatorTerm` entries (objects or dicts); default: WavTokenizer's three.
        sample_rate: the model's rate, for the mel filters (checked against the model in :meth:`prepare`).
        mel: options of :class:`MelL1` besides the rate (``n_fft``, ``hop_length``, ``n_mels``).
        mel_weight: weight of the mel L1 (WavTokenizer: 45).
        reconstruction_weight: factor on the model's waveform reconstruction loss (0: dropped, as upstream).
        disc_start: first step at which the discriminators train and judge.
    """

    def __init__(
        self,
        discriminators: tuple[DiscriminatorTerm | dict, ...] = WAVTOKENIZER_DISCRIMINATORS,
        *,
        sample_rate: int = 24000,
        mel: dict[str, int] | None = None,
        mel_weight: float = 45.0,
        reconstruction_weight: float = 0.0,
        disc_start: int = 0,
    ):
        super().__init__()
        terms = tuple(t if isinstance(t, DiscriminatorTerm) else DiscriminatorTerm.from_dict(t) for t in discriminators)
        names = [term.name for term in terms]
        if len(set(names)) != len(names):
            raise ConfigError(f"discriminator names must be unique, got {names}")
        if not (_finite_non_negative(mel_weight) and _finite_non_negative(reconstruction_weight)) or disc_start < 0:
            raise ValueError("mel_weight and reconstruction_weight must be finite and >= 0, disc_start >= 0")
        self.terms = terms
        self.sample_rate, self.mel_weight, self.reconstruction_weight, self.disc_start = sample_rate, mel_weight, reconstruction_weight, disc_start
        self.mel = MelL1(sample_rate, **(mel or {}))
        self.discriminator = AudioDiscriminators({term.name: build_discriminator(term.discriminator) for term in terms}) if terms else None

    def prepare(self, model: nn.Module) -> None:
        spec = model.input_spec
        if spec.modality != "audio" or spec.sample_rate != self.sample_rate:
            raise ConfigError(f"the audio objective is set for {self.sample_rate} Hz audio; the model takes {spec.modality} at {getattr(spec, 'sample_rate', '-')}")

    def discriminator_active(self, step: int) -> bool:
        return self.discriminator is not None and step >= self.disc_start

    def generator_loss(
        self, out: TokenizerOutput, x: torch.Tensor, *, step: int, last_layer: Callable[[], torch.Tensor]
    ) -> ObjectiveOutput:
        fake = _trimmed(out.reconstruction, x)
        losses = {name: value for name, value in out.losses.items() if name != "reconstruction"}
        if self.reconstruction_weight > 0:
            losses["reconstruction"] = self.reconstruction_weight * out.losses["reconstruction"]
        losses["mel"] = self.mel_weight * self.mel(fake, x)
        logs = {"waveform_l1": out.losses["reconstruction"].detach()} if "reconstruction" in out.losses else {}
        if self.discriminator_active(step):
            judged = self.discriminator(fake)
            with torch.no_grad():
                real = self.discriminator(x)
            for term in self.terms:
                scale = 1 / len(judged[term.name].logits) if term.average else 1.0
                adversarial = generator_adversarial_loss(term.loss, judged[term.name].logits)
                matching = feature_matching_loss(real[term.name].features, judged[term.name].features)
                losses[f"adversarial_{term.name}"] = term.weight * scale * adversarial
                losses[f"feature_matching_{term.name}"] = term.feature_matching_weight * scale * matching
        return ObjectiveOutput(loss=sum(losses.values()), losses=losses, logs=logs)

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor, *, step: int, discriminator: nn.Module) -> ObjectiveOutput:
        judged_real, judged_fake = discriminator(real.detach()), discriminator(_trimmed(fake, real).detach())
        losses, logs = {}, {}
        for term in self.terms:
            r, f = judged_real[term.name].logits, judged_fake[term.name].logits
            scale = 1 / len(r) if term.average else 1.0
            losses[f"discriminator_{term.name}"] = term.weight * scale * discriminator_adversarial_loss(term.loss, r, f)
            logs[f"logits_real_{term.name}"] = torch.stack([v.detach().float().mean() for v in r]).mean()
            logs[f"logits_fake_{term.name}"] = torch.stack([v.detach().float().mean() for v in f]).mean()
        return ObjectiveOutput(loss=sum(losses.values()), losses=losses, logs=logs)


def _trimmed(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The reconstruction cut to the target's length (decoders give whole hops: ``F x hop >= T``)."""
    if reconstruction.ndim != 2 or reconstruction.shape[0] != target.shape[0] or reconstruction.shape[-1] < target.shape[-1]:
        raise ValueError(f"the reconstruction {list(reconstruction.shape)} does not cover the audio {list(target.shape)}")
    return reconstruction[..., : target.shape[-1]]


def _finite_non_negative(value: float) -> bool:
    return math.isfinite(value) and value >= 0
