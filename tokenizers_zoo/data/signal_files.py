"""How the command line reads and writes each modality's signals (images now; audio and graphs plug in)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable

import torch
from PIL import Image

from .images import IMAGE_SUFFIXES, image_size, list_images, load_image, save_image


@dataclass(frozen=True)
class SignalFiles:
    """One modality's files: which suffixes, how to find, read and write them, and how to group them.

    ``read(path, model, options)`` returns one item's signal (without the batch axis); ``group_key(path,
    options)`` tells which files can share a batch, reading as little as possible; ``write(signal, path,
    model)`` writes one item; ``output_size(indices, model)`` is the number of samples a decode of one
    item's indices produces (bounded before any work).
    """

    suffixes: tuple[str, ...]
    output_suffix: str
    list: Callable[[Path], list[Path]]
    read: Callable[[Path, Any, dict], torch.Tensor]
    group_key: Callable[[Path, dict], Hashable]
    write: Callable[[torch.Tensor, Path, Any], None]
    output_size: Callable[[torch.Tensor, Any], int]
    max_output_size: Callable[[], int]


SIGNAL_FILES: dict[str, SignalFiles] = {}


def signal_files(modality: str) -> SignalFiles:
    if modality not in SIGNAL_FILES:
        raise ValueError(f"the command line does not read or write {modality} files yet; use the Python API")
    return SIGNAL_FILES[modality]


def _image_key(path: Path, options: dict) -> Hashable:
    return options.get("size") or image_size(path)


SIGNAL_FILES["image"] = SignalFiles(
    suffixes=IMAGE_SUFFIXES,
    output_suffix=".png",
    list=list_images,
    read=lambda path, model, options: load_image(path, options.get("size")),
    group_key=_image_key,
    write=lambda signal, path, model: save_image(signal, path),
    output_size=lambda indices, model: indices.shape[-2] * indices.shape[-1] * model.input_spec.size_multiple**2,
    max_output_size=lambda: Image.MAX_IMAGE_PIXELS or 2**62,
)
