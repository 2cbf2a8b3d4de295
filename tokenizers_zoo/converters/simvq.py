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
from typing import Any

import torch

from ..config import ConfigError
from ..hub import CheckpointError
from ..models.simvq import SimVQ, SimVQConfig, simvq_quantizer
from .common import container, ema_keys, lightning_model_weights, load_converted, log_dropped, magvit2_shape, uses_ema, weights_in
from .registry import Converter, register_converter

log = logging.getLogger(__name__)

OFFICIAL_RESOLUTION = 128  # every released image model; only the nominal input size depends on it
ZOO_NAMES = {
    "quantize.embedding.weight": "quantizer.codebook",
    "quantize.embedding_proj.weight": "quantizer.projection.weight",
    "quantize.embedding_proj.bias": "quantizer.projection.bias",
}
OFFICIAL_NAMES = {zoo: official for official, zoo in ZOO_NAMES.items()}


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
    shape = magvit2_shape(state)
    basis = state["quantize.embedding.weight"]
    if basis.shape[1] != shape["z_channels"]:
        raise CheckpointError(f"the basis has {basis.shape[1]} features but the encoder gives {shape['z_channels']}: not a SimVQ image model")
    return SimVQConfig(
        **shape,
        resolution=resolution,
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


def convert(checkpoint: dict[str, Any], config: dict[str, Any] | None, ema: bool | None) -> SimVQ:
    state = weights_in(checkpoint)
    model = SimVQ(infer_config(state, _official_resolution(config)))
    averaged_keys = ema_keys(state, model, OFFICIAL_NAMES) if uses_ema(state, ema, log) else {}
    log_dropped(state, set(averaged_keys.values()), log)
    return load_converted(model, lightning_model_weights(state, averaged_keys, ZOO_NAMES), "SimVQ checkpoint")


register_converter(Converter(
    family="simvq",
    description="youngsheen/SimVQ image VQModel Lightning checkpoints (EMA weights by default)",
    detect=detect,
    convert=convert,
))
