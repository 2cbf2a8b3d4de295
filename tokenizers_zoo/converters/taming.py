"""taming-transformers VQGAN (CompVis/taming-transformers ``VQModel``) -> the zoo's ``vqvae`` architecture.

Official checkpoints are Lightning ``.ckpt`` files whose ``state_dict`` holds ``encoder.*`` / ``decoder.*`` (the
same names as :mod:`tokenizers_zoo.networks.taming`), ``quant_conv`` / ``post_quant_conv``, the codebook
``quantize.embedding.weight``, and the training-only ``loss.*`` (LPIPS, discriminator), which is dropped.
The architecture is read from the tensors: widths from the convolutions, levels and blocks from the keys,
attention levels from where ``attn`` blocks exist. taming's quantizer weights its losses "legacy" style
(commitment 1, codebook 0.25), kept for fine-tuning. There is no EMA in these files.

:func:`infer_taming_arch` serves every converter of a taming-backbone family (VQGAN-LC too).
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from ..models.vqvae import VQVAE, VQVAEConfig
from .common import container, drop_training_weights, load_converted, numbered, weights_in
from .registry import Converter, register_converter

log = logging.getLogger(__name__)

REFERENCE_RESOLUTION = 256  # attention levels are stored as resolutions relative to this (as taming's configs do)


def detect(checkpoint: dict[str, Any]) -> bool:
    state = container(checkpoint)
    expected = {"quantize.embedding.weight", "quant_conv.weight", "encoder.conv_in.weight", "decoder.conv_out.weight"}
    return isinstance(state, dict) and expected <= state.keys()  # quant_conv: SimVQ's files have none


def infer_taming_arch(state: dict[str, torch.Tensor], config: dict[str, Any] | None = None) -> dict[str, Any]:
    """The backbone fields of :class:`VQVAEConfig` (the ``TamingArch`` fields, ``in_channels``, ``embed_dim``) whose
    model has exactly the ``encoder.*``, ``decoder.*`` and ``quant_conv`` tensors of ``state``.

    Only shapes and key names are read. Attention levels become resolutions relative to the training resolution:
    ``model.params.ddconfig.resolution`` of the official YAML ``config`` when given, else 256.
    """
    resolution = ((config or {}).get("model", {}).get("params", {}).get("ddconfig", {}).get("resolution")) or REFERENCE_RESOLUTION
    ch = state["encoder.conv_in.weight"].shape[0]
    levels = numbered(state, r"encoder\.down\.(\d+)\.")
    blocks = numbered(state, r"encoder\.down\.0\.block\.(\d+)\.")
    return dict(
        ch=ch,
        ch_mult=tuple(state[f"encoder.down.{level}.block.0.conv2.weight"].shape[0] // ch for level in levels),
        num_res_blocks=len(blocks),
        attn_resolutions=tuple(resolution // 2**level for level in levels if f"encoder.down.{level}.attn.0.q.weight" in state),
        resolution=resolution,
        z_channels=state["encoder.conv_out.weight"].shape[0],
        in_channels=state["encoder.conv_in.weight"].shape[1],
        embed_dim=state["quant_conv.weight"].shape[0],
    )


def infer_config(state: dict[str, torch.Tensor], config: dict[str, Any] | None = None) -> VQVAEConfig:
    """The ``VQVAEConfig`` whose model has exactly these tensors."""
    codebook = state["quantize.embedding.weight"]
    quantizer = {"type": "vq", "codebook_size": codebook.shape[0], "beta": 1.0, "codebook_weight": 0.25}
    return VQVAEConfig(**infer_taming_arch(state, config), quantizer=quantizer)


def convert(checkpoint: dict[str, Any], config: dict[str, Any] | None, ema: bool | None) -> VQVAE:
    if ema:
        raise ValueError("taming-transformers checkpoints hold no EMA weights")
    state = drop_training_weights(weights_in(checkpoint), ("loss.",), log)
    renamed = {("quantizer.codebook" if key == "quantize.embedding.weight" else key): value for key, value in state.items()}
    return load_converted(VQVAE(infer_config(state, config)), renamed, "taming-transformers checkpoint")


register_converter(Converter(
    family="taming",
    description="CompVis/taming-transformers VQGAN (VQModel) Lightning checkpoints",
    detect=detect,
    convert=convert,
))
