"""Image files <-> tensors in [-1, 1], and a dataset over a folder of images."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted; an error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"no images ({', '.join(IMAGE_SUFFIXES)}) under {folder}")
    return files


def load_image(path: str | os.PathLike, size: int | None = None) -> torch.Tensor:
    """RGB image ``[3, H, W]`` float32 in [-1, 1]. ``size``: resize the shorter side to it, then centre-crop square."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file {path}")
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path} is not a readable image: {error}") from error
    if size is not None:
        image = _resize_center_crop(image, size)
    pixels = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
    return pixels.float() / 127.5 - 1.0


def save_image(image: torch.Tensor, path: str | os.PathLike) -> None:
    """Write ``[3, H, W]`` in [-1, 1] (clamped) as an 8-bit image; the format follows the suffix."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected an image [3, H, W], got shape {tuple(image.shape)}")
    pixels = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        Image.fromarray(pixels.permute(1, 2, 0).numpy()).save(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def _resize_center_crop(image: Image.Image, size: int) -> Image.Image:
    scale = size / min(image.size)
    resized = image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.BICUBIC)
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    return resized.crop((left, top, left + size, top + size))


class ImageFolder(torch.utils.data.Dataset):
    """Images under a folder (or an explicit file list) as ``[3, size, size]`` tensors in [-1, 1].

    ``hflip=True`` flips each image horizontally with probability 1/2 (training augmentation).
    """

    def __init__(self, source: str | os.PathLike | list[Path], size: int | None = None, hflip: bool = False):
        self.files = list(source) if isinstance(source, list) else list_images(source)
        self.size, self.hflip = size, hflip

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        image = load_image(self.files[index], self.size)
        if self.hflip and torch.rand(()) < 0.5:
            image = image.flip(-1)
        return image
