"""Image files <-> tensors in [-1, 1], and a dataset over a folder of images."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from ..atomic import atomic_write
from .folders import list_files

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")

# Pillow modes that convert("RGB") maps to 8-bit RGB correctly.
_RGB_MODES = frozenset({"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"})
_16_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted; an error when there are none."""
    return list_files(folder, IMAGE_SUFFIXES, "images")


def load_image(path: str | os.PathLike, size: int | None = None) -> torch.Tensor:
    """RGB image ``[3, H, W]`` float32 in [-1, 1]. ``size``: resize the shorter side to it, then centre-crop square.

    8-bit images go through Pillow's RGB conversion; 16-bit grayscale (scaled by 1/65535) and float images with
    values in [0, 1] keep their precision and are replicated to 3 channels.
    """
    path = Path(path)
    image = _read(path, size)
    return image if size is None else _crop(image, size, path)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file, read from its header without decoding the pixels."""
    path = Path(path)
    with _reading(path), Image.open(path) as image:
        return image.size


def save_image(image: torch.Tensor, path: str | os.PathLike) -> None:
    """Write ``[3, H, W]`` in [-1, 1] (clamped) as an 8-bit image; the format follows the suffix."""
    if image.ndim != 3 or image.shape[0] != 3:
        raise ValueError(f"expected an image [3, H, W], got shape {tuple(image.shape)}")
    pixels = ((image.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    array = pixels.permute(1, 2, 0).numpy()
    atomic_write(path, lambda temporary: Image.fromarray(array).save(temporary))


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """Turn Pillow's errors while reading ``path`` into messages that name the file."""
    if not path.is_file():
        raise FileNotFoundError(f"no image file {path}")
    try:
        yield
    except Image.DecompressionBombError as error:
        raise ValueError(
            f"{path} is too large to decode safely ({error}); Pillow's limit is PIL.Image.MAX_IMAGE_PIXELS = "
            f"{Image.MAX_IMAGE_PIXELS} pixels (refused above twice that): raise it only for files you trust"
        ) from error
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"{path} is not a readable image: {error}") from error


def _read(path: Path, size: int | None) -> torch.Tensor:
    """``[3, H, W]`` in [-1, 1], the shorter side resized to ``size`` when given (no crop)."""
    with _reading(path), Image.open(path) as image:
        if image.mode in _RGB_MODES:
            rgb = np.array(_resize(image.convert("RGB"), size), dtype=np.uint8)
            return torch.from_numpy(rgb).permute(2, 0, 1).float() / 127.5 - 1.0
        gray = _resize(Image.fromarray(_gray_levels(image, path)), size)  # Pillow mode F: float32 all the way
    levels = torch.from_numpy(np.array(gray, dtype=np.float32)).clamp(0, 1)
    return (levels * 2 - 1).repeat(3, 1, 1)


def _gray_levels(image: Image.Image, path: Path) -> np.ndarray:
    """A high-bit-depth grayscale image as float32 ``[H, W]`` in [0, 1]; an error for what has no defined scale."""
    if image.mode in _16_BIT_MODES or (image.mode == "I" and image.format == "PNG"):  # older Pillow: 16-bit PNG is I
        return np.asarray(image).astype(np.float32) / 65535
    if image.mode == "I":
        raise ValueError(
            f"{path} is a 32-bit integer image (Pillow mode I), which has no defined white level; "
            "convert it to 8- or 16-bit"
        )
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float32)
        if not np.isfinite(values).all():
            raise ValueError(f"{path} is a float image with non-finite values (NaN or infinity)")
        low, high = values.min(), values.max()
        if low < 0 or high > 1:
            raise ValueError(f"{path} is a float image with values from {low:g} to {high:g}; expected values in [0, 1]")
        return values
    raise ValueError(f"{path} has Pillow mode {image.mode}, which this loader does not read; convert it to 8-bit RGB")


def _resize(image: Image.Image, size: int | None) -> Image.Image:
    """Bicubic resize so the shorter side is ``size`` (both sides at least ``size``); unchanged for None."""
    if size is None:
        return image
    scale = size / min(image.size)
    return image.resize((max(size, round(image.width * scale)), max(size, round(image.height * scale))), Image.BICUBIC)


def _crop(image: torch.Tensor, side: int, path: Path, random: bool = False) -> torch.Tensor:
    """A ``side`` x ``side`` square of ``image``: centred, or at a uniformly random position."""
    height, width = image.shape[-2:]
    if min(height, width) < side:
        raise ValueError(f"{path} is {width}x{height} (after any resize), smaller than the {side}x{side} crop")
    if random:
        top, left = int(torch.randint(height - side + 1, ())), int(torch.randint(width - side + 1, ()))
    else:
        top, left = (height - side) // 2, (width - side) // 2
    return image[:, top : top + side, left : left + side].clone()


class ImageFolder(torch.utils.data.Dataset):
    """Images under a folder (or an explicit file list) as ``[3, H, W]`` tensors in [-1, 1].

    ``size`` resizes the shorter side (bicubic). ``crop`` (default ``size``) cuts a square of that side: centred, or
    at a uniformly random position with ``random_crop=True``; without ``size`` it crops the original resolution.
    ``hflip=True`` flips each image horizontally with probability 1/2. Random draws use torch's global RNG.
    """

    def __init__(
        self,
        source: str | os.PathLike | list[Path],
        size: int | None = None,
        crop: int | None = None,
        random_crop: bool = False,
        hflip: bool = False,
    ):
        crop = size if crop is None else crop
        if crop is not None and size is not None and crop > size:
            raise ValueError(f"crop {crop} is larger than size {size}, the shorter side of the resized images")
        if random_crop and crop is None:
            raise ValueError("random_crop needs a crop (or size) to cut")
        self.files = list(source) if isinstance(source, list) else list_images(source)
        self.size, self.crop, self.random_crop, self.hflip = size, crop, random_crop, hflip

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        path = Path(self.files[index])
        image = _read(path, self.size)
        if self.crop is not None:
            image = _crop(image, self.crop, path, self.random_crop)
        if self.hflip and torch.rand(()) < 0.5:
            image = image.flip(-1)
        return image
