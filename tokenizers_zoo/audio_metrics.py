"""Audio reconstruction metrics used by ``tokenizers-zoo eval``: mel distance, multi-resolution STFT distance,
SI-SDR, STOI, PESQ, and the bitrate of a token stream.

Each metric takes a reconstruction and its reference as mono batches ``[B, T]`` of one shape and returns one
value per item ``[B]``. STOI needs pystoi (the ``audio`` extra); PESQ needs the optional ``pesq`` package (ITU-T
P.862 reference code): :func:`missing_audio_metrics` names those not installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import warnings
from typing import Sequence

import torch

from .objectives.mel import MelL1

STFT_RESOLUTIONS = ((512, 50, 240), (1024, 120, 600), (2048, 240, 1200))
"""(n_fft, hop, window length) of the multi-resolution STFT distance: Parallel WaveGAN's three resolutions."""
MIN_POWER = 1e-7  # Parallel WaveGAN clamps |X|^2 here before the square root
PESQ_RATE = 16_000  # wide-band PESQ is defined at 16 kHz


def _check_pair(reconstruction: torch.Tensor, target: torch.Tensor, metric: str) -> None:
    if reconstruction.shape != target.shape or target.ndim != 2 or target.shape[-1] == 0:
        shapes = f"{list(reconstruction.shape)} and {list(target.shape)}"
        raise ValueError(f"{metric} compares two non-empty mono batches [B, T] of one shape, got {shapes}")
    if not (reconstruction.is_floating_point() and target.is_floating_point()):
        raise TypeError(f"{metric} needs floating-point audio, got {reconstruction.dtype} and {target.dtype}")


def si_sdr(reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019), zero-mean version: both signals
    have their mean removed, the target is scaled by ``a = <r, t> / <t, t>`` and the ratio is ``|a t|^2 /
    |r - a t|^2``. A scaled copy gives a very large value (finite: both energies get 1e-20 added); computed in
    float64."""
    _check_pair(reconstruction, target, "SI-SDR")
    r = reconstruction.double() - reconstruction.double().mean(-1, keepdim=True)
    t = target.double() - target.double().mean(-1, keepdim=True)
    scale = (r * t).sum(-1, keepdim=True) / t.square().sum(-1, keepdim=True).clamp_min(1e-20)
    projection = scale * t
    signal, distortion = projection.square().sum(-1), (r - projection).square().sum(-1)
    return (10 * torch.log10((signal + 1e-20) / (distortion + 1e-20))).float()


def stft_magnitude(audio: torch.Tensor, n_fft: int, hop_length: int, win_length: int) -> torch.Tensor:
    """``sqrt(max(|STFT|^2, 1e-7))`` ``[B, n_fft // 2 + 1, frames]``: centred (reflect-padded) STFT, periodic Hann
    window of ``win_length`` zero-padded to ``n_fft``, no normalisation (Parallel WaveGAN's ``stft``)."""
    if audio.shape[-1] <= n_fft // 2:
        raise ValueError(f"a {n_fft}-point centred STFT needs more than {n_fft // 2} samples, got {audio.shape[-1]}")
    window = torch.hann_window(win_length, device=audio.device)
    spec = torch.stft(audio.float(), n_fft, hop_length, win_length, window, center=True, pad_mode="reflect", return_complex=True)
    return (spec.real.square() + spec.imag.square()).clamp_min(MIN_POWER).sqrt()


def multi_resolution_stft_distance(
    reconstruction: torch.Tensor, target: torch.Tensor, resolutions: Sequence[tuple[int, int, int]] = STFT_RESOLUTIONS
) -> torch.Tensor:
    """Parallel WaveGAN's multi-resolution STFT loss per item: at each (n_fft, hop, window) of ``resolutions``
    (:data:`STFT_RESOLUTIONS`), spectral convergence ``||S_t - S_r||_F / ||S_t||_F`` plus the log-magnitude L1
    ``mean |log S_t - log S_r|`` over magnitudes :func:`stft_magnitude`; the sum is averaged over resolutions."""
    _check_pair(reconstruction, target, "the multi-resolution STFT distance")
    total = torch.zeros(target.shape[0], device=target.device)
    for n_fft, hop, window in resolutions:
        r, t = (stft_magnitude(audio, n_fft, hop, window) for audio in (reconstruction, target))
        convergence = (t - r).flatten(1).norm(dim=1) / t.flatten(1).norm(dim=1)
        total += convergence + (t.log() - r.log()).abs().flatten(1).mean(1)
    return total / len(resolutions)


def mel_distance(reconstruction: torch.Tensor, target: torch.Tensor, sample_rate: int, mel: MelL1 | None = None) -> torch.Tensor:
    """Vocos / WavTokenizer's mel L1 per item: ``mean |log mel(r) - log mel(t)|`` with :class:`MelL1`'s log-mel
    (magnitude mel of a 1024-point Hann STFT, hop 256, 100 HTK filters, log after clamping at 1e-7). ``mel``:
    a :class:`MelL1` built for ``sample_rate`` to reuse."""
    _check_pair(reconstruction, target, "the mel distance")
    mel = MelL1(sample_rate).to(target.device) if mel is None else mel
    if mel.spectrogram.sample_rate != sample_rate:
        raise ValueError(f"the mel filters were built for {mel.spectrogram.sample_rate} Hz, the audio is at {sample_rate} Hz")
    return (mel.log_mel(reconstruction) - mel.log_mel(target)).abs().flatten(1).mean(1)


def _optional(module: str, extra: str, metric: str):
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{metric} needs the {module} package: pip install {extra}") from error


def stoi(reconstruction: torch.Tensor, target: torch.Tensor, sample_rate: int, extended: bool = False) -> torch.Tensor:
    """Short-time objective intelligibility (Taal et al. 2011; ``extended``: Jensen and Taal 2016's ESTOI) per
    item, by pystoi: resampled to 10 kHz, silent frames (40 dB below the loudest) dropped, 384 ms segments of
    one-third-octave envelopes correlated. About 0 to 1; higher is better. NaN (undefined) for an item with fewer
    than 30 non-silent frames (about 0.4 s of sound), where pystoi would warn and return 1e-5."""
    _check_pair(reconstruction, target, "STOI")
    pystoi = _optional("pystoi", "'tokenizers-zoo[audio]'", "STOI")
    pairs = zip(reconstruction.detach().double().cpu().numpy(), target.detach().double().cpu().numpy())
    scores = []
    for r, t in pairs:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            score = float(pystoi.stoi(t, r, sample_rate, extended=extended))
        too_short = any("Not enough STFT frames" in str(warning.message) for warning in caught)
        scores.append(math.nan if too_short else score)
    return torch.tensor(scores)


def pesq(reconstruction: torch.Tensor, target: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """Wide-band PESQ (ITU-T P.862.2, MOS-LQO about 1 to 4.6) per item by the ``pesq`` package, after resampling
    both signals to 16 kHz with torchaudio."""
    _check_pair(reconstruction, target, "PESQ")
    module = _optional("pesq", "pesq", "PESQ")
    if sample_rate != PESQ_RATE:
        torchaudio = _optional("torchaudio", "'tokenizers-zoo[audio]'", "PESQ's resampling")
        reconstruction, target = (torchaudio.functional.resample(x.float(), sample_rate, PESQ_RATE) for x in (reconstruction, target))
    pairs = zip(reconstruction.detach().double().cpu().numpy(), target.detach().double().cpu().numpy())
    return torch.tensor([float(module.pesq(PESQ_RATE, t, r, "wb")) for r, t in pairs])


def kbps(tokens_per_second: float, codebook_size: int, num_groups: int = 1) -> float:
    """Bitrate of fixed-length indices in kilobits per second: tokens per second x groups x log2(codebook size)."""
    if tokens_per_second <= 0 or codebook_size < 1 or num_groups < 1:
        given = f"{tokens_per_second} tokens/s, {codebook_size} codes, {num_groups} groups"
        raise ValueError(f"kbps needs positive rates and sizes, got {given}")
    return tokens_per_second * num_groups * math.log2(codebook_size) / 1000


OPTIONAL_METRICS = {"stoi": "pystoi", "pesq_wb": "pesq"}
"""The metrics ``eval`` reports only when their package is installed (else the row says "not installed")."""


def missing_audio_metrics() -> list[str]:
    """Names of the optional metrics whose package is not installed."""
    return [name for name, module in OPTIONAL_METRICS.items() if importlib.util.find_spec(module) is None]


def min_metric_length() -> int:
    """The fewest samples every metric accepts: more than half the largest STFT size."""
    return max(n_fft for n_fft, _, _ in STFT_RESOLUTIONS) // 2 + 1


def check_metric_length(samples: int, what: str) -> None:
    if samples < min_metric_length():
        raise ValueError(f"{what} has {samples} samples; the audio metrics need at least {min_metric_length()}")


def audio_reconstruction_metrics(
    reconstruction: torch.Tensor, target: torch.Tensor, sample_rate: int, mel: MelL1 | None = None
) -> dict[str, torch.Tensor]:
    """``eval``'s per-item metrics ``{name: [B]}``: ``mel_distance``, ``mrstft_distance``, ``si_sdr``, then ``stoi``
    and ``pesq_wb`` when their package is installed."""
    metrics = {
        "mel_distance": mel_distance(reconstruction, target, sample_rate, mel),
        "mrstft_distance": multi_resolution_stft_distance(reconstruction, target),
        "si_sdr": si_sdr(reconstruction, target),
    }
    missing = missing_audio_metrics()
    if "stoi" not in missing:
        metrics["stoi"] = stoi(reconstruction, target, sample_rate)
    if "pesq_wb" not in missing:
        metrics["pesq_wb"] = pesq(reconstruction, target, sample_rate)
    return metrics
