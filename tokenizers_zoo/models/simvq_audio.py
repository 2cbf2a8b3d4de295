"""SimVQ on speech (youngsheen/SimVQ ``taming/models/vq_audio.py``, arXiv 2411.02038): WavTokenizer's generator with
a causal encoder and the SimVQ quantizer, 75 tokens per second at 24 kHz.

The SEANet encoder runs causal (left padding only; ratios 8, 5, 4, 2 -> hop 320), the quantizer is
:class:`~tokenizers_zoo.quantizers.ProjectedQuantizer`: a frozen Gaussian basis ``[K, 512]`` (N(0, 512^-1/2)) times a
trainable ``Linear(512, 512)`` with bias, and the decoder is the Vocos backbone with plain LayerNorms (no bandwidth
rows) and the ISTFT head (n_fft 1280). The official loss is ``commit_weight`` 1000 times ``0.25 * mse(z, sg(q)) +
mse(q, sg(z))``: here ``beta`` 250 and ``codebook_weight`` 1000. The official evaluation uses the ``LitEma`` weights,
as the converter does by default.

Fixed here: the official ``get_codebook_entry`` looks indices up in the un-projected basis; :meth:`decode` uses
the projected codes, as the training pass and the official encode/decode round trip do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .audio import register_audio_model
from .wavtokenizer import WavTokenizer, WavTokenizerConfig


def simvq_audio_quantizer(codebook_size: int) -> dict[str, Any]:
    """SimVQ-audio's quantizer as a config entry: frozen basis x ``Linear`` with bias, losses x ``commit_weight`` 1000."""
    return {"type": "projected", "codebook_size": codebook_size, "bias": True, "beta": 250.0, "codebook_weight": 1000.0}


@dataclass
class SimVQAudioConfig(WavTokenizerConfig):
    """WavTokenizer's fields with the release's values: causal encoder, no AdaLayerNorm rows, the SimVQ quantizer."""

    quantizer: dict[str, Any] = field(default_factory=lambda: simvq_audio_quantizer(4096))
    causal: bool = True
    adanorm_num_embeddings: int | None = None


class SimVQAudio(WavTokenizer):
    """Causal SEANet encoder -> frozen basis x linear layer -> Vocos decoder; ``bandwidth_id`` may only be 0."""

    architecture = "simvq_audio"
    config_class = SimVQAudioConfig


PAPER = "Addressing Representation Collapse in Vector Quantized Models with One Linear Layer"
PAPER_URL = "https://arxiv.org/abs/2411.02038"
OFFICIAL_REPO = "https://github.com/youngsheen/SimVQ"

# README Table 2, LibriTTS test-clean (test-other in the card text): codes -> (tag, kbps, usage, UTMOS, PESQ, STOI, V/UV F1)
RELEASED = {
    4_096: ("4k", 0.9, 1.0, 4.00, 2.33, 0.91, 0.94),
    8_192: ("8k", 0.975, 0.994, 4.03, 2.42, 0.92, 0.94),
    65_536: ("65k", 1.2, 0.994, 4.03, 2.54, 0.93, 0.94),
    262_144: ("262k", 1.35, 0.956, 4.03, 2.61, 0.93, 0.95),
}


def _register_released() -> None:
    for codes, (tag, kbps, usage, utmos, pesq, stoi, f1) in RELEASED.items():
        register_audio_model(
            f"simvq_audio_{tag}",
            "simvq_audio",
            SimVQAudioConfig(quantizer=simvq_audio_quantizer(codes)),
            description=(
                f"SimVQ on LibriTTS speech at 24 kHz, 75 tokens per second ({kbps} kbps): causal EnCodec SEANet encoder, "
                f"{codes:,} codes of 512 as a frozen Gaussian basis through a trainable linear layer, Vocos decoder with "
                "attention and an ISTFT head (n_fft 1280), trained on 1-second clips. Convert the official checkpoint with "
                "`tokenizers-zoo convert` (EMA weights by default). Decoding indices applies the linear layer (the official "
                "get_codebook_entry returns the un-projected basis row; fixed here)."
            ),
            license="mit",
            paper=PAPER,
            paper_url=PAPER_URL,
            official_repo=OFFICIAL_REPO,
            official_weights=f"https://huggingface.co/zyx123/SimVQ/tree/main/vq_audio_log/simvq_{tag} (Lightning .ckpt + 1second/config.yaml)",
            datasets=("libritts",),
            metrics={
                "codebook_usage_libritts_test_clean": usage,
                "utmos_libritts_test_clean": utmos,
                "pesq_wb_libritts_test_clean": pesq,
                "stoi_libritts_test_clean": stoi,
                "vuv_f1_libritts_test_clean": f1,
            },
        )


_register_released()
