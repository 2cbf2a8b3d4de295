"""WavTokenizer: the registered releases, token counts and lengths, the official key layout, AdaLayerNorm rows,
conversion of synthetic Lightning checkpoints in the official layout (checked against a reference forward computed
from the official tensors), the save/load round trip, and learning."""

import logging

import pytest
import torch

import tokenizers_zoo
from tokenizers_zoo.cli import main
from tokenizers_zoo.converters import CONVERTERS
from audio_codec_helpers import clip, official_seanet, official_vocos, reference_nearest, reference_seanet, reference_vocos
from image_helpers import parameter_count

RELEASED = {
    "wavtokenizer_small_40": 40, "wavtokenizer_small_75": 75, "wavtokenizer_medium_speech_75": 75,
    "wavtokenizer_medium_music_audio_75": 75, "wavtokenizer_large_unify_40": 40, "wavtokenizer_large_speech_75": 75,
}
YAML_RATIOS = {40: [6, 5, 5, 4], 75: [8, 5, 4, 2]}  # the official yaml's `dowmsamples`
ENCODEC = "feature_extractor.encodec."


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_entries_build_at_full_size(name):
    rate = RELEASED[name]
    with torch.device("meta"):
        model = tokenizers_zoo.create_model(name)
    info = tokenizers_zoo.model_info(name)
    hop = 24_000 // rate
    assert info.tokens_per_second == rate and info.input_spec.sample_rate == 24_000 and info.input_spec.hop_length == hop
    assert info.codebook_size == model.quantizer.codebook_size == 4096 and tuple(model.quantizer.codebook.shape) == (4096, 512)
    assert model.config.n_fft == 4 * hop and model.config.adanorm_num_embeddings == 4 and not model.config.causal
    assert info.license == "mit" and "2408.16532" in info.paper_url and info.official_weights.startswith("https://huggingface.co/novateur/")
    # research notes (from the official shapes): encoder 8.3 / 8.8 M, backbone 62.0 M, head 1.85 / 0.99 M
    assert parameter_count(model.encoder) == {40: 8_303_104, 75: 8_802_816}[rate]
    assert parameter_count(model.decoder.backbone) == 61_961_472
    assert parameter_count(model.decoder.head) == 768 * (4 * hop + 2) + 4 * hop + 2
    assert model.quantizer.ema and model.quantizer.kmeans_init and model.quantizer.dead_code_threshold == 2 and model.quantizer.beta == 1000


@pytest.mark.parametrize("rate", [40, 75])
def test_one_second_gives_exactly_the_token_rate(rate):
    strides = tuple(reversed(YAML_RATIOS[rate]))
    model = tokenizers_zoo.create_model("wavtokenizer_tiny", strides=strides, n_fft=4 * 24_000 // rate).eval()
    hop = 24_000 // rate
    with torch.no_grad():
        for samples, frames in ((24_000, rate), (24_000 + 1, rate + 1), (hop - 5, 1), (3 * hop, 3)):
            out = model.encode(clip(batch=2)[:, :samples] if samples <= 24_000 else torch.cat([clip(), clip(0.01)[:, :1]], 1))
            assert out.indices.shape == (2, frames) and out.indices.dtype == torch.int64
            assert out.latents.shape == out.quantized.shape == (2, 32, frames)
            assert model.decode(out.indices).shape == (2, frames * hop)


def test_lengths_and_padding():
    model = tokenizers_zoo.create_model("wavtokenizer_tiny").eval()
    audio = clip(batch=2)
    lengths = torch.tensor([24_000, 10_000])
    with torch.no_grad():
        out = model.encode(audio, lengths=lengths, sample_rate=24_000)
    assert out.lengths.tolist() == [75, 32] and out.indices.shape == (2, 75)
    with pytest.raises(ValueError, match="expects 24000 Hz"):
        model.encode(audio, sample_rate=16_000)
    with pytest.raises(ValueError, match=r"mono \[B, T\]"):
        model.encode(audio[:, None])
    with pytest.raises(TypeError, match="bandwidth_id.*belongs to decode"):
        model.encode(audio, bandwidth_id=0)
    with torch.no_grad():
        full = model.decode(out.indices)
        trimmed = model.decode(out.indices, lengths=lengths)
        alone = model.decode(out.indices[1:, :32], lengths=lengths[1:])
    assert full.shape == (2, 75 * 320) and trimmed.shape == (2, 24_000)
    assert torch.equal(trimmed[0], full[0, :24_000]) and torch.equal(trimmed[1, :10_000], full[1, :10_000])
    assert not trimmed[1, 10_000:].any() and alone.shape == (1, 10_000)
    with pytest.raises(ValueError, match=r"lengths must be an integer tensor \[2\] of samples in \[1, 24000\]"):
        model.decode(out.indices, lengths=torch.tensor([24_001, 5]))


def test_network_keys_follow_the_official_layout():
    state = tokenizers_zoo.create_model("wavtokenizer_tiny").state_dict()  # n_filters 4, latent 32, backbone 64, 2 blocks
    expected_shapes = {
        "encoder.model.0.conv.conv.weight_g": [4, 1, 1],
        "encoder.model.0.conv.conv.weight_v": [4, 1, 7],
        "encoder.model.1.block.1.conv.conv.weight_v": [2, 4, 3],
        "encoder.model.1.block.3.conv.conv.weight_v": [4, 2, 1],
        "encoder.model.1.shortcut.conv.conv.weight_v": [4, 4, 1],
        "encoder.model.3.conv.conv.weight_v": [8, 4, 4],  # stride 2
        "encoder.model.6.conv.conv.weight_v": [16, 8, 8],  # stride 4
        "encoder.model.9.conv.conv.weight_v": [32, 16, 10],  # stride 5
        "encoder.model.12.conv.conv.weight_g": [64, 1, 1],
        "encoder.model.12.conv.conv.weight_v": [64, 32, 16],  # stride 8
        "encoder.model.13.lstm.weight_ih_l1": [256, 64],
        "encoder.model.13.lstm.bias_hh_l0": [256],
        "encoder.model.15.conv.conv.weight_v": [32, 64, 7],
        "encoder.model.15.conv.conv.bias": [32],
        "quantizer.codebook": [256, 32],
        "quantizer.embed_sum": [256, 32],
        "decoder.backbone.embed.weight": [64, 32, 7],
        "decoder.backbone.norm.scale.weight": [1, 64],
        "decoder.backbone.pos_net.0.conv1.weight": [64, 64, 3],
        "decoder.backbone.pos_net.2.q.weight": [64, 64, 1],
        "decoder.backbone.pos_net.2.proj_out.bias": [64],
        "decoder.backbone.pos_net.5.weight": [64],
        "decoder.backbone.convnext.1.dwconv.weight": [64, 1, 7],
        "decoder.backbone.convnext.1.norm.shift.weight": [1, 64],
        "decoder.backbone.convnext.1.pwconv1.weight": [192, 64],
        "decoder.backbone.convnext.1.gamma": [64],
        "decoder.backbone.final_layer_norm.bias": [64],
        "decoder.head.out.weight": [1282, 64],
        "decoder.head.istft.window": [1280],
    }
    assert {key: list(state[key].shape) for key in expected_shapes if key in state} == expected_shapes
    absent = ["encoder.model.2.weight", "encoder.model.0.conv.conv.weight", "decoder.backbone.pos_net.0.nin_shortcut.weight",
              "encoder.model.16.conv.conv.weight_v", "decoder.backbone.convnext.2.gamma", "decoder.backbone.norm.weight"]
    assert not [key for key in absent if key in state]
    assert len([k for k in state if k.startswith("encoder.")]) == 3 + 4 * (9 + 3) + 8 + 3  # convs x (g, v, bias), LSTM
    assert len([k for k in state if k.startswith("decoder.backbone.pos_net.")]) == 4 * 8 + 10 + 2  # 4 res blocks, attention (norm, q, k, v, proj_out), GroupNorm


def test_bandwidth_rows():
    model = tokenizers_zoo.create_model("wavtokenizer_tiny", adanorm_num_embeddings=4).eval()
    with torch.no_grad():
        model.decoder.backbone.norm.scale.weight[2].mul_(3.0)
        indices = model.encode(clip()).indices
        default, row0, row2 = model.decode(indices), model.decode(indices, bandwidth_id=0), model.decode(indices, bandwidth_id=torch.tensor([2]))
        per_item = model.decode(indices, bandwidth_id=torch.tensor([0, 2]))
    assert torch.equal(default, row0) and not torch.allclose(row0, row2)
    assert torch.allclose(per_item[0], row0[0], atol=1e-6) and torch.allclose(per_item[1], row2[1], atol=1e-6)
    for bad in (4, -1, torch.tensor([0, 1, 2])):
        with pytest.raises(ValueError, match="bandwidth_id"):
            model.decode(indices, bandwidth_id=bad)
    with pytest.raises(TypeError, match="bandwidth_id"):
        model.decode(indices, bandwidth_id=1.0)


def test_long_token_sequences_are_refused_before_decoding(monkeypatch):
    model = tokenizers_zoo.create_model("wavtokenizer_tiny").eval()
    monkeypatch.setenv("TOKENIZERS_ZOO_MAX_ATTENTION_POSITIONS", "100")
    with torch.no_grad():
        assert model.decode(torch.zeros(1, 100, dtype=torch.int64)).shape == (1, 32_000)
        with pytest.raises(ValueError, match="101 frames.*above the limit of 100"):
            model.decode(torch.zeros(1, 101, dtype=torch.int64))


def test_model_card():
    model = tokenizers_zoo.create_model("wavtokenizer_small_75")
    card = tokenizers_zoo.cards.render_model_card(model)
    for text in ("license: mit", "arxiv:2408.16532", "audio-to-audio", "75 per second", "4096 codes of dimension 512",
                 "novateur/WavTokenizer", "sample_rate=24000", "hop_length=320", "utmos_libritts_test_clean"):
        assert text in card, text


def official_wavtokenizer_checkpoint(path, rate=75, codebook_size=64, rows=4):
    """What WavTokenizer's Lightning experiment saves, at tiny widths: the generator under the official names, the
    unused SEANet decoder, the mel-loss buffers and the discriminators (two DAC copies), plus Lightning's entries."""
    state = {f"{ENCODEC}encoder.{k}": v for k, v in official_seanet("", YAML_RATIOS[rate], n_filters=4, latent_dim=16).items()}
    state.update(official_vocos(latent_dim=16, dim=32, intermediate_dim=48, num_layers=2, adanorm_rows=rows, n_fft=4 * 24_000 // rate))
    generator = torch.Generator().manual_seed(2)
    codebook = f"{ENCODEC}quantizer.vq.layers.0._codebook."
    frames = reference_seanet(clip(1.0, seed=4), state, f"{ENCODEC}encoder.", YAML_RATIOS[rate]).transpose(1, 2).reshape(-1, 16)
    picks = torch.randint(frames.shape[0], (codebook_size,), generator=generator)  # codes where the latents are, as k-means puts them
    state[codebook + "embed"] = frames[picks] + 0.01 * torch.randn(codebook_size, 16, generator=generator)
    state[codebook + "embed_avg"] = state[codebook + "embed"] * 3.0
    state[codebook + "cluster_size"] = torch.full((codebook_size,), 3.0)
    state[codebook + "inited"] = torch.tensor([1.0])
    state[f"{ENCODEC}decoder.model.0.conv.conv.weight_v"] = torch.randn(64, 16, 7)
    state[f"{ENCODEC}decoder.model.3.convtr.convtr.weight_g"] = torch.rand(64, 1, 1)
    state[f"{ENCODEC}decoder.model.1.lstm.weight_ih_l0"] = torch.randn(256, 64)
    state["melspec_loss.mel_spec.spectrogram.window"] = torch.hann_window(1024)
    state["melspec_loss.mel_spec.mel_scale.fb"] = torch.rand(513, 100)
    state["multiperioddisc.discriminators.0.convs.0.weight_v"] = torch.randn(32, 1, 5, 1)
    state["multiperioddisc.emb.weight"] = torch.randn(4, 1024)
    state["multiresddisc.emb.weight"] = torch.randn(4, 64)
    state["dac.discriminators.0.convs.0.0.weight_v"] = torch.randn(32, 1, 5, 1)
    state["dacdiscriminator.discriminator.discriminators.0.convs.0.0.weight_v"] = torch.randn(32, 1, 5, 1)
    torch.save({"state_dict": state, "epoch": 10, "global_step": 500_000, "pytorch-lightning_version": "1.8.6"}, path)
    return state


def reference_wavtokenizer(audio, state, rate, bandwidth_id=0):
    latents = reference_seanet(audio, state, f"{ENCODEC}encoder.", YAML_RATIOS[rate])
    codebook = state[f"{ENCODEC}quantizer.vq.layers.0._codebook.embed"]
    indices = reference_nearest(latents, codebook)
    return latents, indices, reference_vocos(codebook[indices].transpose(1, 2), state, 24_000 // rate, bandwidth_id)


@pytest.mark.parametrize("rate", [40, 75])
def test_official_checkpoint_converts_and_matches_the_reference(tmp_path, caplog, rate):
    state = official_wavtokenizer_checkpoint(tmp_path / "last.ckpt", rate)
    with caplog.at_level(logging.INFO, logger="tokenizers_zoo.converters.wavtokenizer"):
        model = tokenizers_zoo.convert_official(tmp_path / "last.ckpt")
    for dropped in ("feature_extractor.*", "melspec_loss.*", "multiperioddisc.*", "multiresddisc.*", "dac.*", "dacdiscriminator.*"):
        assert dropped in caplog.text
    assert isinstance(model, tokenizers_zoo.models.WavTokenizer) and not model.training
    config = model.config
    assert config.strides == tuple(reversed(YAML_RATIOS[rate])) and config.hop_length == 24_000 // rate and config.n_fft == 4 * config.hop_length
    assert (config.n_filters, config.latent_dim, config.backbone_dim, config.intermediate_dim, config.num_layers) == (4, 16, 32, 48, 2)
    assert config.residual_layers == 1 and config.lstm_layers == 2 and config.adanorm_num_embeddings == 4 and not config.causal
    codebook = f"{ENCODEC}quantizer.vq.layers.0._codebook."
    assert torch.equal(model.quantizer.codebook, state[codebook + "embed"]) and torch.equal(model.quantizer.embed_sum, state[codebook + "embed_avg"])
    assert bool(model.quantizer.initialized) and torch.equal(model.quantizer.cluster_size, state[codebook + "cluster_size"])

    audio = clip(0.4, seed=3)  # 9,600 samples: not a whole number of hops at 75 tokens/s
    with torch.no_grad():
        out = model.encode(audio)
        latents, indices, reconstruction = reference_wavtokenizer(audio, state, rate)
        assert torch.allclose(out.latents, latents, atol=1e-5, rtol=1e-4)
        assert torch.equal(out.indices, indices) and out.indices.shape == (2, -(-9_600 // config.hop_length))
        assert len(indices.unique()) > 1
        for bandwidth_id in (0, 3):
            expected = reference_vocos(state[codebook + "embed"][indices].transpose(1, 2), state, config.hop_length, bandwidth_id)
            assert torch.allclose(model.decode(out.indices, bandwidth_id=bandwidth_id), expected, atol=1e-4, rtol=1e-4)
        assert reconstruction.shape == (2, out.indices.shape[1] * config.hop_length)


def test_convert_command_round_trip_and_detection(tmp_path):
    official_wavtokenizer_checkpoint(tmp_path / "last.ckpt")
    assert CONVERTERS["wavtokenizer"].detect(torch.load(tmp_path / "last.ckpt", weights_only=True))
    assert not CONVERTERS["simvq"].detect(torch.load(tmp_path / "last.ckpt", weights_only=True))
    assert main(["convert", str(tmp_path / "last.ckpt"), "-o", str(tmp_path / "zoo")]) == 0
    converted, reloaded = tokenizers_zoo.convert_official(tmp_path / "last.ckpt"), tokenizers_zoo.from_pretrained(tmp_path / "zoo")
    with torch.no_grad():
        expected, out = converted.encode(clip()), reloaded.encode(clip())
        assert torch.equal(out.indices, expected.indices) and torch.equal(out.latents, expected.latents)
        assert torch.equal(reloaded.decode(out.indices), converted.decode(expected.indices))
    with pytest.raises(ValueError, match="no EMA weights"):
        tokenizers_zoo.convert_official(tmp_path / "last.ckpt", ema=True)


def test_damaged_checkpoints_are_named(tmp_path):
    state = official_wavtokenizer_checkpoint(tmp_path / "last.ckpt")
    state[f"{ENCODEC}quantizer.vq.layers.1._codebook.embed"] = torch.zeros(64, 16)
    torch.save({"state_dict": state}, tmp_path / "two.ckpt")
    with pytest.raises(tokenizers_zoo.CheckpointError, match="several quantizer layers"):
        tokenizers_zoo.convert_official(tmp_path / "two.ckpt", family="wavtokenizer")
    del state[f"{ENCODEC}quantizer.vq.layers.1._codebook.embed"]
    state["backbone.convnext.0.gamma"] = torch.zeros(5)
    state["backbone.colorize"] = torch.zeros(3)
    torch.save({"state_dict": state}, tmp_path / "damaged.ckpt")
    with pytest.raises(tokenizers_zoo.CheckpointError, match=r"(?s)unexpected keys.*decoder\.backbone\.colorize.*mis-shaped.*convnext\.0\.gamma"):
        tokenizers_zoo.convert_official(tmp_path / "damaged.ckpt", family="wavtokenizer")


def test_tiny_model_learns():
    """Waveform L1 and commitment only (the GAN and mel terms live in the objective): the reconstruction improves, and
    dead-code restarts (EMA count < 2, as released) bring codes back after the first steps' collapse."""
    torch.manual_seed(0)
    model = tokenizers_zoo.create_model("wavtokenizer_tiny").train()
    assert 3e5 < parameter_count(model) < 5e5
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    audio, losses, usage = clip(0.5, batch=4, seed=5), [], []
    for _ in range(40):
        step = model(audio)
        assert sorted(step.losses) == ["commitment", "reconstruction"] and step.reconstruction.shape == audio.shape
        optimizer.zero_grad()
        step.loss.backward()
        optimizer.step()
        losses.append(step.losses["reconstruction"].item())
        usage.append(step.stats.usage.item())
    assert bool(model.quantizer.initialized)
    assert sum(losses[-5:]) < 0.85 * sum(losses[:5]), losses
    assert sum(usage[-5:]) > 3 * sum(usage[2:7]), usage
