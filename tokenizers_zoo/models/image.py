"""Image tokenizers: ``[B, C, H, W]`` in, indices ``[B, h, w]`` (or ``[B, G, h, w]``) out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..config import Config, check_positive
from ..metrics import SSIM_WINDOW, has_ssim, psnr, ssim
from ..networks.attention import max_attention_positions
from ..registry import ModelInfo, register_model
from ..specs import ImageSpec
from .tokenizer import Tokenizer


@dataclass
class ImageInput(Config):
    """The input fields of an image config, listed first among its bases (before ``TokenizerConfig``): images of
    ``in_channels`` in ``value_range``; the network shape it is mixed with gives ``downsample_factor`` and
    ``resolution``."""

    in_channels: int = 3
    value_range: tuple[float, float] = (-1.0, 1.0)

    def validate(self) -> None:
        check_positive(self, "in_channels")
        super().validate()

    def input_spec(self) -> ImageSpec:
        return ImageSpec(self.in_channels, self.value_range, self.downsample_factor, self.resolution)


class ImageTokenizer(Tokenizer):
    """Base of the image families. Subclasses provide ``input_spec`` as an :class:`ImageSpec` whose
    ``size_multiple`` is the downsampling factor (H / h)."""

    latent_ndim: ClassVar[int] = 4

    def validate_input(self, x: torch.Tensor, context: dict[str, Any]) -> None:
        self.input_spec.validate(x)
        super().validate_input(x, context)
        factor = self.input_spec.size_multiple
        self._check_attention_cost((x.shape[-2] // factor, x.shape[-1] // factor), f"a {x.shape[-2]}x{x.shape[-1]} image")

    def check_token_grid(self, indices: torch.Tensor) -> None:
        self._check_attention_cost(tuple(indices.shape[-2:]), f"a {indices.shape[-2]}x{indices.shape[-1]} token grid")

    def _check_attention_cost(self, latent_size: tuple[int, int], what: str) -> None:
        """Self-attention costs grow with the square of the positions: refuse up front what would not finish."""
        positions = max(self.encoder.attention_positions(latent_size), self.decoder.attention_positions(latent_size))
        limit = max_attention_positions()
        if positions > limit:
            raise ValueError(
                f"{what} needs self-attention over {positions:,} positions, above the limit of {limit:,} (time and "
                "memory grow with the square): tokenize tiles or a downscaled copy, or raise the limit with "
                "TOKENIZERS_ZOO_MAX_ATTENTION_POSITIONS"
            )

    def reconstruction_metrics(self, x, reconstruction, **context) -> dict[str, torch.Tensor]:
        """PSNR per item, and SSIM when torchmetrics is installed and the images fit its 11x11 window."""
        low, high = self.input_spec.value_range
        clamped = reconstruction.clamp(low, high)
        metrics = {"psnr": psnr(clamped, x, data_range=high - low)}
        if has_ssim() and min(x.shape[-2:]) >= SSIM_WINDOW:
            metrics["ssim"] = ssim(clamped, x, data_range=high - low)
        return metrics


def register_image_model(name: str, architecture: str, config: Any, **metadata: Any) -> ModelInfo:
    """Register ``config`` under ``name`` with the metadata the config itself determines (modality, codebook
    size, groups, tokens per image at its training resolution, input spec) plus ``metadata``."""
    side = config.resolution // config.downsample_factor
    info = ModelInfo(
        name=name,
        architecture=architecture,
        modality="image",
        codebook_size=config.quantizer["codebook_size"],
        num_groups=config.quantizer.get("groups", 1),
        tokens_per_item=side * side,
        input_spec=config.input_spec(),
        **metadata,
    )
    return register_model(info, config)
