"""showlab/FQGAN checkpoints (``tokenizer/vq_model_{dual,triple}.py`` ``VQModel``) -> the zoo's ``fqgan`` architecture.

Official files are ``torch.save`` dicts from ``vq_train_{dual,triple}.py``: ``model`` (the weights), ``optimizer``,
``discriminator``, ``optimizer_disc``, ``steps``, ``args`` (an ``argparse.Namespace``, so the file loads only with
``trust_pickle=True``) and, when trained with ``--ema``, ``ema`` (a full copy of the model's state). The official
evaluation (``reconstruction_vq_ddp_*.py``) takes ``ema``, else ``model``, else ``state_dict``; so does ``ema=None``
here, while ``ema=False`` takes ``model`` and ``ema=True`` insists on ``ema``.

Zoo names equal the official ones (``encoder.*``, ``quant_conv_<f>``, ``post_quant_conv``, ``decoder.*``) except
the codebooks: ``quantize_<f>.embedding.weight`` -> ``quantizer.quantizers.<i>.codebook`` with ``i`` the factor's
place in decoder order (``vis``, ``sem`` / ``vis``, ``sem_mid``, ``sem_high``). The model l2-normalises the rows
whenever it uses them, as the official code does, so they are stored as found. Dropped: the training-only
feature-prediction heads (``feat_pred_head``, ``mid_sem_feat_pred``, ``high_sem_feat_pred``) and the quantizers'
``codebook_used`` windows (logged). The architecture is read from the tensors; ``args`` supplies the training
loss weights (entropy, commitment, disentanglement), which the tensors cannot show, and is checked against them.
"""

from __future__ import annotations

import argparse
import logging
import math
import re
from collections import Counter
from typing import Any

import torch

from ..hub import CheckpointError
from ..models.fqgan import DUAL, TRIPLE, FQGAN, FQGANConfig, fqgan_quantizer, head_name
from .common import load_converted, numbered
from .registry import Converter, register_converter

log = logging.getLogger(__name__)

EVALUATION_ORDER = ("ema", "model", "state_dict")  # reconstruction_vq_ddp_{dual,triple}.py
TRAINING_ONLY = ("feat_pred_head.", "mid_sem_feat_pred.", "high_sem_feat_pred.")
USAGE_WINDOW = ".codebook_used"
RELEASED_HEADS = 8  # FactorizedAdapter.num_heads is hard-coded; heads leave no trace in the tensors


def _weights(checkpoint: dict[str, Any], ema: bool | None) -> tuple[str, dict[str, torch.Tensor]]:
    names = {None: EVALUATION_ORDER, True: ("ema",), False: ("model", "state_dict")}[ema]
    for name in names:
        if isinstance(checkpoint.get(name), dict):
            return name, checkpoint[name]
    if ema:
        raise CheckpointError("ema=True, but the checkpoint has no 'ema' weights (trained without --ema): use ema=False (--no-ema)")
    raise CheckpointError(f"not an FQGAN checkpoint: none of {list(names)} holds a dict of weights (keys: {sorted(checkpoint)[:8]})")


def detect(checkpoint: dict[str, Any]) -> bool:
    state = next((checkpoint[name] for name in EVALUATION_ORDER if isinstance(checkpoint.get(name), dict)), None)
    return state is not None and {"quantize_vis.embedding.weight", "encoder.conv_blocks.0.res.0.conv1.weight"} <= state.keys()


def _factors(state: dict[str, torch.Tensor]) -> tuple[str, ...]:
    """The factors in decoder order, from the ``quantize_<f>`` codebooks present."""
    present = {m.group(1) for key in state if (m := re.fullmatch(r"quantize_(\w+)\.embedding\.weight", key))}
    for factors in (DUAL, TRIPLE):
        if present == set(factors):
            return factors
    raise CheckpointError(f"the checkpoint's quantizers {sorted(present)} are neither FQGAN-Dual {list(DUAL)} nor -Triple {list(TRIPLE)}")


def _training_args(args: Any) -> dict[str, Any]:
    return vars(args) if isinstance(args, argparse.Namespace) else args if isinstance(args, dict) else {}


def infer_config(state: dict[str, torch.Tensor], args: dict[str, Any] | None = None) -> FQGANConfig:
    """The ``FQGANConfig`` whose model has exactly these (official) tensors; loss weights from the training ``args``."""
    args = args or {}
    adapter = f"encoder.{head_name('vis')}.0."
    needed = ["encoder.conv_in.weight", "post_quant_conv.weight", adapter + "positional_embedding"]
    missing = [key for key in needed if key not in state]
    if missing:
        raise CheckpointError(f"not an FQGAN checkpoint: no {missing}")
    factors = _factors(state)
    ch = state["encoder.conv_in.weight"].shape[0]
    levels = numbered(state, r"encoder\.conv_blocks\.(\d+)\.")
    ch_mult = tuple(state[f"encoder.conv_blocks.{level}.res.0.conv2.weight"].shape[0] // ch for level in levels)
    positions = state[adapter + "positional_embedding"].shape[0]
    grid = math.isqrt(positions)
    if grid * grid != positions:
        raise CheckpointError(f"the adapters' positional embedding has {positions} rows, not a square token grid")
    codebook = state["quantize_vis.embedding.weight"]
    quantizer = fqgan_quantizer(len(factors), codebook.shape[0])
    quantizer.update(beta=float(args.get("commit_loss_beta", 0.25)), entropy_weight=float(args.get("entropy_loss_ratio", 0.03)))
    disentanglement = float(args.get("disentanglement_ratio", 0.1)) if args.get("with_disentanglement", True) else 0.0
    return FQGANConfig(
        ch=ch,
        ch_mult=ch_mult,
        num_res_blocks=len(numbered(state, r"encoder\.conv_blocks\.0\.res\.(\d+)\.")),
        z_channels=state["post_quant_conv.weight"].shape[0],
        resolution=grid * 2 ** (len(levels) - 1),
        factors=factors,
        embed_dim=codebook.shape[1],
        adapter_layers=len(numbered(state, re.escape(adapter) + r"transformer\.(\d+)\.")),
        adapter_heads=RELEASED_HEADS,
        in_channels=state["encoder.conv_in.weight"].shape[1],
        quantizer=quantizer,
        loss_weights={"disentanglement": disentanglement},
    )


def _cross_check(args: dict[str, Any], config: FQGANConfig) -> None:
    """Refuse a file whose training ``args`` contradict what its tensors say."""
    levels = {"VQ-16": (1, 1, 2, 2, 4), "VQ-8": (1, 2, 2, 4)}
    expected = {
        "codebook_size": config.quantizer["codebook_size"],
        "codebook_embed_dim": config.embed_dim,
        "image_size": config.resolution,
    }
    clashes = [f"{name}={args[name]!r} (tensors: {value!r})" for name, value in expected.items() if args.get(name, value) != value]
    if args.get("vq_model") in levels and levels[args["vq_model"]] != config.ch_mult:
        clashes.append(f"vq_model={args['vq_model']!r} (tensors: ch_mult {config.ch_mult})")
    if clashes:
        raise CheckpointError(f"the checkpoint's training args contradict its tensors: {', '.join(clashes)}")


def _renamed(state: dict[str, torch.Tensor], factors: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Official -> zoo names, without the training-only tensors (which are logged)."""
    codebooks = {f"quantize_{factor}.embedding.weight": f"quantizer.quantizers.{index}.codebook" for index, factor in enumerate(factors)}
    training_only = {key for key in state if key.startswith(TRAINING_ONLY) or key.endswith(USAGE_WINDOW)}
    dropped = Counter(f"*{USAGE_WINDOW}" if key.endswith(USAGE_WINDOW) else key.split(".")[0] + ".*" for key in training_only)
    if dropped:
        log.info("dropped the training-only tensors: %s", ", ".join(f"{name} ({count})" for name, count in sorted(dropped.items())))
    return {codebooks.get(key, key): value for key, value in state.items() if key not in training_only}


def convert(checkpoint: dict[str, Any], config: dict[str, Any] | None, ema: bool | None) -> FQGAN:
    if config is not None:
        raise ValueError("FQGAN has no official YAML config: the architecture is read from the checkpoint itself")
    source, state = _weights(checkpoint, ema)
    log.info("converting the checkpoint's %r weights", source)
    args = _training_args(checkpoint.get("args"))
    arch = infer_config(state, args)
    _cross_check(args, arch)
    return load_converted(FQGAN(arch), _renamed(state, arch.factors), f"FQGAN checkpoint ({source!r} weights)")


register_converter(Converter(
    family="fqgan",
    description="showlab/FQGAN Dual/Triple VQModel checkpoints (.pt: ema, else model; needs --trust-pickle for the pickled args)",
    detect=detect,
    convert=convert,
))
