"""zhuangshaobin/WeTok checkpoints (``src.WeTok.models.lfqgan.VQModel``) -> the zoo's ``wetok`` architecture.

The released ``WeTok.ckpt`` files are Lightning dicts whose ``state_dict`` holds ``encoder.*`` / ``decoder.*``
(the names of :mod:`tokenizers_zoo.networks.magvit2`, with the adaptive norms under ``decoder.adaptive.*``), plus
what only training needs: ``loss.*`` (discriminator, LPIPS) and ``model_ema.*`` (``LitEma``: dot-less names,
``decay``, ``num_updates``). The quantizer's buffers are not saved, so nothing names it: its group count is the
latent width over 8 bits (every release: 256 codes per group). A generative decoder shows in its conv_in, which
reads twice the latent width (latent and noise). Width, levels and res blocks come from the tensor shapes; the
official YAML is not needed. The official evaluation runs under ``ema_scope``, so the EMA weights are the default.

A second-stage checkpoint (``lfqgan_pretrain_gan_decoder.py`` with ``stage2``) builds its ``LitEma`` after freezing
the encoder, so its EMA has no encoder weights: the live ones (which stage 2 never changed) are taken then.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from ..hub import CheckpointError
from ..models.wetok import WeTok, WeTokConfig, wetok_quantizer
from .common import EMA_PREFIX, container, ema_keys, lightning_model_weights, load_converted, log_dropped, magvit2_shape, uses_ema, weights_in
from .registry import Converter, register_converter

log = logging.getLogger(__name__)

BITS_PER_GROUP = 8  # n_embed 256 in every released configs/WeToK/Inference/*.yaml
OFFICIAL_RESOLUTION = 256  # the data size of those configs (ddconfig.resolution 128 is unused by the networks)


def detect(checkpoint: dict[str, Any]) -> bool:
    state = container(checkpoint)
    return isinstance(state, dict) and any(isinstance(key, str) and key.startswith("decoder.adaptive.") for key in state)


def infer_config(state: dict[str, torch.Tensor], resolution: int = OFFICIAL_RESOLUTION) -> WeTokConfig:
    """The ``WeTokConfig`` whose model has exactly these tensors (GroupNorm's 32 groups are not visible in them)."""
    needed = ["encoder.conv_in.weight", "encoder.conv_out.weight", "decoder.conv_in.weight"]
    missing = [key for key in needed if key not in state]
    if missing:
        raise CheckpointError(f"not a WeTok checkpoint: no {missing}")
    shape = magvit2_shape(state)
    z_channels = shape["z_channels"]
    if z_channels % BITS_PER_GROUP:
        raise CheckpointError(f"the encoder gives {z_channels} features, not a whole number of {BITS_PER_GROUP}-bit groups")
    decoder_inputs = state["decoder.conv_in.weight"].shape[1]
    if decoder_inputs not in (z_channels, 2 * z_channels):
        raise CheckpointError(f"the decoder's conv_in reads {decoder_inputs} channels: neither the latent ({z_channels}) nor latent + noise")
    return WeTokConfig(
        **shape,
        resolution=resolution,
        quantizer=wetok_quantizer(z_channels // BITS_PER_GROUP, BITS_PER_GROUP),
        gan_decoder=decoder_inputs == 2 * z_channels,
    )


def _averaged_keys(state: dict[str, torch.Tensor], model: WeTok) -> dict[str, str]:
    """Zoo name -> EMA key, leaving the encoder to the live weights when the EMA has none of it (stage 2)."""
    if any(key.startswith(EMA_PREFIX + "encoder") for key in state):
        return ema_keys(state, model)
    log.info("the EMA has no encoder weights (frozen in second-stage training): using the live encoder")
    return ema_keys(state, model, skip=("encoder.",))


def convert(checkpoint: dict[str, Any], config: dict[str, Any] | None, ema: bool | None) -> WeTok:
    state = weights_in(checkpoint)
    model = WeTok(infer_config(state))
    averaged_keys = _averaged_keys(state, model) if uses_ema(state, ema, log) else {}
    log_dropped(state, set(averaged_keys.values()), log)
    return load_converted(model, lightning_model_weights(state, averaged_keys), "WeTok checkpoint")


register_converter(Converter(
    family="wetok",
    description="zhuangshaobin/WeTok VQModel Lightning checkpoints, deterministic or generative decoder (EMA weights by default)",
    detect=detect,
    convert=convert,
))
