"""The trainer's checkpoint folder, written and swapped in as a whole.

``checkpoint/`` holds ``model/`` (a ``from_pretrained`` folder), ``objective.safetensors`` (discriminator,
LeCAM statistics, ...), ``ema.safetensors`` (when the weight EMA is on) and ``trainer_state.pt`` (step,
both optimizers and schedulers, RNG states, best validation result). A crash while saving leaves the
previous checkpoint intact: never new weights beside an old optimizer state.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from .. import hub
from ..atomic import atomic_folder

MODEL_DIR = "model"
OBJECTIVE_FILE = "objective.safetensors"
EMA_FILE = "ema.safetensors"
STATE_FILE = "trainer_state.pt"


def save_checkpoint(
    folder: Path, model: nn.Module, objective: nn.Module, ema_state: dict[str, torch.Tensor] | None, state: dict[str, Any]
) -> None:
    """Write the whole checkpoint to ``folder`` (replacing any previous one in one step)."""
    with atomic_folder(folder) as staging:
        hub.save_pretrained(model, staging / MODEL_DIR)
        save_file(_tensors(objective.state_dict()), staging / OBJECTIVE_FILE)
        if ema_state is not None:
            save_file(_tensors(ema_state), staging / EMA_FILE)
        torch.save({**state, "rng": rng_state()}, staging / STATE_FILE)


def has_checkpoint(folder: Path) -> bool:
    return (folder / STATE_FILE).is_file()


def load_checkpoint(folder: Path, model: nn.Module, objective: nn.Module, device: torch.device) -> tuple[dict[str, torch.Tensor] | None, dict[str, Any]]:
    """Load model and objective weights (strictly), restore the RNG; returns the EMA state and the trainer state."""
    hub.load_state_dict_checked(model, hub.read_checkpoint(folder / MODEL_DIR / hub.WEIGHTS_NAME, device), str(folder / MODEL_DIR))
    hub.load_state_dict_checked(objective, hub.read_checkpoint(folder / OBJECTIVE_FILE, device), str(folder / OBJECTIVE_FILE))
    ema_state = load_file(folder / EMA_FILE, device=str(device)) if (folder / EMA_FILE).is_file() else None
    state = torch.load(folder / STATE_FILE, map_location="cpu", weights_only=True)
    restore_rng(state.pop("rng"))
    return ema_state, state


def rng_state() -> dict[str, Any]:
    """Every random generator a training step may draw from (torch CPU and CUDA, Python, NumPy)."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": random.getstate(),
        "numpy": _numpy_state(),
    }


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    random.setstate(state["python"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.numpy(), position, has_gauss, gauss))


def _numpy_state() -> tuple:
    """NumPy's global RNG state with its key array as a tensor (so ``weights_only`` loading reads it)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return kind, torch.from_numpy(keys.copy()), position, has_gauss, gauss


def _tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {key: value.detach().cpu().contiguous() for key, value in state.items()}
