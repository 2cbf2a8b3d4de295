"""Waveform discriminators of the audio codecs (vocos / WavTokenizer / DAC), on mono ``[B, T]`` audio.

- ``multi_period``: HiFi-GAN's multi-period discriminator as vocos builds it: each period folds the
  waveform into ``[B, 1, T / p, p]`` (reflect-padded to a multiple of ``p`` when needed) and runs five
  weight-normed ``(5, 1)`` convs (stride 3 but the last) and a ``(3, 1)`` logit conv, LeakyReLU(0.1).
- ``multi_resolution``: UnivNet's multi-resolution discriminator as vocos builds it: magnitude STFT with a
  rectangular window, ``[B, 1, F, T']`` through five weight-normed 2-D convs and a logit conv.
- ``dac``: DAC's discriminator as WavTokenizer uses it: the input DC-removed and peak-normalised to 0.8,
  then DAC's period discriminators (always padded by ``p - T % p``) and its multi-band complex-STFT
  discriminators (real and imaginary parts as two channels, the frequency axis cut into bands, one conv
  stack per band, the bands joined before a shared logit conv). WavTokenizer takes the STFT with
  ``n_fft`` = the window length, hop ``n_fft // 4`` and a rectangular window; so does this.

Each returns a :class:`DiscriminatorOutput`: one logit map per sub-discriminator and the feature maps the
official feature-matching loss compares (vocos: every conv after the first, plus the logit map; DAC:
every conv, not the logit map). Widths are options so that tiny ones train on a CPU; the defaults are the
official ones. Bandwidth conditioning (vocos's ``num_embeddings``) is not built: the zoo trains one bandwidth.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from .discriminators import DiscriminatorOutput, register_discriminator

PERIODS = (2, 3, 5, 7, 11)
PERIOD_CHANNELS = (32, 128, 512, 1024, 1024)
RESOLUTIONS = ((1024, 256, 1024), (2048, 512, 2048), (512, 128, 512))
"""vocos / WavTokenizer (n_fft, hop, window) of the multi-resolution discriminator."""
FFT_SIZES = (2048, 1024, 512)
BANDS = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))
"""DAC's frequency bands, as fractions of the ``n_fft // 2 + 1`` bins."""
SLOPE = 0.1


class PeriodDiscriminator(nn.Module):
    """One period ``p``: ``[B, T]`` -> ``[B, 1, ceil(T / p), p]`` -> strided ``(5, 1)`` convs -> logits.

    ``dac`` selects DAC's variant: always pad ``p - T % p`` samples, and feature-match every conv output
    (vocos pads only a partial period and feature-matches the convs after the first plus the logit map).
    """

    def __init__(self, period: int, channels: Sequence[int] = PERIOD_CHANNELS, dac: bool = False):
        super().__init__()
        if period < 1 or not channels or min(channels) < 1:
            raise ValueError(f"a period discriminator needs a period >= 1 and positive widths, got {period} and {channels}")
        self.period, self.dac = period, dac
        widths = [1, *channels]
        strides = [3] * (len(channels) - 1) + [1]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(a, b, (5, 1), (s, 1), padding=(2, 0))) for a, b, s in zip(widths, widths[1:], strides)
        )
        self.conv_post = weight_norm(nn.Conv2d(widths[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        pad = self.period - audio.shape[-1] % self.period
        if self.dac or pad < self.period:
            audio = F.pad(audio[:, None], (0, pad), mode="reflect")[:, 0]
        x = audio.reshape(audio.shape[0], 1, -1, self.period)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), SLOPE)
            features.append(x)
        logits = self.conv_post(x)
        return logits, features if self.dac else [*features[1:], logits]


class ResolutionDiscriminator(nn.Module):
    """UnivNet / vocos: magnitude STFT (rectangular window, centred) as a ``[B, 1, F, T']`` image."""

    def __init__(self, n_fft: int, hop_length: int, win_length: int, channels: int = 64):
        super().__init__()
        if min(n_fft, hop_length, win_length, channels) < 1 or win_length > n_fft:
            raise ValueError(f"a resolution needs positive sizes and win_length <= n_fft, got {(n_fft, hop_length, win_length)}")
        self.n_fft, self.hop_length, self.win_length = n_fft, hop_length, win_length
        shapes = (((7, 5), (2, 2), (3, 2)), ((5, 3), (2, 1), (2, 1)), ((5, 3), (2, 2), (2, 1)), (3, (2, 1), 1), (3, (2, 2), 1))
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(1 if n == 0 else channels, channels, k, s, padding=p)) for n, (k, s, p) in enumerate(shapes)
        )
        self.conv_post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = _stft(audio, self.n_fft, self.hop_length, self.win_length).abs()[:, None].to(self.conv_post.weight.dtype)
        features = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), SLOPE)
            features.append(x)
        logits = self.conv_post(x)
        return logits, [*features, logits]


class BandDiscriminator(nn.Module):
    """DAC's complex multi-band STFT discriminator for one window: ``[B, 2, T', bins]`` cut into bands."""

    def __init__(self, window_length: int, bands: Sequence[Sequence[float]] = BANDS, channels: int = 32):
        super().__init__()
        bins = window_length // 2 + 1
        self.window_length = window_length
        self.bands = [(int(low * bins), int(high * bins)) for low, high in bands]
        if channels < 1 or any(not 0 <= low < high <= bins for low, high in self.bands):
            raise ValueError(f"bands must be increasing fractions of the {bins} bins in [0, 1] giving non-empty bands, got {bands}")

        def stack() -> nn.ModuleList:
            shapes = (((3, 9), (1, 1), (1, 4)), ((3, 9), (1, 2), (1, 4)), ((3, 9), (1, 2), (1, 4)), ((3, 9), (1, 2), (1, 4)), ((3, 3), (1, 1), (1, 1)))
            return nn.ModuleList(
                nn.Sequential(weight_norm(nn.Conv2d(2 if n == 0 else channels, channels, k, s, padding=p)), nn.LeakyReLU(SLOPE))
                for n, (k, s, p) in enumerate(shapes)
            )

        self.band_convs = nn.ModuleList(stack() for _ in self.bands)
        self.conv_post = weight_norm(nn.Conv2d(channels, 1, (3, 3), padding=(1, 1)))

    def forward(self, audio: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spectrum = _stft(audio, self.window_length, self.window_length // 4, self.window_length)
        x = torch.view_as_real(spectrum).permute(0, 3, 2, 1).to(self.conv_post.weight.dtype)  # [B, 2, T', bins]
        features, outputs = [], []
        for (low, high), convs in zip(self.bands, self.band_convs):
            band = x[..., low:high]
            for layer in convs:
                band = layer(band)
                features.append(band)
            outputs.append(band)
        return self.conv_post(torch.cat(outputs, dim=-1)), features


@register_discriminator("multi_period")
class MultiPeriodDiscriminator(nn.Module):
    """HiFi-GAN / vocos multi-period discriminator: one :class:`PeriodDiscriminator` per period."""

    def __init__(self, periods: Sequence[int] = PERIODS, channels: Sequence[int] = PERIOD_CHANNELS):
        super().__init__()
        self.discriminators = nn.ModuleList(PeriodDiscriminator(p, channels) for p in _non_empty(periods, "periods"))

    def forward(self, audio: torch.Tensor) -> DiscriminatorOutput:
        return _judge(self.discriminators, _check_audio(audio))


@register_discriminator("multi_resolution")
class MultiResolutionDiscriminator(nn.Module):
    """UnivNet / vocos multi-resolution magnitude-STFT discriminator, one per ``(n_fft, hop, window)``."""

    def __init__(self, resolutions: Sequence[Sequence[int]] = RESOLUTIONS, channels: int = 64):
        super().__init__()
        self.discriminators = nn.ModuleList(ResolutionDiscriminator(*r, channels=channels) for r in _non_empty(resolutions, "resolutions"))

    def forward(self, audio: torch.Tensor) -> DiscriminatorOutput:
        return _judge(self.discriminators, _check_audio(audio))


@register_discriminator("dac")
class DACDiscriminator(nn.Module):
    """DAC's discriminator (no multi-scale part, as in WavTokenizer): period discriminators, then one
    multi-band complex-STFT discriminator per FFT size, on DC-removed audio peak-normalised to 0.8."""

    def __init__(
        self,
        periods: Sequence[int] = PERIODS,
        fft_sizes: Sequence[int] = FFT_SIZES,
        bands: Sequence[Sequence[float]] = BANDS,
        period_channels: Sequence[int] = PERIOD_CHANNELS,
        band_channels: int = 32,
    ):
        super().__init__()
        subs: list[nn.Module] = [PeriodDiscriminator(p, period_channels, dac=True) for p in periods]
        subs += [BandDiscriminator(size, bands, band_channels) for size in fft_sizes]
        self.discriminators = nn.ModuleList(_non_empty(subs, "periods and fft_sizes"))

    def forward(self, audio: torch.Tensor) -> DiscriminatorOutput:
        audio = _check_audio(audio)
        audio = audio - audio.mean(dim=-1, keepdim=True)
        audio = 0.8 * audio / (audio.abs().amax(dim=-1, keepdim=True) + 1e-9)
        return _judge(self.discriminators, audio)


def _judge(discriminators: nn.ModuleList, audio: torch.Tensor) -> DiscriminatorOutput:
    logits, features = zip(*(d(audio) for d in discriminators))
    return DiscriminatorOutput(logits=list(logits), features=list(features))


def _stft(audio: torch.Tensor, n_fft: int, hop_length: int, win_length: int) -> torch.Tensor:
    """Centred complex STFT ``[B, n_fft // 2 + 1, frames]`` with a rectangular window, in float32 (not autocast)."""
    with torch.autocast(audio.device.type, enabled=False):
        window = torch.ones(win_length, device=audio.device)
        return torch.stft(audio.float(), n_fft, hop_length, win_length, window=window, center=True, return_complex=True)


def _check_audio(audio: torch.Tensor) -> torch.Tensor:
    if not isinstance(audio, torch.Tensor) or audio.ndim != 2 or not audio.is_floating_point():
        raise ValueError(f"audio discriminators take mono float audio [B, T], got {getattr(audio, 'shape', type(audio))}")
    return audio


def _non_empty(values: Sequence, name: str) -> Sequence:
    if len(values) == 0:
        raise ValueError(f"{name} must not be empty")
    return values
