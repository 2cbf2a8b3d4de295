"""youngsheen/SimVQ audio checkpoints (``taming.models.vq_audio.VQModel``) -> the zoo's ``simvq_audio`` architecture.

The official files are Lightning ``.ckpt`` dicts whose ``state_dict`` holds the causal SEANet encoder ``encoder.*``
(the zoo's names), the unused SEANet decoder ``decoder.model.*`` (dropped), ``backbone.*`` and ``head.*``
(-> ``decoder.backbone.*`` / ``decoder.head.*``), the frozen basis ``quantize.embedding.weight`` and the linear layer
``quantize.embedding_proj.*`` (-> ``quantizer.codebook`` / ``quantizer.projection.*``: the effective codebook is
basis x linear layer), ``loss.*`` (discriminators, mel transforms: dropped) and ``model_ema.*``: ``LitEma``'s copy of
every trainable parameter, named without dots. The official evaluation uses the EMA weights, so does ``ema=None``.
The architecture is read from the tensors (see :mod:`.wavtokenizer`); causality leaves no trace there, so it is the
release's (causal) unless an official YAML says otherwise in ``model.init_args.ddconfig.causal``.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from ..config import ConfigError
from ..hub import CheckpointError
from ..models.simvq_audio import SimVQAudio, SimVQAudioConfig, simvq_audio_quantizer
from .common import container, drop_training_weights, ema_keys, lightning_model_weights, load_converted, log_dropped, uses_ema, weights_in
from .registry import Converter, register_converter
from .wavtokenizer import seanet_shape, vocos_shape

log = logging.getLogger(__name__)

UNUSED_DECODER = ("decoder.model.",)
RENAMES = {
    "quantize.embedding.weight": "quantizer.codebook",
    "quantize.embedding_proj.weight": "quantizer.projection.weight",
    "quantize.embedding_proj.bias": "quantizer.projection.bias",
}
PREFIXES = {"backbone.": "decoder.backbone.", "head.": "decoder.head."}


def detect(checkpoint: dict[str, Any]) -> bool:
    state = container(checkpoint)
    expected = {"quantize.embedding_proj.weight", "backbone.embed.weight", "encoder.model.0.conv.conv.weight_v"}
    return isinstance(state, dict) and expected <= state.keys()


def zoo_name(official: str) -> str:
    if official in RENAMES:
        return RENAMES[official]
    prefix = next((p for p in PREFIXES if official.startswith(p)), None)
    return official if prefix is None else PREFIXES[prefix] + official[len(prefix):]


def official_name(zoo: str) -> str:
    """The inverse of :func:`zoo_name`."""
    renamed = next((official for official, name in RENAMES.items() if name == zoo), None)
    if renamed is not None:
        return renamed
    prefix = next((p for p, z in PREFIXES.items() if zoo.startswith(z)), None)
    return zoo if prefix is None else prefix + zoo[len(PREFIXES[prefix]):]


def _causal(config: dict[str, Any] | None) -> bool:
    """``ddconfig.causal`` of an official YAML (``model.init_args`` or ``model.params``), else the release's True."""
    model = (config or {}).get("model") or {}
    arguments = (model.get("init_args") or model.get("params") or {}) if isinstance(model, dict) else {}
    causal = (arguments.get("ddconfig") or {}).get("causal", True)
    if not isinstance(causal, bool):
        raise ConfigError(f"the official config's model ddconfig.causal must be true or false, got {causal!r}")
    return causal


def infer_config(state: dict[str, torch.Tensor], causal: bool = True) -> SimVQAudioConfig:
    """The ``SimVQAudioConfig`` whose model has exactly these (official) tensors."""
    if "quantize.embedding.weight" not in state:
        raise CheckpointError("not a SimVQ audio checkpoint: no quantize.embedding.weight")
    basis = state["quantize.embedding.weight"]
    shape = {**seanet_shape(state, "encoder."), **vocos_shape(state)}
    if basis.shape[1] != shape["latent_dim"]:
        raise CheckpointError(f"the basis has {basis.shape[1]} features but the encoder gives {shape['latent_dim']}: not a SimVQ audio model")
    return SimVQAudioConfig(**shape, causal=causal, quantizer=simvq_audio_quantizer(basis.shape[0]))


def convert(checkpoint: dict[str, Any], config: dict[str, Any] | None, ema: bool | None) -> SimVQAudio:
    state = drop_training_weights(weights_in(checkpoint), UNUSED_DECODER, log)
    model = SimVQAudio(infer_config(state, _causal(config)))
    official_names = {name: official_name(name) for name in model.state_dict()}
    averaged_keys = ema_keys(state, model, official_names) if uses_ema(state, ema, log) else {}
    log_dropped(state, set(averaged_keys.values()), log)
    zoo_names = {key: zoo_name(key) for key in state}
    return load_converted(model, lightning_model_weights(state, averaged_keys, zoo_names), "SimVQ audio checkpoint")


register_converter(Converter(
    family="simvq_audio",
    description="youngsheen/SimVQ audio VQModel Lightning checkpoints (EMA weights by default)",
    detect=detect,
    convert=convert,
))
