"""Image tokenizers: ``[B, C, H, W]`` in, indices ``[B, h, w]`` (or ``[B, G, h, w]``) out."""

from __future__ import annotations

from typing import ClassVar

from .tokenizer import Tokenizer


class ImageTokenizer(Tokenizer):
    """Base of the image families. Subclasses provide ``input_spec`` as an :class:`ImageSpec`."""

    latent_ndim: ClassVar[int] = 4
