"""What every family's converter does alike: find the weights in the container, read numbered keys, drop
the training-only tensors, pick Lightning ``LitEma`` weights, and load strictly."""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

import torch
from torch import nn

from ..hub import CheckpointError, load_state_dict_checked


def container(checkpoint: dict[str, Any], names: tuple[str, ...] = ("state_dict",)) -> Any:
    """The entry that holds the weights: the first of ``names`` present, else the checkpoint itself."""
    return next((checkpoint[name] for name in names if name in checkpoint), checkpoint)


def weights_in(checkpoint: dict[str, Any], names: tuple[str, ...] = ("state_dict",)) -> dict[str, torch.Tensor]:
    """:func:`container`, refused unless it is a dict of weights."""
    state = container(checkpoint, names)
    if not isinstance(state, dict):
        raise CheckpointError(f"the checkpoint's {' / '.join(repr(n) for n in names)} entry is not a dict of tensors")
    return state


def numbered(state: dict[str, torch.Tensor], pattern: str) -> list[int]:
    """The sorted distinct integers that ``pattern``'s one group matches at the start of the keys."""
    return sorted({int(m.group(1)) for key in state if (m := re.match(pattern, key))})


def drop_training_weights(state: dict[str, torch.Tensor], prefixes: tuple[str, ...], logger: logging.Logger) -> dict[str, torch.Tensor]:
    """``state`` without the keys under ``prefixes`` (losses, discriminators), naming on ``logger`` what was dropped."""
    dropped = sorted({key.split(".")[0] for key in state if key.startswith(prefixes)})
    if dropped:
        logger.info("dropped the training-only weights under: %s", ", ".join(f"{prefix}.*" for prefix in dropped))
    return {key: value for key, value in state.items() if not key.startswith(prefixes)}


def load_converted(model: nn.Module, weights: dict[str, torch.Tensor], source: str) -> nn.Module:
    """Load renamed official ``weights`` strictly into ``model`` (in eval mode); the quantizer's statistics
    buffers (also those of grouped sub-quantizers), which official files do not hold, keep their fresh values."""
    codebook = model.quantizer.codebook_state()
    statistics = {f"quantizer.{name}": value for name, value in model.quantizer.state_dict().items() if name not in codebook}
    load_state_dict_checked(model, {**statistics, **weights}, source)
    return model.eval()


EMA_PREFIX = "model_ema."
LIGHTNING_TRAINING_ONLY = ("loss.", EMA_PREFIX)
"""What a Lightning ``VQModel`` state dict holds besides the model: the loss (discriminator, LPIPS) and the EMA."""


def uses_ema(state: dict[str, torch.Tensor], ema: bool | None, logger: logging.Logger) -> bool:
    """Whether to convert the EMA weights (``model_ema.*``): ``ema`` if given (refused when there are none),
    else whenever the checkpoint has them."""
    has_ema = any(key.startswith(EMA_PREFIX) for key in state)
    if ema and not has_ema:
        raise CheckpointError("ema=True, but the checkpoint has no EMA weights (model_ema.*): convert with ema=False (--no-ema)")
    if ema is None and not has_ema:
        logger.info("the checkpoint has no EMA weights (model_ema.*): using the live weights")
    return has_ema if ema is None else ema


def ema_keys(
    state: dict[str, torch.Tensor], model: nn.Module, official_names: dict[str, str] | None = None, skip: tuple[str, ...] = ()
) -> dict[str, str]:
    """Zoo name -> ``model_ema.<official name without dots>`` (``LitEma``'s naming) for every trainable parameter
    of ``model`` not under the ``skip`` prefixes; ``official_names`` maps the zoo names that differ."""
    official_names = official_names or {}
    keys = {
        name: EMA_PREFIX + official_names.get(name, name).replace(".", "")
        for name, parameter in model.named_parameters()
        if parameter.requires_grad and not name.startswith(skip)
    }
    missing = sorted(key for key in keys.values() if key not in state)
    if missing:
        raise CheckpointError(
            f"the checkpoint's EMA lacks {len(missing)} trainable weight(s): {missing[:8]}; convert with ema=False (--no-ema)"
        )
    return keys


def log_dropped(state: dict[str, torch.Tensor], used: set[str], logger: logging.Logger) -> None:
    """Name on ``logger`` the training-only tensors (``loss.*`` by module, unused ``model_ema.*``) left out, with counts."""
    groups = Counter(
        ".".join(key.split(".")[:2]) + ".*" if key.startswith("loss.") else EMA_PREFIX + "*"
        for key in state
        if key.startswith(LIGHTNING_TRAINING_ONLY) and key not in used
    )
    if groups:
        logger.info("dropped the training-only tensors: %s", ", ".join(f"{prefix} ({count})" for prefix, count in sorted(groups.items())))


def lightning_model_weights(
    state: dict[str, torch.Tensor], averaged_keys: dict[str, str], zoo_names: dict[str, str] | None = None
) -> dict[str, torch.Tensor]:
    """A Lightning ``VQModel`` state dict as the zoo's weights: the live model weights (renamed by ``zoo_names``),
    with the EMA copies of ``averaged_keys`` (zoo name -> EMA key, empty for the live weights) in their place."""
    zoo_names = zoo_names or {}
    live = {zoo_names.get(key, key): value for key, value in state.items() if not key.startswith(LIGHTNING_TRAINING_ONLY)}
    return {**live, **{name: state[key] for name, key in averaged_keys.items()}}


def magvit2_shape(state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The Open-MAGVIT2 encoder's shape read from its tensors (``encoder.*`` in the official names): ``ch``,
    ``ch_mult``, ``num_res_blocks``, ``z_channels`` and ``in_channels`` (SimVQ and WeTok share the encoder)."""
    conv_in = state["encoder.conv_in.weight"]
    ch = conv_in.shape[0]
    return {
        "ch": ch,
        "ch_mult": tuple(state[f"encoder.down.{level}.block.0.conv2.weight"].shape[0] // ch for level in numbered(state, r"encoder\.down\.(\d+)\.")),
        "num_res_blocks": len(numbered(state, r"encoder\.down\.0\.block\.(\d+)\.")),
        "z_channels": state["encoder.conv_out.weight"].shape[0],
        "in_channels": conv_in.shape[1],
    }
