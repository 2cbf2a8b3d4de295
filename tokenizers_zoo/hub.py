"""Saving, loading and publishing tokenizers: ``config.json`` + ``model.safetensors`` + ``README.md``.

Loading is strict: a checkpoint that does not match the model raises :class:`CheckpointError` listing the
missing, unexpected and mis-shaped keys. Sources: a local folder, a registered model name, or a Hugging
Face Hub repo id (``org/name``, optional ``@revision``), which also resolves from the local HF cache
when ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
import zipfile
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HFValidationError, LocalEntryNotFoundError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import registry
from .atomic import atomic_folder
from .cards import render_model_card
from .config import ConfigError, read_json
from .version import __version__

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "README.md"
_META_KEYS = ("architecture", "model_name", "_class_name", "_zoo_version")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_LISTED_KEYS = 12


class CheckpointError(ValueError):
    """A checkpoint that is corrupt or does not match the model it is loaded into."""


# ---------------------------------------------------------------- loading


def load_pretrained(
    source: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    strict: bool = True,
    device: str | torch.device = "cpu",
) -> Any:
    """A tokenizer with its weights from a folder, a registered name or a Hub repo id, in eval mode.

    ``model.revision`` records where the weights came from: the Hub commit, or the zoo version for
    bundled weights (``None`` for a local folder).
    """
    folder, model_name, resolved_revision = _resolve(source, revision, cache_dir, local_files_only, token)
    meta, values = _split_config(read_json(folder / CONFIG_NAME), folder)
    cls = registry.architecture_class(meta["architecture"])
    model = cls(cls.config_class.from_dict(values))
    model.model_name = model_name or meta.get("model_name")
    model.revision = resolved_revision
    load_state_dict_checked(model, read_checkpoint(folder / WEIGHTS_NAME, device), f"{source}", strict)
    return model.to(device).eval()


def load_weights(model: torch.nn.Module, name: str) -> None:
    """Load the released weights of registered model ``name`` into ``model`` (strict)."""
    folder, _, model.revision = _resolve(name, None, None, False, None)
    load_state_dict_checked(model, read_checkpoint(folder / WEIGHTS_NAME), name, strict=True)


def read_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, with a clear error when it is missing or corrupt."""
    if not path.is_file():
        raise FileNotFoundError(f"no weights file {path}")
    try:
        return load_file(path, device=str(device))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file (corrupt or truncated?): {error}") from error


def read_weights(path: str | os.PathLike, what: str = "weights") -> dict[str, torch.Tensor]:
    """A flat state dict from a safetensors file, or from a PyTorch file read with ``weights_only=True``
    (a file that needs more unpickling is refused). ``what`` names the file's role in errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} file {path}")
    if path.suffix == ".safetensors":
        return read_checkpoint(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as error:
        raise CheckpointError(f"{path} ({what}) is not a state dict readable with weights_only=True: {error}") from error
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} ({what}) must hold a state dict of tensors, got {type(state).__name__}")
    return state


def load_state_dict_checked(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str, strict: bool = True) -> None:
    """``model.load_state_dict`` that names every missing, unexpected, mis-shaped and mis-typed key and every
    tensor holding NaN or infinite values (nothing is cast: an int32 codebook is not a float32 one).

    ``strict=True`` (default) raises :class:`CheckpointError` on any problem; ``strict=False`` loads the
    keys that fit and warns about the rest.
    """
    expected = model.state_dict()
    common = sorted(expected.keys() & state.keys())
    problems = {
        "missing keys": sorted(expected.keys() - state.keys()),
        "unexpected keys": sorted(state.keys() - expected.keys()),
        "mis-shaped keys": [
            f"{key}: checkpoint {list(state[key].shape)} vs model {list(expected[key].shape)}"
            for key in common if state[key].shape != expected[key].shape
        ],
        "mis-typed keys": [
            f"{key}: checkpoint {state[key].dtype} vs model {expected[key].dtype}"
            for key in common if state[key].dtype != expected[key].dtype
        ],
        "non-finite tensors (NaN or inf)": [
            key for key in common if state[key].is_floating_point() and not bool(torch.isfinite(state[key]).all())
        ],
    }
    if any(problems.values()):
        report = _mismatch_report(type(model).__name__, source, problems)
        if strict:
            raise CheckpointError(report)
        warnings.warn(report + "\n(strict=False: the keys that fit were loaded)", stacklevel=3)
    bad = set(problems["unexpected keys"]) | {m.split(":")[0] for title in ("mis-shaped keys", "mis-typed keys") for m in problems[title]}
    model.load_state_dict({k: v for k, v in state.items() if k not in bad}, strict=False)


def _mismatch_report(class_name: str, source: str, problems: dict[str, list[str]]) -> str:
    lines = [f"checkpoint {source} does not match {class_name}:"]
    for title, keys in problems.items():
        if keys:
            shown = ", ".join(keys[:_LISTED_KEYS])
            more = f", ... and {len(keys) - _LISTED_KEYS} more" if len(keys) > _LISTED_KEYS else ""
            lines.append(f"  {title} ({len(keys)}): {shown}{more}")
    return "\n".join(lines)


def _split_config(values: dict[str, Any], folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    if "architecture" not in values:
        raise ConfigError(f"{folder / CONFIG_NAME} has no 'architecture' field: not a tokenizers_zoo config")
    meta = {key: values.pop(key) for key in _META_KEYS if key in values}
    return meta, values


def _resolve(source, revision, cache_dir, local_files_only, token) -> tuple[Path, str | None, str | None]:
    """The folder holding config.json and model.safetensors for ``source``, its registry name if any, and
    the revision of the weights (Hub commit, or ``bundled@<zoo version>``)."""
    source = os.fspath(source)
    if Path(source).is_dir():
        return _checked_folder(Path(source)), None, None
    if registry.is_model(source):
        weights = registry.model_info(source).weights
        if weights is None:
            raise FileNotFoundError(f"{source} has no released weights; build it with create_model({source!r})")
        if weights.startswith("bundled:"):
            return _checked_folder(bundled_folder(weights.removeprefix("bundled:"))), source, f"bundled@{__version__}"
        folder, _, commit = _resolve(weights.removeprefix("hf-hub:"), revision, cache_dir, local_files_only, token)
        return folder, source, commit
    repo_id, _, pinned = source.removeprefix("hf-hub:").partition("@")
    if not _HUB_ID.match(repo_id):
        raise FileNotFoundError(f"{source!r} is not a folder, a registered model, or a Hub repo id (org/name)")
    folder = _download(repo_id, revision or pinned or None, cache_dir, local_files_only, token)
    return folder, None, folder.name  # the cache's snapshot folder is named by the commit


def bundled_folder(name: str) -> Path:
    """The folder of weights shipped inside the package under ``name``."""
    return Path(str(resources.files("tokenizers_zoo.weights") / name))


def _checked_folder(folder: Path) -> Path:
    for name in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder} has no {name}: not a saved tokenizer folder")
    return folder


def _download(repo_id, revision, cache_dir, local_files_only, token) -> Path:
    paths = []
    for name in (CONFIG_NAME, WEIGHTS_NAME):  # config first: the Hub counts downloads on config.json
        try:
            paths.append(
                Path(
                    hf_hub_download(
                        repo_id,
                        name,
                        revision=revision,
                        cache_dir=cache_dir,
                        local_files_only=local_files_only,
                        token=token,
                        library_name="tokenizers-zoo",
                        library_version=__version__,
                    )
                )
            )
        except LocalEntryNotFoundError as error:
            raise FileNotFoundError(
                f"{name} of Hub repo {repo_id} (revision {revision or 'main'}) is not in the local Hugging Face "
                f"cache and cannot be downloaded (offline mode or no network): {error}"
            ) from error
        except (OSError, EntryNotFoundError, HFValidationError) as error:
            raise FileNotFoundError(f"cannot fetch {name} of Hub repo {repo_id} (revision {revision or 'main'}): {error}") from error
    return paths[0].parent


# ---------------------------------------------------------------- saving and publishing


def save_pretrained(model: torch.nn.Module, directory: str | os.PathLike) -> Path:
    """Write ``config.json``, ``model.safetensors`` and a ``README.md`` model card as the folder ``directory``.

    The folder is written beside its destination and swapped in as a whole, so a reader (or a crash at
    any point) sees the old model or the new one, never new config with old weights. An existing folder
    must hold only a saved model: anything else in it would be lost with the swap, so it is refused.
    """
    directory = Path(directory)
    if directory.is_dir():
        foreign = sorted(p.name for p in directory.iterdir() if p.name not in (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME))
        if foreign:
            raise FileExistsError(
                f"{directory} holds files that are not part of a saved model ({', '.join(foreign[:5])}); "
                "save_pretrained replaces the whole folder: choose a new or empty folder"
            )
    with atomic_folder(directory) as staging:
        (staging / CONFIG_NAME).write_text(json.dumps(config_json(model), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
        save_file(state, staging / WEIGHTS_NAME, metadata={"format": "pt"})  # one key: safetensors orders metadata arbitrarily
        (staging / CARD_NAME).write_text(render_model_card(model), encoding="utf-8")
    return directory


def config_json(model: torch.nn.Module) -> dict[str, Any]:
    """What ``config.json`` holds: the config fields plus the architecture, model name and versions."""
    return {
        **model.config.to_dict(),
        "architecture": model.architecture,
        "model_name": model.model_name,
        "_class_name": type(model).__name__,
        "_zoo_version": __version__,
    }


def push_to_hub(
    model: torch.nn.Module,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    commit_message: str = "Upload tokenizer with tokenizers_zoo",
    api: HfApi | None = None,
):
    """Create ``repo_id`` if needed and upload exactly the folder :func:`save_pretrained` writes."""
    api = api or HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True, token=token)
    with tempfile.TemporaryDirectory() as folder:
        save_pretrained(model, folder)
        return api.upload_folder(
            repo_id=repo_id, folder_path=folder, revision=revision, commit_message=commit_message, token=token
        )
