"""taming-transformers VQGAN (CompVis/taming-transformers ``VQModel``) -> the zoo's ``vqvae`` architecture.

Official checkpoints are Lightning ``.ckpt`` files whose ``state_dict`` holds ``encoder.*`` / ``decoder.*`` (the
same names as :mod:`tokenizers_zoo.networks.taming`), ``quant_conv`` / ``post_quant_conv``, the codebook
``quantize.embedding.weight``, and the training-only ``loss.*`` (LPIPS, discriminator), which is dropped.
The architecture is read from the tensors: widths from the convolutions, levels and blocks from the keys,
attention levels from where ``attn`` blocks exist. taming's quantizer weights its losses "legacy" style
(commitment 1, codebook 0.25), kept for fine-tuning. There is no EMA in these files.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import torch

from ..hub import CheckpointError, load_state_dict_checked
from ..models.vqvae import VQVAE, VQVAEConfig
from .registry import Converter, register_converter

log = logging.getLogger(__name__)

REFERENCE_RESOLUTION = 256  # attention levels are stored as resolutions relative to this (as taming's configs do)


def _state(checkpoint: dict[str, Any]) -> dict[str, torch.Tensor]:
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, dict):
        raise CheckpointError("the checkpoint's 'state_dict' is not a dict of tensors")
    return state


def detect(checkpoint: dict[str, Any]) -> bool:
    state = checkpoint.get("state_dict", checkpoint)
    return isinstance(state, dict) and {"quantize.embedding.weight", "encoder.conv_in.weight", "decoder.conv_out.weight"} <= state.keys()


def infer_config(state: dict[str, torch.Tensor]) -> VQVAEConfig:
    """The ``VQVAEConfig`` whose model has exactly these tensors."""
    ch = state["encoder.conv_in.weight"].shape[0]
    levels = sorted({int(m.group(1)) for key in state if (m := re.match(r"encoder\.down\.(\d+)\.", key))})
    blocks = {int(m.group(1)) for key in state if (m := re.match(r"encoder\.down\.0\.block\.(\d+)\.", key))}
    codebook = state["quantize.embedding.weight"]
    attention = tuple(REFERENCE_RESOLUTION // 2**level for level in levels if f"encoder.down.{level}.attn.0.q.weight" in state)
    return VQVAEConfig(
        ch=ch,
        ch_mult=tuple(state[f"encoder.down.{level}.block.0.conv2.weight"].shape[0] // ch for level in levels),
        num_res_blocks=len(blocks),
        attn_resolutions=attention,
        resolution=REFERENCE_RESOLUTION,
        z_channels=state["encoder.conv_out.weight"].shape[0],
        in_channels=state["encoder.conv_in.weight"].shape[1],
        embed_dim=state["quant_conv.weight"].shape[0],
        quantizer={"type": "vq", "codebook_size": codebook.shape[0], "beta": 1.0, "codebook_weight": 0.25},
    )


def convert(checkpoint: dict[str, Any], config: dict[str, Any] | None, ema: bool | None) -> VQVAE:
    if ema:
        raise ValueError("taming-transformers checkpoints hold no EMA weights")
    state = _state(checkpoint)
    arch = infer_config(state)
    if config is not None:
        resolution = config.get("model", {}).get("params", {}).get("ddconfig", {}).get("resolution")
        if resolution is not None:
            scale = resolution / REFERENCE_RESOLUTION
            arch = arch.replace(resolution=resolution, attn_resolutions=tuple(int(r * scale) for r in arch.attn_resolutions))
    dropped = sorted({key.split(".")[0] for key in state if key.startswith("loss.")})
    if dropped:
        log.info("dropped the training-only weights under: %s", ", ".join(f"{prefix}.*" for prefix in dropped))
    model = VQVAE(arch)
    statistics = {f"quantizer.{name}": value for name, value in model.quantizer.state_dict().items() if name != "codebook"}
    renamed = {("quantizer.codebook" if key == "quantize.embedding.weight" else key): value for key, value in state.items() if not key.startswith("loss.")}
    load_state_dict_checked(model, {**statistics, **renamed}, "taming-transformers checkpoint")
    return model


register_converter(Converter(
    family="taming",
    description="CompVis/taming-transformers VQGAN (VQModel) Lightning checkpoints",
    detect=detect,
    convert=convert,
))
