"""jishengpeng/WavTokenizer Lightning checkpoints (``decoder.experiment.WavTokenizer``) -> the zoo's ``wavtokenizer``.

The released ``.ckpt`` files hold a ``state_dict`` with the generator under ``feature_extractor.encodec.encoder.*``
(the SEANet encoder, legacy weight norm ``weight_g`` / ``weight_v``: loaded as they are, the zoo's convs keep both
tensors), ``feature_extractor.encodec.quantizer.vq.layers.0._codebook.*`` (``embed`` [K, D] is the codebook; its EMA
statistics ``embed_avg`` / ``cluster_size`` / ``inited`` become the zoo quantizer's statistics, so fine-tuning
continues them), ``backbone.*`` and ``head.*`` (-> ``decoder.backbone.*`` / ``decoder.head.*``). Dropped: the unused
SEANet decoder ``feature_extractor.encodec.decoder.*``, the mel-loss buffers ``melspec_loss.*`` and the
discriminators ``multiperioddisc.*``, ``multiresddisc.*``, ``dac.*``, ``dacdiscriminator.*``. There is no EMA.

The architecture comes from the tensors alone: widths from the convs, strides from the downsampling kernels
(kernel = 2 x stride), res blocks and LSTM layers from the keys, backbone width, depth and AdaLayerNorm rows from
the backbone, ``n_fft`` from the head (``out`` has ``n_fft + 2`` rows). :func:`seanet_shape` and
:func:`vocos_shape` also serve SimVQ-audio, which reuses this generator.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import torch

from ..hub import CheckpointError
from ..models.wavtokenizer import WavTokenizer, WavTokenizerConfig, wavtokenizer_quantizer
from .common import container, drop_training_weights, load_converted, numbered, weights_in
from .registry import Converter, register_converter

log = logging.getLogger(__name__)

ENCODEC = "feature_extractor.encodec."
CODEBOOK = ENCODEC + "quantizer.vq.layers.0._codebook."
TRAINING_ONLY = (ENCODEC + "decoder.", "melspec_loss.", "multiperioddisc.", "multiresddisc.", "dac.", "dacdiscriminator.")
CODEBOOK_NAMES = {"embed": "codebook", "embed_avg": "embed_sum", "cluster_size": "cluster_size"}
ZOO_PREFIXES = {ENCODEC + "encoder.": "encoder.", "backbone.": "decoder.backbone.", "head.": "decoder.head."}


def detect(checkpoint: dict[str, Any]) -> bool:
    state = container(checkpoint)
    return isinstance(state, dict) and CODEBOOK + "embed" in state and "backbone.embed.weight" in state


def seanet_shape(state: dict[str, torch.Tensor], prefix: str) -> dict[str, Any]:
    """The :class:`~tokenizers_zoo.networks.seanet.SEANetArch` fields (all but ``causal``, which leaves no trace in
    the tensors) of the SEANet encoder whose ``model.{i}`` modules are under ``prefix``."""
    def conv(index: int) -> torch.Tensor:
        return state[f"{prefix}model.{index}.conv.conv.weight_v"]

    modules = numbered(state, re.escape(prefix) + r"model\.(\d+)\.")
    convs = [i for i in modules if f"{prefix}model.{i}.conv.conv.weight_v" in state]
    blocks = [i for i in modules if f"{prefix}model.{i}.shortcut.conv.conv.weight_v" in state]
    if len(convs) < 3 or not blocks:
        raise CheckpointError(f"no SEANet encoder under {prefix}model.*: found modules {modules[:20]}")
    downsampling = convs[1:-1]
    kernels = [conv(i).shape[-1] for i in downsampling]
    if any(kernel % 2 for kernel in kernels):
        raise CheckpointError(f"the SEANet downsampling kernels {kernels} are not twice a stride")
    if len(blocks) % len(downsampling):
        raise CheckpointError(f"{len(blocks)} res blocks do not divide among {len(downsampling)} downsampling stages")
    return {
        "n_filters": conv(convs[0]).shape[0],
        "strides": tuple(kernel // 2 for kernel in kernels),
        "residual_layers": len(blocks) // len(downsampling),
        "lstm_layers": len(numbered(state, re.escape(prefix) + r"model\.\d+\.lstm\.weight_ih_l(\d+)$")),
        "latent_dim": conv(convs[-1]).shape[0],
    }


def vocos_shape(state: dict[str, torch.Tensor], prefix: str = "") -> dict[str, Any]:
    """The :class:`~tokenizers_zoo.networks.vocos.VocosArch` fields of ``{prefix}backbone.*`` and ``{prefix}head.*``."""
    needed = [f"{prefix}backbone.embed.weight", f"{prefix}backbone.convnext.0.pwconv1.weight", f"{prefix}head.out.weight"]
    missing = [key for key in needed if key not in state]
    if missing:
        raise CheckpointError(f"no Vocos backbone and ISTFT head: missing {missing}")
    rows = state.get(f"{prefix}backbone.norm.scale.weight")
    return {
        "backbone_dim": state[f"{prefix}backbone.embed.weight"].shape[0],
        "intermediate_dim": state[f"{prefix}backbone.convnext.0.pwconv1.weight"].shape[0],
        "num_layers": len(numbered(state, re.escape(prefix) + r"backbone\.convnext\.(\d+)\.")),
        "adanorm_num_embeddings": None if rows is None else rows.shape[0],
        "n_fft": state[f"{prefix}head.out.weight"].shape[0] - 2,
    }


def infer_config(state: dict[str, torch.Tensor]) -> WavTokenizerConfig:
    """The ``WavTokenizerConfig`` whose model has exactly these (official) tensors."""
    if ENCODEC + "quantizer.vq.layers.1._codebook.embed" in state:
        raise CheckpointError("the checkpoint has several quantizer layers; the WavTokenizer releases have one, which is all the zoo supports")
    if CODEBOOK + "embed" not in state:
        raise CheckpointError(f"not a WavTokenizer checkpoint: no codebook {CODEBOOK}embed")
    codebook = state[CODEBOOK + "embed"]
    shape = {**seanet_shape(state, ENCODEC + "encoder."), **vocos_shape(state)}
    if codebook.shape[1] != shape["latent_dim"] or state["backbone.embed.weight"].shape[1] != shape["latent_dim"]:
        raise CheckpointError(f"the encoder gives {shape['latent_dim']} features but the codebook has {codebook.shape[1]}: not one WavTokenizer")
    return WavTokenizerConfig(**shape, quantizer=wavtokenizer_quantizer(codebook.shape[0]))


def zoo_weights(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official generator tensors under the zoo's names (codebook statistics included, ``inited`` as a bool)."""
    weights = {}
    for key, value in state.items():
        if key.startswith(CODEBOOK):
            name = key[len(CODEBOOK):]
            if name == "inited":
                weights["quantizer.initialized"] = value.reshape(()).bool()
            else:
                weights["quantizer." + CODEBOOK_NAMES.get(name, name)] = value
            continue
        prefix = next((p for p in ZOO_PREFIXES if key.startswith(p)), None)
        weights[key if prefix is None else ZOO_PREFIXES[prefix] + key[len(prefix):]] = value
    return weights


def convert(checkpoint: dict[str, Any], config: dict[str, Any] | None, ema: bool | None) -> WavTokenizer:
    if ema:
        raise ValueError("WavTokenizer checkpoints hold no EMA weights")
    state = drop_training_weights(weights_in(checkpoint), TRAINING_ONLY, log)
    return load_converted(WavTokenizer(infer_config(state)), zoo_weights(state), "WavTokenizer checkpoint")


register_converter(Converter(
    family="wavtokenizer",
    description="jishengpeng/WavTokenizer Lightning checkpoints (40 or 75 tokens/s; generator only)",
    detect=detect,
    convert=convert,
))
