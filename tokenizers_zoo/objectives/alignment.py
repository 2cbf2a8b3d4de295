"""Representation alignment (FQGAN): a semantic factor's quantized latents predict a frozen vision teacher's
class token, trained with a batch InfoNCE (``tokenizer/models/clip_encoder.py``, ``dino_encoder.py``).

Per teacher, a trainable :class:`FeatPredHead` maps the factor's quantized latents ``[B, d, h, w]`` to one vector
of the teacher's width; the teacher sees the input images mapped from [-1, 1] to [0, 1], resized (nearest) to its
``image_size``, normalised with its own mean and std; its target is the class token of its last block. The loss
is ``weight x InfoNCE`` with cosine similarities at temperature 1 over the batch, the teacher side constant.

Released setups (teachers load through timm from local files, never downloaded):

- FQGAN-Dual: ``{"factor": "sem", "model": "vit_large_patch14_clip_quickgelu_224.openai", "weights": ...}``
  (the official teacher is HF ``openai/clip-vit-large-patch14``; its ``hidden_states[-1]`` precedes the final
  LayerNorm, hence ``final_norm`` false).
- FQGAN-Triple: ``sem_mid`` against ``vit_small_patch14_dinov2.lvd142m`` with ``"final_norm": true`` and
  ``"options": {"img_size": 224}`` (HF ``facebook/dinov2-small``'s ``last_hidden_state`` is after the LayerNorm;
  HF interpolates the positional embedding per call, timm resamples it once when loading), and ``sem_high``
  against ``vit_base_patch16_clip_quickgelu_224.openai``. All weighted 0.5.

The heads are trained by the generator's optimizer and checkpointed with the objective; the teachers are frozen
and kept out of every state dict. This objective wraps another (``base``: the reconstruction or the GAN
objective), whose terms and discriminator it keeps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config, ConfigError, check_positive
from ..networks.transformer import PositionalTransformer
from ..outputs import TokenizerOutput
from .base import Objective, ObjectiveOutput
from .registry import build_objective, register_objective

log = logging.getLogger(__name__)


@dataclass
class Teacher(Config):
    """A frozen timm ViT whose class token the quantized ``factor`` learns to predict.

    ``weights``: a local file for timm's loader (``pretrained_cfg_overlay=dict(file=...)``: timm's own or the
    original format, e.g. a file from the Hugging Face cache); ``None`` leaves the teacher random (tests).
    ``final_norm``: take the class token after the model's final LayerNorm. ``options``: keyword arguments of
    ``timm.create_model``. ``head_layers`` / ``head_heads``: the :class:`FeatPredHead`'s blocks and heads.
    """

    factor: str = "sem"
    model: str = "vit_large_patch14_clip_quickgelu_224.openai"
    weights: str | None = None
    image_size: int = 224
    final_norm: bool = False
    weight: float = 0.5
    head_layers: int = 3
    head_heads: int = 8
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        check_positive(self, "image_size", "head_layers", "head_heads")
        if self.weight < 0:
            raise ConfigError(f"a teacher's weight must be >= 0, got {self.weight}")
        super().validate()


class FeatPredHead(PositionalTransformer):
    """FQGAN's feature-prediction head: each token (a code of ``code_dim``) through ``upscale`` (Linear ->
    ReLU -> Linear to ``width``), a learned class token in front, the positional transformer; returns the
    class token ``[B, width]``. Names follow the official ``FeatPredHead``."""

    def __init__(self, code_dim: int, grid: int, width: int, layers: int, heads: int):
        super().__init__(grid * grid + 1, width, layers, heads)
        self.upscale = nn.Sequential(nn.Linear(code_dim, width), nn.ReLU(), nn.Linear(width, width))
        self.class_embedding = nn.Parameter(torch.randn(1, width) * width**-0.5)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        tokens = self.upscale(latents.flatten(2).transpose(1, 2))
        cls = self.class_embedding.to(tokens.dtype).expand(tokens.shape[0], 1, -1)
        return super().forward(torch.cat([cls, tokens], dim=1))[:, 0]


def load_teacher(teacher: Teacher) -> nn.Module:
    """The frozen timm model a :class:`Teacher` names, in eval mode, with weights only from its local file."""
    try:
        import timm
    except ImportError as error:
        raise ImportError("alignment teachers need timm: pip install 'tokenizers-zoo[vision]'") from error
    if teacher.weights is not None and not Path(teacher.weights).is_file():
        raise FileNotFoundError(f"no teacher weights file {teacher.weights}")
    overlay = {"file": str(teacher.weights)} if teacher.weights is not None else None
    try:
        model = timm.create_model(teacher.model, pretrained=overlay is not None, pretrained_cfg_overlay=overlay, **teacher.options)
    except RuntimeError as error:
        raise ValueError(f"cannot build the teacher {teacher.model!r} with options {teacher.options}: {error}") from error
    if getattr(model, "num_prefix_tokens", 0) < 1 or not hasattr(model, "forward_intermediates"):
        raise ValueError(f"the teacher {teacher.model!r} must be a timm ViT with a class token")
    if overlay is None:
        log.warning("the teacher %s has no weights: its features are random (give 'weights': a local file)", teacher.model)
    return model.eval().requires_grad_(False)


@torch.no_grad()
def teacher_features(model: nn.Module, images: torch.Tensor, size: int, final_norm: bool) -> torch.Tensor:
    """Class token ``[B, D]`` of the teacher's last block for images in [-1, 1] (official preprocessing)."""
    config = model.pretrained_cfg
    mean = torch.tensor(config["mean"], device=images.device).view(1, -1, 1, 1)
    std = torch.tensor(config["std"], device=images.device).view(1, -1, 1, 1)
    x = (F.interpolate((images.float() + 1) / 2, size=(size, size)) - mean) / std
    ((_, prefix),) = model.forward_intermediates(
        x, indices=1, norm=final_norm, output_fmt="NLC", intermediates_only=True, return_prefix_tokens=True
    )
    return prefix[:, 0]


def info_nce(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``-mean_i log softmax_j(cos(p_i, t_j))[i]`` over the batch (temperature 1; ``target`` is a constant)."""
    logits = F.normalize(predicted.float(), dim=1) @ F.normalize(target.detach().float(), dim=1).T
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


@register_objective("alignment")
class AlignmentObjective(Objective):
    """``base``'s generator loss plus ``weight x InfoNCE`` per teacher, as ``alignment_<factor>``.

    Args:
        teachers: one :class:`Teacher` (or its JSON object) per aligned factor.
        base: the objective whose terms and discriminator are kept: a spec such as ``{"type": "gan", ...}``,
            an :class:`Objective`, or ``None`` for the model's own losses.

    :meth:`prepare` builds one :class:`FeatPredHead` per teacher for the model's factors (``heads.<factor>``);
    the trainer calls it and trains the heads with the model.
    """

    def __init__(self, teachers: tuple[Teacher, ...], *, base: dict | Objective | None = None):
        super().__init__()
        teachers = tuple(t if isinstance(t, Teacher) else Teacher.from_dict(t) for t in teachers)
        factors = [teacher.factor for teacher in teachers]
        if not teachers or len(set(factors)) != len(factors):
            raise ConfigError(f"alignment needs at least one teacher and one teacher per factor, got factors {factors}")
        self.specs = teachers
        self.base = base if isinstance(base, Objective) else build_objective(base)
        self.heads = nn.ModuleDict()
        # Bypassing nn.Module.__setattr__: the base's discriminator is reachable where the trainer looks for it but
        # registered once (as base.discriminator), and the frozen teachers are in no state dict and no parameters().
        self.__dict__["discriminator"] = self.base.discriminator
        self.__dict__["teachers"] = [load_teacher(teacher) for teacher in teachers]

    def prepare(self, model: nn.Module) -> None:
        """One head per teacher, sized by the model's code size, token grid and the teacher's width."""
        self.base.prepare(model)
        config = model.config
        factors = getattr(config, "factors", None)
        if factors is None:
            raise ConfigError(f"representation alignment needs a factorized model (FQGAN), not a {type(model).__name__}")
        grid = config.resolution // config.downsample_factor
        for spec, teacher in zip(self.specs, self.teachers):
            if spec.factor not in factors:
                raise ConfigError(f"the teacher {spec.model!r} aligns factor {spec.factor!r}; the model's factors are {list(factors)}")
            if spec.factor not in self.heads:
                self.heads[spec.factor] = FeatPredHead(config.embed_dim, grid, teacher.num_features, spec.head_layers, spec.head_heads)

    def generator_loss(
        self, out: TokenizerOutput, x: torch.Tensor, *, step: int, last_layer: Callable[[], torch.Tensor]
    ) -> ObjectiveOutput:
        base = self.base.generator_loss(out, x, step=step, last_layer=last_layer)
        if len(self.heads) != len(self.specs):
            raise RuntimeError("the alignment heads are not built: call prepare(model) first (the Trainer does)")
        terms = {}
        for spec, teacher in zip(self.specs, self.teachers):
            target = teacher_features(teacher.to(x.device), x, spec.image_size, spec.final_norm)
            predicted = self.heads[spec.factor](out.extras["factors"][spec.factor])
            terms[f"alignment_{spec.factor}"] = spec.weight * info_nce(predicted, target)
        return ObjectiveOutput(loss=base.loss + sum(terms.values()), losses={**base.losses, **terms}, logs=base.logs)

    def discriminator_active(self, step: int) -> bool:
        return self.base.discriminator_active(step)

    def discriminator_loss(self, real: torch.Tensor, fake: torch.Tensor, *, step: int, discriminator: nn.Module) -> ObjectiveOutput:
        return self.base.discriminator_loss(real, fake, step=step, discriminator=discriminator)
