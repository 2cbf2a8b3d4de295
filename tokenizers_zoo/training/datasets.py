"""Recipe ``data`` entries -> training and validation datasets, one builder per kind of data.

```json
"data": {"type": "images", "size": 256, "crop": 256, "random_crop": true, "hflip": true,
         "exclude": ["*/000?.jpg"], "val": {"include": ["*/000?.jpg"]}}
"data": {"type": "audio", "segment": 24000, "val": {"include": ["test/*"]}}
```
``exclude`` drops files (patterns over paths relative to the data folder); ``val.include`` moves the
matching files into the validation split. A separate validation folder can be given instead. Validation
data is never augmented (centre crops, no flips, clips from their start).
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Callable

import torch

from ..config import ConfigError, check_options
from ..data import AudioFolder, ImageFolder, list_audio, list_images

Datasets = tuple[torch.utils.data.Dataset, torch.utils.data.Dataset | None]

_BUILDERS: dict[str, tuple[str, Callable[..., Datasets]]] = {}


def register_data(kind: str, modality: str):
    """Decorator: ``builder(options, root, model, val_root) -> (train, val)`` for ``{"type": kind}``, for
    models of ``modality``."""

    def register(builder):
        _BUILDERS[kind] = (modality, builder)
        return builder

    return register


def build_datasets(spec: dict[str, Any], root: str | Path, model: Any, val_root: str | Path | None = None) -> Datasets:
    """The training dataset and the validation dataset (or ``None``) a recipe's ``data`` entry describes."""
    options = dict(spec)
    kind = options.pop("type", "images")
    if kind not in _BUILDERS:
        raise ConfigError(f"unknown data type {kind!r}; known: {sorted(_BUILDERS)}")
    modality, builder = _BUILDERS[kind]
    if model.input_spec.modality != modality:
        raise ConfigError(f"data of type {kind!r} is for {modality} models; this model takes {model.input_spec.modality}")
    val = options.get("val") or {}
    if not isinstance(val, dict) or set(val) - {"include"}:
        raise ConfigError(f"data 'val' may only hold 'include' (patterns of validation files), got {val!r}")
    return builder(options, Path(root), model, None if val_root is None else Path(val_root))


def split_files(files: list[Path], root: Path, exclude: list[str], val_include: list[str] | None) -> tuple[list[Path], list[Path]]:
    """(training files, validation files) by patterns over the paths relative to ``root``."""
    def matches(path: Path, patterns: list[str]) -> bool:
        name = path.relative_to(root).as_posix()
        return any(fnmatch.fnmatch(name, p) for p in patterns)

    val = [f for f in files if val_include and matches(f, val_include)]
    train = [f for f in files if not matches(f, exclude) and f not in set(val)]
    if not train:
        raise FileNotFoundError(f"every file under {root} is excluded ({exclude}) or in the validation split")
    if val_include and not val:
        raise FileNotFoundError(f"no file under {root} matches the validation patterns {val_include}")
    return train, val


@register_data("images", "image")
def _images(options: dict[str, Any], root: Path, model: Any, val_root: Path | None) -> Datasets:
    exclude, val = options.pop("exclude", []), options.pop("val", None)
    options = check_options(ImageFolder, options, skip=("source",))
    train, val_files = split_files(list_images(root), root, exclude, (val or {}).get("include"))
    if val_root is not None:
        val_files = list_images(val_root)
    augment_off = {**options, "random_crop": False, "hflip": False}
    return ImageFolder(train, **options), ImageFolder(val_files, **augment_off) if val_files else None


@register_data("audio", "audio")
def _audio(options: dict[str, Any], root: Path, model: Any, val_root: Path | None) -> Datasets:
    exclude, val = options.pop("exclude", []), options.pop("val", None)
    options = check_options(AudioFolder, options, skip=("source", "sample_rate"))
    rate = model.input_spec.sample_rate
    train, val_files = split_files(list_audio(root), root, exclude, (val or {}).get("include"))
    if val_root is not None:
        val_files = list_audio(val_root)
    train_set = AudioFolder(train, rate, **options)
    return train_set, AudioFolder(val_files, rate, **{**options, "random_crop": False}) if val_files else None
