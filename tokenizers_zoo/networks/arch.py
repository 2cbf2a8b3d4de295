"""The shape every convolutional encoder/decoder pair shares: width, levels, blocks, latent channels."""

from __future__ import annotations

from dataclasses import dataclass

from ..config import Config, ConfigError, check_positive


@dataclass
class ConvArch(Config):
    """``ch`` channels times ``ch_mult[l]`` at level l (one downsampling between levels), ``num_res_blocks``
    per level, ``z_channels`` latent features, GroupNorm with ``norm_groups`` groups; ``resolution`` is the
    training image size. Defaults are overridden by each backbone."""

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 2, 2, 4)
    num_res_blocks: int = 2
    resolution: int = 256
    z_channels: int = 256
    norm_groups: int = 32

    def validate(self) -> None:
        check_positive(self, "ch", "ch_mult", "num_res_blocks", "resolution", "z_channels", "norm_groups")
        if not self.ch_mult:
            raise ConfigError("ch_mult must list at least one level")
        widths = sorted({self.ch * m for m in self.ch_mult})
        if any(width % self.norm_groups for width in widths):
            raise ConfigError(f"every width {widths} must be a multiple of norm_groups={self.norm_groups}")
        super().validate()

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)
