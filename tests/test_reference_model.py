"""The bundled reference model: loads offline, round-trips bit-exactly, reconstructs held-out images."""

import pytest
import torch

import tokenizers_zoo
from tokenizers_zoo import CheckpointError
from tokenizers_zoo.hub import WEIGHTS_NAME
from tokenizers_zoo.metrics import CodebookUsage, psnr

from conftest import DATA

BUNDLED = tokenizers_zoo.hub.bundled_folder("vqvae_tiny")


def test_loads_offline_in_eval_mode():
    model = tokenizers_zoo.from_pretrained("vqvae_tiny")
    assert not model.training and model.model_name == "vqvae_tiny"
    assert bool(model.quantizer.initialized)
    same = tokenizers_zoo.create_model("vqvae_tiny", pretrained=True)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), same.state_dict().values()))


def test_save_pretrained_reproduces_the_shipped_file_bit_for_bit(tmp_path):
    tokenizers_zoo.from_pretrained("vqvae_tiny").save_pretrained(tmp_path)
    assert (tmp_path / WEIGHTS_NAME).read_bytes() == (BUNDLED / WEIGHTS_NAME).read_bytes()
    assert (tmp_path / "config.json").read_text() == (BUNDLED / "config.json").read_text()


def test_refuses_a_mismatched_config():
    with pytest.raises(CheckpointError, match="mis-shaped keys.*quantizer.codebook"):
        tokenizers_zoo.create_model("vqvae_tiny", pretrained=True, quantizer={"type": "vq", "codebook_size": 1024, "ema": True})


def test_reconstructs_held_out_images(cifar_images):
    """The 100 bundled CIFAR-10 images were held out from training."""
    model = tokenizers_zoo.from_pretrained("vqvae_tiny")
    usage = CodebookUsage(model.quantizer.codebook_size)
    with torch.no_grad():
        out = model.encode(cifar_images)
        reconstruction = model.decode(out.indices).clamp(-1, 1)
    usage.update(out.indices)
    assert out.indices.shape == (100, 8, 8)
    assert float(psnr(reconstruction, cifar_images).mean()) > 23.5  # measured 24.35 dB (registry metrics)
    assert usage.usage > 0.9  # measured 0.99
    noise = torch.rand_like(cifar_images) * 2 - 1  # far worse than on images: the model learnt something
    with torch.no_grad():
        noise_psnr = psnr(model.decode(model.encode(noise).indices).clamp(-1, 1), noise).mean()
    assert float(noise_psnr) < 15.0


def test_bundled_simvq_reconstructs_held_out_images_with_most_codes(cifar_images, tmp_path):
    """simvq_tiny (recipes/simvq_tiny_cifar10.json) on the 100 held-out images: PSNR and codebook use as its card says."""
    model = tokenizers_zoo.from_pretrained("simvq_tiny")
    assert model.architecture == "simvq" and model.revision == f"bundled@{tokenizers_zoo.__version__}"
    usage = CodebookUsage(model.quantizer.codebook_size)
    with torch.no_grad():
        out = model.encode(cifar_images)
        reconstruction = model.decode(out.indices).clamp(-1, 1)
    usage.update(out.indices)
    assert float(psnr(reconstruction, cifar_images).mean()) > 24.3  # measured 24.84 dB (registry metrics)
    assert usage.usage > 0.95  # measured 0.976 of 1,024 codes from 6,400 tokens
    model.save_pretrained(tmp_path)
    folder = tokenizers_zoo.hub.bundled_folder("simvq_tiny")
    assert (tmp_path / WEIGHTS_NAME).read_bytes() == (folder / WEIGHTS_NAME).read_bytes()


def test_bundled_wavtokenizer_beats_its_untrained_self_with_many_codes():
    """wavtokenizer_tiny (recipes/wavtokenizer_tiny_libritts.json, 800 steps on a CPU) on the bundled LibriTTS clip (one
    of its training clips; the card's figures are on held-out LJSpeech): mel distance below the untrained model's."""
    from tokenizers_zoo.audio_metrics import mel_distance
    from tokenizers_zoo.data import load_audio

    wav = load_audio(DATA / "audio" / "8455_210777_000067_000000.wav", 24_000)[None]
    trained = tokenizers_zoo.from_pretrained("wavtokenizer_tiny")
    assert trained.revision == f"bundled@{tokenizers_zoo.__version__}"
    untrained = tokenizers_zoo.create_model("wavtokenizer_tiny").eval()
    with torch.no_grad():
        codes = trained.encode(wav).indices
        assert codes.shape == (1, -(-wav.shape[-1] // 320))
        trained_mel = mel_distance(trained.decode(codes)[:, : wav.shape[-1]], wav, 24_000)
        untrained_mel = mel_distance(untrained.decode(untrained.encode(wav).indices)[:, : wav.shape[-1]], wav, 24_000)
    assert float(trained_mel) < float(untrained_mel) - 0.15  # measured 1.73 vs 2.00
    assert codes.unique().numel() >= 40  # measured 79 of 256 codes on 229 tokens
