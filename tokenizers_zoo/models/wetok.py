"""WeTok (zhuangshaobin/WeTok, arXiv 2508.05599): the Open-MAGVIT2 encoder, group-wise lookup-free quantization
and a decoder with adaptive group norms; optionally a generative decoder that also reads noise.

The quantizer is :class:`~tokenizers_zoo.quantizers.LookupFreeQuantizer` over the encoder output (no
``quant_conv``): ``z_channels = G * 8`` features in G groups of 8 bits, 256 implicit codes per group, indices
``[B, G, h, w]``; losses ``0.1 * entropy + 0.25 * commitment`` besides the L1 reconstruction (the official LPIPS
and PatchGAN terms belong to a training objective). The decoder (``Decoder`` of the official ``improved_model.py``)
normalises each level's input with an :class:`~tokenizers_zoo.networks.adaptive_norm.AdaptiveGroupNorm` styled
by the quantized latent.

The generative decoder (``gan_decoder``, official ``GANDecoder``) reads ``cat([z, noise])``: ``decode``,
``decode_latents`` and ``forward`` take ``noise`` (a tensor shaped like the latent) or a ``generator`` to draw it
from (default: the global random state), so its images are reproducible. It is trained in a second stage from a
deterministic model (:func:`tokenizers_zoo.training.generative_decoder.extend_decoder`). The official
``VQModel.decode_code`` calls a method that does not exist; the zoo's ``decode`` is the working path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..networks.magvit2 import Magvit2Arch, Magvit2Decoder, Magvit2Encoder
from ..quantizers import build_quantizer
from .image import ImageInput, ImageTokenizer, register_image_model
from .keywords import Keywords
from .tokenizer import TokenizerConfig

GENERATIVE_KEYWORDS = Keywords(decode=("noise", "generator"), train=("noise", "generator"))


def wetok_quantizer(groups: int, bits: int = 8) -> dict[str, Any]:
    """WeTok's quantizer as a config entry: ``groups`` groups of ``bits``-bit lookup-free codes, losses as released."""
    return {"type": "lfq", "codebook_size": 2**bits, "groups": groups}


@dataclass
class WeTokConfig(ImageInput, TokenizerConfig, Magvit2Arch):
    """The encoder/decoder shape (:class:`Magvit2Arch`), the quantizer over ``z_channels`` features, the input,
    and ``gan_decoder``: the generative decoder with a noise input."""

    quantizer: dict[str, Any] = field(default_factory=lambda: wetok_quantizer(4))
    z_channels: int = 32
    gan_decoder: bool = False


class WeTok(ImageTokenizer):
    """Encoder -> quantizer -> decoder, as the official ``VQModel`` (``models/lfqgan.py``). A generative
    decoder adds the ``noise`` and ``generator`` keywords to ``decode`` and ``forward``."""

    architecture = "wetok"
    config_class = WeTokConfig

    def __init__(self, config: WeTokConfig):
        super().__init__(config)
        self.encoder = Magvit2Encoder(config, in_channels=config.in_channels)
        self.quantizer = build_quantizer(config.quantizer, config.z_channels)
        self.decoder = Magvit2Decoder(config, out_channels=config.in_channels, adaptive_norm=True, noise_input=config.gan_decoder)
        if config.gan_decoder:
            self.keywords = type(self).keywords | GENERATIVE_KEYWORDS


PAPER = "WeTok: Powerful Discrete Tokenization for High-Fidelity Visual Reconstruction"
PAPER_URL = "https://arxiv.org/abs/2508.05599"
OFFICIAL_REPO = "https://github.com/zhuangshaobin/WeTok"
WEIGHTS = "https://huggingface.co/GrayShine/WeTok/blob/main"


def _release(ch_mult: tuple[int, ...], groups: int, gan_decoder: bool = False) -> WeTokConfig:
    """A released WeTok (``configs/WeToK/Inference/*.yaml``): ch 256, 4 res blocks, 256 px images."""
    return WeTokConfig(
        ch=256, ch_mult=ch_mult, num_res_blocks=4, z_channels=8 * groups, resolution=256,
        quantizer=wetok_quantizer(groups), gan_decoder=gan_decoder,
    )


# name: (config, checkpoint folder on the Hub, what it is, training data, metrics). Metrics: README, zero-shot
# reconstruction of the 50k ImageNet validation images at 256x256; the others are reported in the paper's tables.
RELEASES = {
    "wetok_imagenet_ds16": (_release((1, 1, 2, 2, 4), 4), "ImageNet/downsample16", "trained on ImageNet, f16 (16x16 tokens)",
                            ("imagenet-1k",), {}),
    "wetok_imagenet_ds8": (_release((1, 2, 2, 4), 4), "ImageNet/downsample8", "trained on ImageNet, f8 (32x32 tokens)",
                           ("imagenet-1k",), {}),
    "wetok_general_cr24": (_release((1, 2, 2, 4), 8), "GeneralDomain/compratio24",
                           "general-domain, compression ratio 24: f8 (32x32 tokens) x 8 groups", (), {"rfid_imagenet256_val50k": 0.12}),
    "wetok_general_cr48": (_release((1, 2, 2, 4), 4), "GeneralDomain/compratio48",
                           "general-domain, compression ratio 48: f8 (32x32 tokens) x 4 groups", (), {}),
    "wetok_general_cr192": (_release((1, 1, 2, 2, 4), 4), "GeneralDomain/compratio192",
                            "general-domain, compression ratio 192: f16 (16x16 tokens) x 4 groups", (), {}),
    "wetok_general_cr768": (_release((1, 1, 2, 2, 4, 8), 4, gan_decoder=True), "GeneralDomain/compratio768",
                            "general-domain, compression ratio 768: f32 (8x8 tokens) x 4 groups, generative decoder (noise input)",
                            (), {"rfid_imagenet256_val50k": 3.49}),
}


def _register_released() -> None:
    for name, (config, folder, summary, datasets, metrics) in RELEASES.items():
        groups = config.quantizer["groups"]
        register_image_model(
            name,
            "wetok",
            config,
            description=(
                f"WeTok {summary}: Open-MAGVIT2 encoder/decoder (ch 256, 4 res blocks, adaptive group norms), "
                f"{groups} groups of 8-bit lookup-free codes ({8 * groups} bits per token). Convert the official "
                "checkpoint with `tokenizers-zoo convert` (EMA weights by default)."
            ),
            license="apache-2.0",
            paper=PAPER,
            paper_url=PAPER_URL,
            official_repo=OFFICIAL_REPO,
            official_weights=f"{WEIGHTS}/{folder}/WeTok.ckpt (Lightning .ckpt; its YAML: configs/WeToK/Inference/ in the repo)",
            datasets=datasets,
            metrics=metrics,
        )


_register_released()

TINY_CONFIG = WeTokConfig(ch=32, ch_mult=(1, 2, 2), num_res_blocks=1, z_channels=16, resolution=32, quantizer=wetok_quantizer(2))

register_image_model(
    "wetok_tiny",
    "wetok",
    TINY_CONFIG,
    description=(
        "A small WeTok trained by the zoo: Open-MAGVIT2 encoder and adaptive-norm decoder at width 32 (f4), 2 groups "
        "of 8-bit lookup-free codes, trained on 1,900 CIFAR-10 test images (32x32) by recipes/wetok_tiny_cifar10.json "
        "(EMA weights of the last step). For tests and demos, not research results."
    ),
    license="apache-2.0",
    paper=PAPER,
    paper_url=PAPER_URL,
    official_repo=OFFICIAL_REPO,
    weights="bundled:wetok_tiny",
    datasets=("cifar10",),
    metrics={  # `tokenizers-zoo eval wetok_tiny tests/data/cifar10`: the 100 held-out images (usage: mean of the 2 groups)
        "psnr_db_cifar10_heldout100": 22.04,
        "ssim_cifar10_heldout100": 0.623,
        "codebook_usage_cifar10_heldout100": 0.885,
        "codebook_perplexity_cifar10_heldout100": 170.4,
    },
)

register_image_model(
    "wetok_tiny_gd",
    "wetok",
    TINY_CONFIG.replace(gan_decoder=True),
    description=(
        "The start of WeTok's second stage for wetok_tiny: its weights with the decoder's conv_in zero-extended to a "
        "noise input (`tokenizers-zoo extend-decoder wetok_tiny`), so it decodes exactly as wetok_tiny for any "
        "noise until recipes/wetok_tiny_gd_cifar10.json trains the decoder against a discriminator."
    ),
    license="apache-2.0",
    paper=PAPER,
    paper_url=PAPER_URL,
    official_repo=OFFICIAL_REPO,
    weights="bundled:wetok_tiny_gd",
    datasets=("cifar10",),
)
