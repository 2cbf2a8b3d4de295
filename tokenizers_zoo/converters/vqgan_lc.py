"""VQGAN-LC (zh460045050/VQGAN-LC ``VQModel``) -> the zoo's ``vqvae`` architecture with the ``lc`` quantizer.

Official files are ``torch.save`` dicts (``vqgan-gpt-lc/util/misc.py``): ``save_model_vqgan`` puts the weights
under ``state_dict``, the ``*-last.pth`` savers under ``model``; both also pickle the training ``args`` (an
``argparse.Namespace``), so they load only with ``trust_pickle=True``. Keys: the taming backbone verbatim
(``encoder.*``, ``decoder.*``, ``quant_conv``, ``post_quant_conv``), the frozen table ``tok_embeddings.weight``
``[N, 768]`` and the linear projector ``codebook_projection.{weight,bias}``; the training-only
``discriminator.*`` and ``perceptual_loss.*`` are dropped. The architecture is read from the tensors; ``args``
(``embed_dim``, ``n_vision_words``, ``use_cblinear``, ``quantizer_type``) only cross-checks them. There is no
EMA. The MLP projector (``--use_cblinear 2``) and the projector-free variant (``0``) are refused.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import torch

from ..hub import CheckpointError
from ..models.vqvae import VQVAE, VQVAEConfig
from .registry import Converter, register_converter
from .common import container, drop_training_weights, load_converted, weights_in
from .taming import infer_taming_arch

log = logging.getLogger(__name__)

CONTAINERS = ("state_dict", "model")  # save_model_vqgan / save_model_last_vqgan*
TRAINING_ONLY = ("discriminator.", "perceptual_loss.")
RENAMES = {
    "tok_embeddings.weight": "quantizer.codebook",
    "codebook_projection.weight": "quantizer.projection.weight",
    "codebook_projection.bias": "quantizer.projection.bias",
}


def detect(checkpoint: dict[str, Any]) -> bool:
    state = container(checkpoint, CONTAINERS)
    return isinstance(state, dict) and {"tok_embeddings.weight", "encoder.conv_in.weight"} <= state.keys()


def infer_config(state: dict[str, torch.Tensor], config: dict[str, Any] | None = None) -> VQVAEConfig:
    """The ``VQVAEConfig`` whose model has exactly these (official) tensors."""
    table = state["tok_embeddings.weight"]
    quantizer = {"type": "lc", "codebook_size": table.shape[0], "table_dim": table.shape[1]}
    return VQVAEConfig(**infer_taming_arch(state, config), quantizer=quantizer)


def _check_projector(state: dict[str, torch.Tensor]) -> None:
    if "codebook_projection.weight" in state:
        return
    if any(key.startswith("codebook_projection.") for key in state):
        raise ValueError(
            "this VQGAN-LC checkpoint has the MLP codebook projector (--use_cblinear 2: codebook_projection.0 / .2), "
            "which is not supported: only the linear projector of the released models converts"
        )
    raise ValueError(
        "this VQGAN-LC checkpoint has no codebook projector (--use_cblinear 0: the table itself is the codebook), "
        "which is not supported: only the linear projector of the released models converts"
    )


def _cross_check(args: Any, expected: dict[str, Any]) -> None:
    """Refuse a file whose training ``args`` contradict what its tensors say."""
    values = vars(args) if isinstance(args, argparse.Namespace) else args if isinstance(args, dict) else {}
    clashes = [
        f"{name}={values[name]!r} (tensors: {value!r})" for name, value in expected.items() if name in values and values[name] != value
    ]
    if clashes:
        raise CheckpointError(f"the checkpoint's training args contradict its tensors: {', '.join(clashes)}")


def convert(checkpoint: dict[str, Any], config: dict[str, Any] | None, ema: bool | None) -> VQVAE:
    if ema:
        raise ValueError("VQGAN-LC checkpoints hold no EMA weights")
    state = drop_training_weights(weights_in(checkpoint, CONTAINERS), TRAINING_ONLY, log)
    _check_projector(state)
    arch = infer_config(state, config)
    expected = {"embed_dim": arch.embed_dim, "n_vision_words": arch.quantizer["codebook_size"], "use_cblinear": 1, "quantizer_type": "org"}
    _cross_check(checkpoint.get("args"), expected)
    weights = {RENAMES.get(key, key): value for key, value in state.items()}
    return load_converted(VQVAE(arch), weights, "VQGAN-LC checkpoint")


register_converter(Converter(
    family="vqgan_lc",
    description="zh460045050/VQGAN-LC VQModel checkpoints (.pth: state_dict, or model for *-last.pth)",
    detect=detect,
    convert=convert,
))
