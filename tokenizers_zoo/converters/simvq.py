"""youngsheen/SimVQ image checkpoints (``taming.models.vq.VQModel``) -> the zoo's ``simvq`` architecture.

The official files are Lightning ``.ckpt`` dicts whose ``state_dict`` holds ``encoder.*`` / ``decoder.*`` (the
names of :mod:`tokenizers_zoo.networks.magvit2`), the frozen basis ``quantize.embedding.weight`` and the linear
layer ``quantize.embedding_proj.*``, plus what only training needs: ``loss.*`` (discriminator, LPIPS) and
``model_ema.*``, Lightning's ``LitEma`` copy of every trainable parameter under its name with the dots removed
(``encoder.conv_in.weight`` -> ``model_ema.encoderconv_inweight``) and its ``decay`` / ``num_updates``. The frozen
basis has no EMA copy. The official evaluation uses the EMA weights, so the converter does too by default.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import torch

from ..config import ConfigError
from ..hub import CheckpointError
from ..models.simvq import SimVQ, SimVQConfig, simvq_quantizer
from .common import container, load_converted, numbered, weights_in
from .registry import Converter, register_converter

log = logging.getLogger(__name__)

OFFICIAL_RESOLUTION = 128  # every released image model; only the nominal input size depends on it
ZOO_NAMES = {
    "quantize.embedding.weight": "quantizer.codebook",
    "quantize.embedding_proj.weight": "quantizer.projection.weight",
    "quantize.embedding_proj.bias": "quantizer.projection.bias",
}
OFFICIAL_NAMES = {zoo: official for official, zoo in ZOO_NAMES.items()}
TRAINING_ONLY = ("loss.", "model_ema.")
EMA_PREFIX = "model_ema."


def detect(checkpoint: dict[str, Any]) -> bool:
    state = container(checkpoint)
    return (
        isinstance(state, dict)
        and "quantize.embedding_proj.weight" in state
        and any(isinstance(key, str) and key.startswith("encoder.mid_block.0.") for key in state)
    )


def infer_config(state: dict[str, torch.Tensor], resolution: int = OFFICIAL_RESOLUTION) -> SimVQConfig:
    """The ``SimVQConfig`` whose model has exactly these tensors (GroupNorm's 32 groups are not visible in them)."""
    needed = ["encoder.conv_in.weight", "encoder.conv_out.weight", *ZOO_NAMES]
    missing = [key for key in needed if key not in state]
    if missing:
        raise CheckpointError(f"not a SimVQ image checkpoint: no {missing}")
    conv_in = state["encoder.conv_in.weight"]
    ch = conv_in.shape[0]
    levels = numbered(state, r"encoder\.down\.(\d+)\.")
    basis = state["quantize.embedding.weight"]
    z_channels = state["encoder.conv_out.weight"].shape[0]
    if basis.shape[1] != z_channels:
        raise CheckpointError(f"the basis has {basis.shape[1]} features but the encoder gives {z_channels}: not a SimVQ image model")
    return SimVQConfig(
        ch=ch,
        ch_mult=tuple(state[f"encoder.down.{level}.block.0.conv2.weight"].shape[0] // ch for level in levels),
        num_res_blocks=len(numbered(state, r"encoder\.down\.0\.block\.(\d+)\.")),
        z_channels=z_channels,
        resolution=resolution,
        in_channels=conv_in.shape[1],
        quantizer=simvq_quantizer(basis.shape[0]),
    )


def _official_resolution(config: dict[str, Any] | None) -> int:
    """``ddconfig.resolution`` of an official YAML (``model.init_args`` or ``model.params``), else 128."""
    if config is None:
        return OFFICIAL_RESOLUTION
    model = config.get("model") or {}
    arguments = (model.get("init_args") or model.get("params") or {}) if isinstance(model, dict) else {}
    resolution = (arguments.get("ddconfig") or {}).get("resolution", OFFICIAL_RESOLUTION)
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ConfigError(f"the official config's model ddconfig.resolution must be a positive integer, got {resolution!r}")
    return resolution


def _uses_ema(state: dict[str, torch.Tensor], ema: bool | None) -> bool:
    has_ema = any(key.startswith(EMA_PREFIX) for key in state)
    if ema and not has_ema:
        raise CheckpointError("ema=True, but the checkpoint has no EMA weights (model_ema.*): convert with ema=False (--no-ema)")
    if ema is None and not has_ema:
        log.info("the checkpoint has no EMA weights (model_ema.*): using the live weights")
    return has_ema if ema is None else ema


def _ema_keys(state: dict[str, torch.Tensor], model: SimVQ) -> dict[str, str]:
    """Zoo name -> ``model_ema.<official name without dots>`` for every trainable parameter (LitEma's naming)."""
    keys = {
        name: EMA_PREFIX + OFFICIAL_NAMES.get(name, name).replace(".", "")
        for name, parameter in model.named_parameters()
        if parameter.requires_grad
    }
    missing = sorted(key for key in keys.values() if key not in state)
    if missing:
        raise CheckpointError(
            f"the checkpoint's EMA lacks {len(missing)} trainable weight(s): {missing[:8]}; convert with ema=False (--no-ema)"
        )
    return keys


def _log_dropped(state: dict[str, torch.Tensor], used: set[str]) -> None:
    groups = Counter(
        ".".join(key.split(".")[:2]) + ".*" if key.startswith("loss.") else EMA_PREFIX + "*"
        for key in state
        if key.startswith(TRAINING_ONLY) and key not in used
    )
    if groups:
        log.info("dropped the training-only tensors: %s", ", ".join(f"{prefix} ({count})" for prefix, count in sorted(groups.items())))


def convert(checkpoint: dict[str, Any], config: dict[str, Any] | None, ema: bool | None) -> SimVQ:
    state = weights_in(checkpoint)
    model = SimVQ(infer_config(state, _official_resolution(config)))
    ema_keys = _ema_keys(state, model) if _uses_ema(state, ema) else {}
    _log_dropped(state, set(ema_keys.values()))
    live = {ZOO_NAMES.get(key, key): value for key, value in state.items() if not key.startswith(TRAINING_ONLY)}
    averaged = {name: state[key] for name, key in ema_keys.items()}
    return load_converted(model, {**live, **averaged}, "SimVQ checkpoint")


register_converter(Converter(
    family="simvq",
    description="youngsheen/SimVQ image VQModel Lightning checkpoints (EMA weights by default)",
    detect=detect,
    convert=convert,
))
