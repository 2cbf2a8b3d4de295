"""Reading official checkpoints safely: tensors only, unless the user trusts the file."""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from ..hub import CheckpointError


def load_official_checkpoint(path: str | os.PathLike, trust_pickle: bool = False) -> dict[str, Any]:
    """The object an official ``.pth`` / ``.pt`` / ``.ckpt`` / ``.safetensors`` file holds, on the CPU.

    ``torch.load(weights_only=True)`` first. Files that also pickle Python objects (an ``argparse.Namespace``,
    Lightning hyper-parameters) load only with ``trust_pickle=True``, with a warning: unpickling can run code.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file {path}")
    if path.suffix == ".safetensors":
        try:
            return load_file(path)
        except (SafetensorError, OSError) as error:
            raise CheckpointError(f"{path} is not a readable safetensors file: {error}") from error
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if not trust_pickle:
            raise CheckpointError(
                f"{path} stores Python objects besides tensors ({str(error).splitlines()[0][:200]}); loading them runs "
                "pickle, which can execute code: pass trust_pickle=True (--trust-pickle) only for a file from a source you trust"
            ) from error
        warnings.warn(f"unpickling {path} in full (trust_pickle=True): only do this for files you trust", stacklevel=2)
        checkpoint = _load(path, weights_only=False)
    except (RuntimeError, EOFError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?): {error}") from error
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path} holds a {type(checkpoint).__name__}, not a dict of weights")
    return checkpoint


def _load(path: Path, weights_only: bool) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except (RuntimeError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as error:
        raise CheckpointError(f"{path} is not a readable PyTorch checkpoint (corrupt or truncated?): {error}") from error

