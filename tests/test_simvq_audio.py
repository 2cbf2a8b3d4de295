"""SimVQ-audio: the registered releases, causality, decoding with projected codes, and conversion of synthetic
Lightning checkpoints in the official layout (EMA or live weights), checked against a reference forward computed from
the official tensors."""

import logging

import pytest
import torch
import torch.nn.functional as F
import yaml

import tokenizers_zoo
from tokenizers_zoo.cli import main
from tokenizers_zoo.converters import CONVERTERS
from tokenizers_zoo.models.simvq_audio import simvq_audio_quantizer
from audio_codec_helpers import clip, official_seanet, official_vocos, reference_seanet, reference_vocos
from image_helpers import parameter_count

RELEASED = {"simvq_audio_4k": 4_096, "simvq_audio_8k": 8_192, "simvq_audio_65k": 65_536, "simvq_audio_262k": 262_144}
YAML_RATIOS = [8, 5, 4, 2]
TINY = dict(n_filters=4, latent_dim=16, backbone_dim=32, intermediate_dim=48, num_layers=2)


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_entries_build_at_full_size(name):
    with torch.device("meta"):
        model = tokenizers_zoo.create_model(name)
    info = tokenizers_zoo.model_info(name)
    assert isinstance(model, tokenizers_zoo.models.SimVQAudio) and model.config.causal and model.config.adanorm_num_embeddings is None
    assert info.codebook_size == model.quantizer.codebook_size == RELEASED[name] and tuple(model.quantizer.codebook.shape) == (RELEASED[name], 512)
    assert info.tokens_per_second == 75 and info.input_spec.sample_rate == 24_000 and model.config.n_fft == 1280
    assert info.license == "mit" and "2411.02038" in info.paper_url and f"simvq_{name.rsplit('_', 1)[1]}" in info.official_weights
    assert info.metrics["utmos_libritts_test_clean"] >= 4.0 and "libritts" in info.datasets
    assert parameter_count(model.encoder) == 8_802_816  # WavTokenizer's 75 tokens/s encoder
    assert parameter_count(model.decoder.backbone) == 61_961_472 - 13 * 6 * 768  # 13 LayerNorms instead of 4-row AdaLayerNorms
    assert parameter_count(model.quantizer) == 512 * 512 + 512 and "codebook" not in dict(model.quantizer.named_parameters())
    assert model.quantizer.beta == 250 and model.quantizer.codebook_weight == 1000


def tiny_model(**overrides):
    return tokenizers_zoo.create_model("simvq_audio_4k", **{**TINY, "quantizer": simvq_audio_quantizer(64), **overrides})


def test_causal_encoder_and_projected_decoding():
    torch.manual_seed(0)
    model = tiny_model().eval()
    audio = clip(1.0)
    changed = audio.clone()
    changed[:, 16_000:] = -changed[:, 16_000:]
    with torch.no_grad():
        out, later = model.encode(audio), model.encode(changed)
        assert out.indices.shape == (2, 75) and model.decode(out.indices).shape == (2, 24_000)
        assert torch.equal(out.latents[..., :50], later.latents[..., :50])  # frames before 16,000 samples never see them
        assert not torch.allclose(out.latents[..., 51:], later.latents[..., 51:])
        codes = model.quantizer.projection(model.quantizer.codebook)
        assert torch.allclose(out.quantized, codes[out.indices].transpose(1, 2), atol=1e-6)
        assert torch.equal(model.decode(out.indices), model.decode_latents(out.quantized))
    with pytest.raises(ValueError, match="no bandwidth rows"):
        model.decode(out.indices, bandwidth_id=1)


def test_training_losses_are_the_official_ones():
    model = tiny_model().train()
    step = model(clip(0.4))
    z, q = step.extras["latents"], step.extras["quantized"]
    assert sorted(step.losses) == ["codebook", "commitment", "reconstruction"]
    assert torch.allclose(step.losses["commitment"], 250 * F.mse_loss(z, q.detach()), rtol=1e-5)
    assert torch.allclose(step.losses["codebook"], 1000 * F.mse_loss(q, z), rtol=1e-5)


def official_simvq_audio_checkpoint(path, codebook_size=64, ema=True):
    """What SimVQ's audio VQModel saves (use_ema: true), at tiny widths: official names, the unused SEANet decoder,
    loss.*, and LitEma's dot-less copies of every trainable parameter (different from the live ones)."""
    live = official_seanet("encoder.", YAML_RATIOS, n_filters=4, latent_dim=16)
    live.update(official_vocos(latent_dim=16, dim=32, intermediate_dim=48, num_layers=2, adanorm_rows=None, n_fft=1280))
    generator = torch.Generator().manual_seed(3)
    frames = reference_seanet(clip(1.0, seed=4), live, "encoder.", YAML_RATIOS, causal=True).transpose(1, 2).reshape(-1, 16)
    live["quantize.embedding.weight"] = torch.randn(codebook_size, 16, generator=generator) * 16**-0.5
    live["quantize.embedding_proj.weight"] = torch.eye(16) * frames.std() * 4 + 0.01 * torch.randn(16, 16, generator=generator)
    live["quantize.embedding_proj.bias"] = frames.mean(0)
    state = dict(live)
    state["decoder.model.0.conv.conv.weight_v"] = torch.randn(256, 16, 7)
    state["decoder.model.1.lstm.weight_ih_l0"] = torch.randn(1024, 256)
    state["loss.multiperioddisc.discriminators.0.convs.0.weight_v"] = torch.randn(32, 1, 5, 1)
    state["loss.dac.discriminators.0.convs.0.0.bias"] = torch.randn(32)
    state["loss.melspec_loss.mel_spec.mel_scale.fb"] = torch.rand(513, 100)
    averaged = {}
    for key, value in live.items():
        averaged[key] = value if key in ("quantize.embedding.weight", "head.istft.window") else value * (1 + 0.05 * torch.randn(value.shape, generator=generator))
    if ema:
        for key, value in averaged.items():
            if key not in ("quantize.embedding.weight", "head.istft.window"):  # frozen basis and buffers have no EMA copy
                state["model_ema." + key.replace(".", "")] = value
        state["model_ema.decodermodel0convconvweight_v"] = torch.randn(256, 16, 7)
        state["model_ema.lossdacdiscriminators0convs00bias"] = torch.randn(32)
        state["model_ema.decay"] = torch.tensor(0.999)
        state["model_ema.num_updates"] = torch.tensor(-1, dtype=torch.int32)
    torch.save({"state_dict": state, "epoch": 49, "global_step": 138_600, "pytorch-lightning_version": "2.2.5"}, path)
    return live, averaged


def reference_simvq_audio(audio, state):
    latents = reference_seanet(audio, state, "encoder.", YAML_RATIOS, causal=True)
    codes = F.linear(state["quantize.embedding.weight"], state["quantize.embedding_proj.weight"], state["quantize.embedding_proj.bias"])
    x = latents.transpose(1, 2).reshape(-1, latents.shape[1])
    distance = x.pow(2).sum(1, keepdim=True) + codes.pow(2).sum(1) - 2 * torch.einsum("bd,dn->bn", x, codes.t())
    indices = distance.argmin(dim=1).reshape(latents.shape[0], -1)
    return latents, indices, reference_vocos(codes[indices].transpose(1, 2), state, 320)


def assert_matches_reference(model, state):
    audio = clip(0.5, seed=6)
    with torch.no_grad():
        out = model.encode(audio)
        latents, indices, reconstruction = reference_simvq_audio(audio, state)
        assert torch.allclose(out.latents, latents, atol=1e-5, rtol=1e-4) and torch.equal(out.indices, indices)
        assert len(indices.unique()) > 1
        assert torch.allclose(model.decode(out.indices), reconstruction, atol=1e-4, rtol=1e-4)


def test_official_checkpoint_converts_with_ema_or_live_weights(tmp_path, caplog):
    live, averaged = official_simvq_audio_checkpoint(tmp_path / "last.ckpt")
    with caplog.at_level(logging.INFO, logger="tokenizers_zoo.converters.simvq_audio"):
        model = tokenizers_zoo.convert_official(tmp_path / "last.ckpt")
    assert isinstance(model, tokenizers_zoo.models.SimVQAudio) and not model.training
    assert "decoder.*" in caplog.text and "loss.dac.* (1)" in caplog.text and "loss.multiperioddisc.* (1)" in caplog.text
    assert "model_ema.* (4)" in caplog.text  # the EMA of the SEANet decoder and discriminators, decay, num_updates
    config = model.config
    assert config.causal and config.strides == (2, 4, 5, 8) and config.adanorm_num_embeddings is None and config.n_fft == 1280
    assert (config.n_filters, config.latent_dim, config.backbone_dim, config.num_layers, model.quantizer.codebook_size) == (4, 16, 32, 2, 64)
    assert torch.equal(model.quantizer.projection.weight, averaged["quantize.embedding_proj.weight"])
    assert torch.equal(model.encoder.model[0].conv.conv.weight_g, averaged["encoder.model.0.conv.conv.weight_g"])
    assert_matches_reference(model, averaged)

    model = tokenizers_zoo.convert_official(tmp_path / "last.ckpt", ema=False)
    assert torch.equal(model.decoder.head.out.weight, live["head.out.weight"])
    assert_matches_reference(model, live)


def test_convert_command_yaml_and_detection(tmp_path):
    _, averaged = official_simvq_audio_checkpoint(tmp_path / "last.ckpt")
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=True)
    assert CONVERTERS["simvq_audio"].detect(checkpoint)
    assert not CONVERTERS["simvq"].detect(checkpoint) and not CONVERTERS["wavtokenizer"].detect(checkpoint)
    assert main(["convert", str(tmp_path / "last.ckpt"), "-o", str(tmp_path / "zoo")]) == 0
    assert_matches_reference(tokenizers_zoo.from_pretrained(tmp_path / "zoo"), averaged)
    config = {"model": {"class_path": "taming.models.vq_audio.VQModel", "init_args": {"ddconfig": {"causal": False, "dimension": 512}}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert not tokenizers_zoo.convert_official(tmp_path / "last.ckpt", config=tmp_path / "config.yaml").config.causal


def test_missing_ema_is_named(tmp_path, caplog):
    live, _ = official_simvq_audio_checkpoint(tmp_path / "plain.ckpt", ema=False)
    with pytest.raises(tokenizers_zoo.CheckpointError, match="no EMA weights"):
        tokenizers_zoo.convert_official(tmp_path / "plain.ckpt", ema=True)
    with caplog.at_level(logging.INFO, logger="tokenizers_zoo.converters.simvq_audio"):
        assert_matches_reference(tokenizers_zoo.convert_official(tmp_path / "plain.ckpt"), live)
    assert "using the live weights" in caplog.text
    official_simvq_audio_checkpoint(tmp_path / "last.ckpt")
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=True)
    del checkpoint["state_dict"]["model_ema.backboneconvnext1gamma"]
    torch.save(checkpoint, tmp_path / "partial.ckpt")
    with pytest.raises(tokenizers_zoo.CheckpointError, match="model_ema.backboneconvnext1gamma"):
        tokenizers_zoo.convert_official(tmp_path / "partial.ckpt")
