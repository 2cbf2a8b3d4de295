"""What every family's converter does alike: find the weights in the container, read numbered keys, drop
the training-only tensors, and load strictly."""

from __future__ import annotations

import logging
import re
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
    buffers, which official files do not hold, keep their fresh values."""
    quantizer = model.quantizer
    statistics = {f"quantizer.{name}": value for name, value in quantizer.state_dict().items() if name in quantizer.statistics_buffers}
    load_state_dict_checked(model, {**statistics, **weights}, source)
    return model.eval()
