"""The mel-spectrogram L1 distance of vocos / WavTokenizer (their ``MelSpecReconstructionLoss``)."""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F
from torch import nn


class MelL1(nn.Module):
    """``mean |log mel(a) - log mel(b)|`` over mono ``[B, T]`` audio.

    The mel spectrogram is torchaudio's ``MelSpectrogram`` with vocos's settings: magnitude (``power=1``),
    centred Hann-window STFT, ``n_mels`` HTK-scale filters from 0 Hz to Nyquist, no normalisation; the log is
    taken after clamping at 1e-7. Computed in float32 outside autocast. Defaults: WavTokenizer at 24 kHz.
    """

    def __init__(self, sample_rate: int = 24000, n_fft: int = 1024, hop_length: int = 256, n_mels: int = 100):
        super().__init__()
        if min(sample_rate, n_fft, hop_length, n_mels) < 1:
            raise ValueError(f"the mel loss needs positive sizes, got {dict(sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)}")
        try:
            torchaudio = importlib.import_module("torchaudio")
        except ImportError as error:
            raise ImportError("the mel loss needs torchaudio: pip install 'tokenizers-zoo[audio]'") from error
        self.spectrogram = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, center=True, power=1
        )
        for name, buffer in list(self.spectrogram.named_buffers()):  # constants rebuilt from the options: not checkpointed
            module_name, _, buffer_name = name.rpartition(".")
            self.spectrogram.get_submodule(module_name).register_buffer(buffer_name, buffer, persistent=False)

    def log_mel(self, audio: torch.Tensor) -> torch.Tensor:
        with torch.autocast(audio.device.type, enabled=False):
            return self.spectrogram(audio.float()).clamp_min(1e-7).log()

    def forward(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if reconstruction.shape != target.shape or reconstruction.ndim != 2:
            raise ValueError(f"the mel loss compares two mono batches [B, T] of one shape, got {list(reconstruction.shape)} and {list(target.shape)}")
        return F.l1_loss(self.log_mel(reconstruction), self.log_mel(target))
