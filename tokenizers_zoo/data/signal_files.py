"""How the command line reads and writes each modality's signals (images and audio; graphs plug in)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Hashable

import torch
from PIL import Image

from .audio import AUDIO_SUFFIXES, audio_header, collate_audio, list_audio, load_audio, save_audio
from .images import IMAGE_SUFFIXES, image_size, list_images, load_image, save_image


@dataclass(frozen=True)
class SignalFiles:
    """One modality's files: which suffixes, how to find, read and write them, and how to group them.

    ``read(path, model, options)`` returns one item's signal (without the batch axis); ``group_key(path,
    options)`` tells which files can share a batch, reading as little as possible; ``write(signal, path,
    model)`` writes one item; ``output_size(indices, model)`` is the number of samples a decode of one
    item's indices produces (bounded before any work).

    Optional: ``collate(signals)`` -> ``(batch, encode keywords)`` lets files of any size share a batch
    (e.g. padded audio with ``lengths``; files are then batched in the order of ``group_key``, and each
    item keeps ``EncodeOutput.lengths`` tokens); ``encode_options(model, options)`` gives further ``encode``
    keywords; ``fit_output(signal, item)`` cuts a decoded signal to the item's recorded shape.
    """

    suffixes: tuple[str, ...]
    output_suffix: str
    list: Callable[[Path], list[Path]]
    read: Callable[[Path, Any, dict], torch.Tensor]
    group_key: Callable[[Path, dict], Hashable]
    write: Callable[[torch.Tensor, Path, Any], None]
    output_size: Callable[[torch.Tensor, Any], int]
    max_output_size: Callable[[], int]
    collate: Callable[[list[torch.Tensor]], tuple[torch.Tensor, dict]] | None = None
    encode_options: Callable[[Any, dict], dict] = lambda model, options: {}
    fit_output: Callable[[torch.Tensor, dict], torch.Tensor] = lambda signal, item: signal


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


MAX_AUDIO_SAMPLES = 2**31
"""The longest decode the command line agrees to (about 25 hours at 24 kHz)."""


def _collate_audio(signals: list[torch.Tensor]) -> tuple[torch.Tensor, dict]:
    batch = collate_audio(signals)
    return batch["x"], {"lengths": batch["lengths"]}


def _audio_encode_options(model, options: dict) -> dict:
    """``chunk_size`` (and ``chunk_context``) in samples from ``--chunk-seconds`` (``--chunk-context-seconds``), whole hops."""
    if options.get("chunk_seconds") is None:
        return {}
    spec = model.input_spec

    def hops(seconds: float, least: int) -> int:
        return max(least, round(seconds * spec.sample_rate / spec.hop_length)) * spec.hop_length

    context = options.get("chunk_context_seconds")
    return {"chunk_size": hops(options["chunk_seconds"], 1), **({} if context is None else {"chunk_context": hops(context, 0)})}


def _fit_audio(signal: torch.Tensor, item: dict) -> torch.Tensor:
    """The decoded ``[F x hop]`` samples cut to the item's recorded length ``T`` (``(F - 1) x hop < T <= F x hop``)."""
    shape = item.get("shape")
    length = shape[0] if isinstance(shape, list) and len(shape) == 1 else None
    if not isinstance(length, int) or isinstance(length, bool) or not 0 < length <= signal.shape[-1]:
        raise ValueError(f"item {item.get('name')!r} records shape {shape!r}; its tokens decode to {signal.shape[-1]} samples")
    return signal[..., :length]


SIGNAL_FILES["audio"] = SignalFiles(
    suffixes=AUDIO_SUFFIXES,
    output_suffix=".wav",
    list=list_audio,
    read=lambda path, model, options: load_audio(path, model.input_spec.sample_rate),
    group_key=lambda path, options: audio_header(path),
    write=lambda signal, path, model: save_audio(signal, path, model.input_spec.sample_rate),
    output_size=lambda indices, model: indices.shape[-1] * model.input_spec.hop_length,
    max_output_size=lambda: MAX_AUDIO_SAMPLES,
    collate=_collate_audio,
    encode_options=_audio_encode_options,
    fit_output=_fit_audio,
)
