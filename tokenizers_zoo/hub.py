"""Saving, loading and publishing tokenizers: ``config.json`` + ``model.safetensors`` + ``README.md``.

Loading is strict: a checkpoint that does not match the model raises :class:`CheckpointError` listing the
missing, unexpected and mis-shaped keys. Sources: a local folder, a registered model name, or a Hugging
Face Hub repo id (``org/name``, optional ``@revision``), which also resolves from the local HF cache
when ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import EntryNotFoundError, HFValidationError, LocalEntryNotFoundError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__, registry
from .cards import render_model_card
from .config import ConfigError, read_json

if TYPE_CHECKING:
    from .models.tokenizer import Tokenizer

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
) -> "Tokenizer":
    """A tokenizer with its weights from a folder, a registered name or a Hub repo id, in eval mode."""
    folder, model_name = _resolve(source, revision, cache_dir, local_files_only, token)
    meta, values = _split_config(read_json(folder / CONFIG_NAME), folder)
    cls = registry.architecture_class(meta["architecture"])
    model = cls(cls.config_class.from_dict(values))
    model.model_name = model_name or meta.get("model_name")
    load_state_dict_checked(model, read_checkpoint(folder / WEIGHTS_NAME, device), f"{source}", strict)
    return model.to(device).eval()


def load_weights(model: "Tokenizer", name: str) -> None:
    """Load the released weights of registered model ``name`` into ``model`` (strict)."""
    folder, _ = _resolve(name, None, None, False, None)
    load_state_dict_checked(model, read_checkpoint(folder / WEIGHTS_NAME), name, strict=True)


def read_checkpoint(path: Path, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Tensors of a safetensors file, with a clear error when it is missing or corrupt."""
    if not path.is_file():
        raise FileNotFoundError(f"no weights file {path}")
    try:
        return load_file(path, device=str(device))
    except (SafetensorError, OSError, ValueError) as error:
        raise CheckpointError(f"{path} is not a readable safetensors file (corrupt or truncated?): {error}") from error


def load_state_dict_checked(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str, strict: bool = True) -> None:
    """``model.load_state_dict`` that names every missing, unexpected and mis-shaped key.

    ``strict=True`` (default) raises :class:`CheckpointError` on any mismatch; ``strict=False`` loads the
    keys that match and warns about the rest.
    """
    expected = model.state_dict()
    missing = sorted(expected.keys() - state.keys())
    unexpected = sorted(state.keys() - expected.keys())
    mismatched = sorted(
        f"{key}: checkpoint {list(state[key].shape)} vs model {list(expected[key].shape)}"
        for key in expected.keys() & state.keys()
        if state[key].shape != expected[key].shape
    )
    if missing or unexpected or mismatched:
        report = _mismatch_report(type(model).__name__, source, missing, unexpected, mismatched)
        if strict:
            raise CheckpointError(report)
        warnings.warn(report + "\n(strict=False: the matching keys were loaded)", stacklevel=3)
    bad = set(unexpected) | {m.split(":")[0] for m in mismatched}
    model.load_state_dict({k: v for k, v in state.items() if k not in bad}, strict=False)


def _mismatch_report(class_name, source, missing, unexpected, mismatched) -> str:
    lines = [f"checkpoint {source} does not match {class_name}:"]
    for title, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("mis-shaped keys", mismatched)):
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


def _resolve(source, revision, cache_dir, local_files_only, token) -> tuple[Path, str | None]:
    """The folder holding config.json and model.safetensors for ``source``, and its registry name if any."""
    source = os.fspath(source)
    if Path(source).is_dir():
        return _checked_folder(Path(source)), None
    if registry.is_model(source):
        weights = registry.model_info(source).weights
        if weights is None:
            raise FileNotFoundError(f"{source} has no released weights; build it with create_model({source!r})")
        if weights.startswith("bundled:"):
            return _checked_folder(bundled_folder(weights.removeprefix("bundled:"))), source
        folder, _ = _resolve(weights.removeprefix("hf-hub:"), revision, cache_dir, local_files_only, token)
        return folder, source
    repo_id, _, pinned = source.removeprefix("hf-hub:").partition("@")
    if not _HUB_ID.match(repo_id):
        raise FileNotFoundError(f"{source!r} is not a folder, a registered model, or a Hub repo id (org/name)")
    return _download(repo_id, revision or pinned or None, cache_dir, local_files_only, token), None


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


def save_pretrained(model: "Tokenizer", directory: str | os.PathLike) -> Path:
    """Write ``config.json``, ``model.safetensors`` and a ``README.md`` model card into ``directory``.

    Files are written to a temporary folder first and moved into place, so a failure never leaves a
    half-written file behind.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tokenizers_zoo-", dir=directory))
    try:
        (staging / CONFIG_NAME).write_text(json.dumps(config_json(model), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
        save_file(state, staging / WEIGHTS_NAME, metadata={"format": "pt"})  # one key: safetensors orders metadata arbitrarily
        (staging / CARD_NAME).write_text(render_model_card(model), encoding="utf-8")
        for name in (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME):
            os.replace(staging / name, directory / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def config_json(model: "Tokenizer") -> dict[str, Any]:
    """What ``config.json`` holds: the config fields plus the architecture, model name and versions."""
    return {
        **model.config.to_dict(),
        "architecture": model.architecture,
        "model_name": model.model_name,
        "_class_name": type(model).__name__,
        "_zoo_version": __version__,
    }


def push_to_hub(
    model: "Tokenizer",
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
