"""Audio files <-> mono float32 waveforms, and a dataset over a folder of clips.

Reading and writing need the ``audio`` extra (soundfile, torchaudio); they are imported on first use.
"""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path
from types import ModuleType

import numpy as np
import torch

from ..atomic import atomic_write
from .folders import list_files

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
_WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}

log = logging.getLogger(__name__)
_noted: set[tuple[str, str]] = set()


def list_audio(folder: str | os.PathLike) -> list[Path]:
    """Audio files under ``folder`` (recursive), sorted; an error when there are none."""
    return list_files(folder, AUDIO_SUFFIXES, "audio files")


def load_audio(path: str | os.PathLike, sample_rate: int, convert: bool = True) -> torch.Tensor:
    """Mono ``[T]`` float32 at ``sample_rate``. Channels are averaged and other rates resampled with torchaudio
    (both logged, once per file and process); with ``convert=False`` such a file is refused instead."""
    _check_rate(sample_rate)
    soundfile = _require("soundfile")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no audio file {path}")
    try:
        data, rate = soundfile.read(path, dtype="float32", always_2d=True)
    except soundfile.SoundFileError as error:
        raise ValueError(f"{path} is not a readable audio file: {error}") from error
    if len(data) == 0:
        raise ValueError(f"{path} holds no audio (0 frames)")
    if not np.isfinite(data).all():
        raise ValueError(f"{path} has non-finite samples (NaN or infinity)")
    if not convert and (rate != sample_rate or data.shape[1] != 1):
        raise ValueError(f"{path} is {rate} Hz with {data.shape[1]} channel(s); expected {sample_rate} Hz mono (conversion is off)")
    wav = torch.from_numpy(data)
    if wav.shape[1] > 1:
        _note(path, f"averaged {wav.shape[1]} channels to mono")
    wav = wav.mean(dim=1)
    if rate != sample_rate:
        _note(path, f"resampled from {rate} Hz to {sample_rate} Hz")
        wav = _require("torchaudio").functional.resample(wav, rate, sample_rate)
    return wav


def audio_header(path: str | os.PathLike) -> tuple[float, int, int]:
    """``(seconds, sample rate, frames)`` from the file's header, nothing decoded: orders files by duration, and
    files with equal headers load to equal lengths."""
    soundfile = _require("soundfile")
    try:
        info = soundfile.info(str(path))
    except soundfile.SoundFileError as error:
        raise ValueError(f"{path} is not a readable audio file: {error}") from error
    return info.frames / info.samplerate, info.samplerate, info.frames


def save_audio(wav: torch.Tensor, path: str | os.PathLike, sample_rate: int) -> None:
    """Write ``[T]`` or ``[1, T]`` in [-1, 1] (clamped) as 16-bit PCM, WAV or FLAC by the suffix."""
    _check_rate(sample_rate)
    soundfile = _require("soundfile")
    path = Path(path)
    file_format = _WRITE_FORMATS.get(path.suffix.lower())
    if file_format is None:
        raise ValueError(f"cannot write {path}: the suffix must be one of {', '.join(_WRITE_FORMATS)}")
    if wav.ndim not in (1, 2) or (wav.ndim == 2 and wav.shape[0] != 1) or wav.shape[-1] == 0:
        raise ValueError(f"expected non-empty audio [T] or [1, T], got shape {tuple(wav.shape)}")
    samples = wav.detach().float().cpu().clamp(-1, 1).reshape(-1).numpy()
    atomic_write(
        path, lambda temporary: soundfile.write(temporary, samples, sample_rate, subtype="PCM_16", format=file_format)
    )


def collate_audio(items: list[torch.Tensor | dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Batch clips (``[T]`` or ``{"x": [T], "lengths": n}``) as ``{"x": [B, T_max] zero-padded, "lengths": [B]}``."""
    items = [item if isinstance(item, dict) else {"x": item, "lengths": torch.tensor(item.shape[-1])} for item in items]
    waves = [item["x"] for item in items]
    if any(wave.ndim != 1 for wave in waves):
        raise ValueError(f"collate_audio expects mono clips [T], got shapes {[tuple(w.shape) for w in waves]}")
    lengths = torch.stack([torch.as_tensor(item["lengths"], dtype=torch.int64) for item in items])
    return {"x": torch.nn.utils.rnn.pad_sequence(waves, batch_first=True), "lengths": lengths}


class AudioFolder(torch.utils.data.Dataset):
    """Clips under a folder (or an explicit file list) as ``{"x": [T], "lengths": T}``, mono at ``sample_rate``.

    ``segment`` (samples) cuts each clip to that length, from a uniformly random start with ``random_crop`` (torch's
    global RNG), else from the start; shorter clips are zero-padded and ``lengths`` keeps their real length.
    """

    collate = staticmethod(collate_audio)

    def __init__(
        self,
        source: str | os.PathLike | list[Path],
        sample_rate: int,
        segment: int | None = None,
        random_crop: bool = True,
    ):
        if segment is not None and segment < 1:
            raise ValueError(f"segment must be a positive number of samples, got {segment}")
        self.files = list(source) if isinstance(source, list) else list_audio(source)
        self.sample_rate, self.segment, self.random_crop = sample_rate, segment, random_crop

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        wav = load_audio(self.files[index], self.sample_rate)
        if self.segment is None:
            return {"x": wav, "lengths": torch.tensor(len(wav))}
        spare = len(wav) - self.segment
        start = int(torch.randint(spare + 1, ())) if self.random_crop and spare > 0 else 0
        wav = wav[start : start + self.segment]
        return {"x": torch.nn.functional.pad(wav, (0, self.segment - len(wav))), "lengths": torch.tensor(len(wav))}


def _note(path: Path, change: str) -> None:
    """Log a conversion of ``path`` the first time it happens (a training set is read every epoch)."""
    if (str(path), change) not in _noted:
        _noted.add((str(path), change))
        log.info("%s: %s", path, change)


def _check_rate(sample_rate: int) -> None:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate < 1:
        raise ValueError(f"sample_rate must be a positive number of samples per second, got {sample_rate!r}")


def _require(name: str) -> ModuleType:
    """Import an optional dependency of audio I/O, with an install hint when it is missing."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(f"audio files need the {name} package: pip install 'tokenizers-zoo[audio]'") from error
