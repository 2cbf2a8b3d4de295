"""WavTokenizer (jishengpeng/WavTokenizer, arXiv 2408.16532): 24 kHz speech and audio as 40 or 75 tokens per second.

The EnCodec SEANet encoder (non-causal, legacy weight norm, LSTM) -> one EMA codebook of 4,096 x 512 (k-means
init, dead-code restart below an EMA count of 2: the foundation :class:`~tokenizers_zoo.quantizers.VectorQuantizer`)
-> the Vocos decoder with WavTokenizer's attention ``pos_net`` and AdaLayerNorm rows (4 "bandwidths", row 0 at
inference) and an ISTFT head with "same" padding. ``encode(wav [B, T])`` gives ``[B, ceil(T / hop)]`` int64
indices; ``decode(indices, bandwidth_id=0)`` gives ``[B, F * hop]`` samples, the official decoder's length.

The commitment loss is the official ``mse(z, sg(q))`` times 1000 (the quantizer's ``beta``); the official codebook
is EMA-trained, so there is no codebook loss. Training picks the AdaLayerNorm row with ``bandwidth_id`` (default 0);
the official training draws one of the four rows per step, but all four stand for the same 6.6 "kbps" setting and
inference always uses row 0. The mel, feature-matching and adversarial terms live in the audio objective.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from ..config import ConfigError, check_positive
from ..networks.attention import max_attention_positions
from ..networks.seanet import SEANetArch, SEANetEncoder
from ..networks.vocos import VocosArch, VocosDecoder
from ..quantizers import build_quantizer
from ..specs import AudioSpec
from .audio import AudioTokenizer, register_audio_model
from .keywords import Keywords
from .tokenizer import TokenizerConfig


def wavtokenizer_quantizer(codebook_size: int = 4096, dead_code_threshold: float = 2.0, kmeans_iters: int = 200) -> dict[str, Any]:
    """WavTokenizer's quantizer as a config entry: EMA (decay 0.99), k-means init, dead-code restart, commitment x 1000."""
    return {
        "type": "vq", "codebook_size": codebook_size, "ema": True, "decay": 0.99, "kmeans_init": True,
        "kmeans_iters": kmeans_iters, "dead_code_threshold": dead_code_threshold, "beta": 1000.0,
    }


@dataclass
class WavTokenizerConfig(TokenizerConfig, SEANetArch, VocosArch):
    """The encoder (:class:`SEANetArch`), the decoder (:class:`VocosArch`, ISTFT hop = the encoder's hop), the
    quantizer over ``latent_dim`` features and the sample rate. Defaults: the released 75 tokens/s models."""

    quantizer: dict[str, Any] = field(default_factory=wavtokenizer_quantizer)
    sample_rate: int = 24_000

    def validate(self) -> None:
        check_positive(self, "sample_rate")
        super().validate()
        hop = self.hop_length
        if self.n_fft <= hop or (self.n_fft - hop) % 2:
            raise ConfigError(f"n_fft must exceed the hop {hop} by an even number of samples ('same' ISTFT padding), got {self.n_fft}")

    def input_spec(self) -> AudioSpec:
        return AudioSpec(sample_rate=self.sample_rate, hop_length=self.hop_length)


class WavTokenizer(AudioTokenizer):
    """SEANet encoder -> quantizer -> Vocos decoder; the encoder output is what the quantizer sees (``.latents``)."""

    architecture = "wavtokenizer"
    config_class = WavTokenizerConfig
    keywords: ClassVar[Keywords] = AudioTokenizer.keywords | Keywords(decode=("bandwidth_id",), train=("bandwidth_id",))

    def __init__(self, config: WavTokenizerConfig):
        super().__init__(config)
        self.encoder = SEANetEncoder(config)
        self.quantizer = build_quantizer(config.quantizer, config.latent_dim)
        self.decoder = VocosDecoder(config, config.latent_dim, config.hop_length)

    def encode_latents(self, audio: torch.Tensor, **context) -> torch.Tensor:
        return self.encoder(audio[:, None])

    def decode_latents(self, quantized: torch.Tensor, bandwidth_id: int | torch.Tensor | None = 0, **context) -> torch.Tensor:
        return self.decoder(quantized, bandwidth_id)

    def check_token_grid(self, indices: torch.Tensor) -> None:
        """The decoder attends over all frames at once (time and memory grow with their square): refuse, before any
        work, more frames than ``max_attention_positions``."""
        frames, limit = indices.shape[-1], max_attention_positions()
        if frames > limit:
            seconds = frames * self.config.hop_length / self.config.sample_rate
            raise ValueError(
                f"decoding {frames:,} frames ({seconds:.0f} s) needs self-attention over {frames:,} positions, above the limit "
                f"of {limit:,}: decode the tokens in pieces, or raise TOKENIZERS_ZOO_MAX_ATTENTION_POSITIONS"
            )


PAPER = "WavTokenizer: an Efficient Acoustic Discrete Codec Tokenizer for Audio Language Modeling"
PAPER_URL = "https://arxiv.org/abs/2408.16532"
OFFICIAL_REPO = "https://github.com/jishengpeng/WavTokenizer"
STRIDES = {40: (4, 5, 5, 6), 75: (2, 4, 5, 8)}  # encoder order; the yaml's `dowmsamples` lists them reversed
N_FFT = {40: 2400, 75: 1280}


def release_config(tokens_per_second: int) -> WavTokenizerConfig:
    """The released generator at 40 (hop 600, n_fft 2400) or 75 (hop 320, n_fft 1280) tokens per second."""
    return WavTokenizerConfig(strides=STRIDES[tokens_per_second], n_fft=N_FFT[tokens_per_second])


# (name, tokens/s, Hub repo, checkpoint file, datasets named by the release, training data in words)
RELEASED = (
    ("wavtokenizer_small_40", 40, "novateur/WavTokenizer", "WavTokenizer_small_600_24k_4096.ckpt", ("libritts",), "LibriTTS"),
    ("wavtokenizer_small_75", 75, "novateur/WavTokenizer", "WavTokenizer_small_320_24k_4096.ckpt", ("libritts",), "LibriTTS"),
    ("wavtokenizer_medium_speech_75", 75, "novateur/WavTokenizer-medium-speech-75token", "wavtokenizer_medium_speech_320_24k_v2.ckpt",
     (), "about 10,000 h of speech (issue #30: with Common Voice 17)"),
    ("wavtokenizer_medium_music_audio_75", 75, "novateur/WavTokenizer-medium-music-audio-75token", "its .ckpt",
     ("audioset",), "music and general audio (issue #23: AudioSet, about 1,500 h, and music)"),
    ("wavtokenizer_large_unify_40", 40, "novateur/WavTokenizer-large-unify-40token", "wavtokenizer_large_unify_600_24k.ckpt",
     (), "about 80,000 h of speech, audio and music (issues #45, #88: effectively speech-only)"),
    ("wavtokenizer_large_speech_75", 75, "novateur/WavTokenizer-large-speech-75token", "wavtokenizer_large_speech_320_v2.ckpt",
     (), "about 80,000 h of speech"),
)
# The VibeVoice report's table (LibriTTS test-clean), which agrees with the README's result.png.
REPORTED = {"wavtokenizer_small_75": {"utmos_libritts_test_clean": 4.049, "pesq_wb_libritts_test_clean": 2.373}}


def _register_released() -> None:
    for name, rate, repo, checkpoint, datasets, training_data in RELEASED:
        register_audio_model(
            name,
            "wavtokenizer",
            release_config(rate),
            description=(
                f"WavTokenizer at {rate} tokens per second ({rate * 12} bps), 24 kHz mono, trained on {training_data}: "
                f"non-causal EnCodec SEANet encoder (hop {600 if rate == 40 else 320}), one EMA codebook of 4,096 x 512, "
                f"Vocos decoder with attention and an ISTFT head (n_fft {N_FFT[rate]}). Convert the official Lightning "
                "checkpoint with `tokenizers-zoo convert`."
            ),
            license="mit",
            paper=PAPER,
            paper_url=PAPER_URL,
            official_repo=OFFICIAL_REPO,
            official_weights=f"https://huggingface.co/{repo} ({checkpoint})",
            datasets=datasets,
            metrics=REPORTED.get(name, {}),
        )


_register_released()

TINY_CONFIG = WavTokenizerConfig(
    n_filters=4, latent_dim=32, backbone_dim=64, intermediate_dim=192, num_layers=2, adanorm_num_embeddings=1,
    quantizer=wavtokenizer_quantizer(256, kmeans_iters=20),
)

register_audio_model(
    "wavtokenizer_tiny",
    "wavtokenizer",
    TINY_CONFIG,
    description=(
        "A small WavTokenizer trained by the zoo on a CPU: the released 75 tokens/s layout (hop 320, n_fft 1280, 24 kHz) "
        "at width 4 (latent 32, backbone 64, 2 ConvNeXt blocks, one AdaLayerNorm row), 256 EMA codes; trained 800 steps "
        "by recipes/wavtokenizer_tiny_libritts.json on 30 LJSpeech and 2 LibriTTS clips (about 4 minutes of speech). "
        "Intelligible speech is beyond it: for tests, recipes and demos, not research results."
    ),
    license="apache-2.0",
    paper=PAPER,
    paper_url=PAPER_URL,
    official_repo=OFFICIAL_REPO,
    weights="bundled:wavtokenizer_tiny",
    datasets=("ljspeech", "libritts"),
    metrics={  # `tokenizers-zoo eval wavtokenizer_tiny HELD_OUT`: LJ001-0031..0033, never trained on
        "mel_distance_ljspeech_heldout3": 1.627,
        "mrstft_distance_ljspeech_heldout3": 2.811,
        "stoi_ljspeech_heldout3": 0.481,
        "codebook_usage_ljspeech_heldout3": 0.4375,
    },
)
