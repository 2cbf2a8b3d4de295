"""WeTok: the registered entries, the official key layout with adaptive norms, encode/decode, the generative
decoder's noise (keywords, reproducibility, zero-extended start), learning, and conversion of synthetic
checkpoints in the official Lightning layout (deterministic and generative, EMA and live)."""

import logging

import pytest
import torch

import tokenizers_zoo
from tokenizers_zoo.cli import main
from tokenizers_zoo.converters import CONVERTERS
from tokenizers_zoo.networks.adaptive_norm import AdaptiveGroupNorm
from tokenizers_zoo.training.generative_decoder import extend_decoder
from image_helpers import images, parameter_count

RELEASED = {  # name: (ch_mult, groups, tokens per 256 px image, generative decoder, encoder + decoder parameters in millions)
    "wetok_imagenet_ds16": ((1, 1, 2, 2, 4), 4, 256, False, 460.3),
    "wetok_imagenet_ds8": ((1, 2, 2, 4), 4, 1024, False, 447.9),
    "wetok_general_cr24": ((1, 2, 2, 4), 8, 1024, False, 448.4),
    "wetok_general_cr48": ((1, 2, 2, 4), 4, 1024, False, 447.9),
    "wetok_general_cr192": ((1, 1, 2, 2, 4), 4, 256, False, 460.3),
    "wetok_general_cr768": ((1, 1, 2, 2, 4, 8), 4, 64, True, 1673.7),
}
CONVERTER_ARCH = dict(  # 3 groups and 2 res blocks: what the converter must read from the tensors
    ch=32, ch_mult=(1, 2, 2), num_res_blocks=2, z_channels=24, resolution=32, quantizer={"type": "lfq", "codebook_size": 256, "groups": 3}
)


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_entries_build_at_full_size(name):
    ch_mult, groups, tokens, generative, millions = RELEASED[name]
    with torch.device("meta"):
        model = tokenizers_zoo.create_model(name)
    info = tokenizers_zoo.model_info(name)
    assert model.config.ch == 256 and model.config.num_res_blocks == 4 and model.config.ch_mult == ch_mult
    assert model.config.z_channels == 8 * groups and model.config.gan_decoder == generative
    assert model.quantizer.num_groups == info.num_groups == groups and model.quantizer.codebook_size == info.codebook_size == 256
    assert model.decoder.conv_in.in_channels == 8 * groups * (2 if generative else 1) and len(model.decoder.adaptive) == len(ch_mult)
    assert info.tokens_per_item == tokens and info.input_spec.image_size == 256 and model.quantizer.state_dict() == {}
    assert info.license == "apache-2.0" and "2508.05599" in info.paper_url and "zhuangshaobin/WeTok" in info.official_repo
    assert info.official_weights.startswith("https://huggingface.co/GrayShine/WeTok/blob/main/") and "WeTok.ckpt" in info.official_weights
    assert info.metrics == {"wetok_general_cr24": {"rfid_imagenet256_val50k": 0.12},
                            "wetok_general_cr768": {"rfid_imagenet256_val50k": 3.49}}.get(name, {})
    assert abs(parameter_count(model.encoder) + parameter_count(model.decoder) - millions * 1e6) < 0.1e6
    if name == "wetok_imagenet_ds16":  # research notes: encoder 199 M + decoder 261 M
        assert round(parameter_count(model.encoder) / 1e6) == 199 and round(parameter_count(model.decoder) / 1e6) == 261


def test_network_keys_follow_the_official_layout():
    state = tokenizers_zoo.create_model("wetok_tiny").state_dict()  # ch 32, ch_mult (1, 2, 2), 1 res block, z 16
    expected_shapes = {
        "encoder.conv_in.weight": [32, 3, 3, 3],
        "encoder.down.0.downsample.weight": [32, 32, 3, 3],
        "encoder.down.1.block.0.nin_shortcut.weight": [64, 32, 1, 1],
        "encoder.conv_out.weight": [16, 64, 1, 1],
        "decoder.conv_in.weight": [64, 16, 3, 3],
        "decoder.adaptive.2.gamma.weight": [64, 16],  # the coarsest level: its input is ch * ch_mult[-1]
        "decoder.adaptive.2.beta.bias": [64],
        "decoder.adaptive.1.gamma.weight": [64, 16],  # level l normalises the width coming from level l + 1
        "decoder.adaptive.0.beta.weight": [64, 16],
        "decoder.adaptive.0.gamma.bias": [64],
        "decoder.up.0.block.0.nin_shortcut.weight": [32, 64, 1, 1],
        "decoder.up.2.upsample.conv1.weight": [256, 64, 3, 3],
        "decoder.conv_out.weight": [3, 32, 3, 3],
    }
    assert {key: list(state[key].shape) for key in expected_shapes if key in state} == expected_shapes
    assert not [key for key in state if key.startswith("quantizer") or "adaptive.0.norm" in key]  # no codebook; GN without affine
    assert len([k for k in state if k.startswith("encoder.")]) == 34 and len([k for k in state if k.startswith("decoder.")]) == 35 + 12
    simvq = tokenizers_zoo.create_model("simvq_tiny").state_dict()
    assert {k for k in state if k.startswith("encoder.")} == {k for k in simvq if k.startswith("encoder.")}
    generative = tokenizers_zoo.create_model("wetok_tiny_gd").state_dict()
    assert generative.keys() == state.keys() and list(generative["decoder.conv_in.weight"].shape) == [64, 32, 3, 3]


def test_adaptive_group_norm_uses_the_unbiased_variance_of_the_style():
    torch.manual_seed(0)
    norm = AdaptiveGroupNorm(4, 32, norm_groups=8)
    x, style = torch.randn(2, 32, 6, 6), torch.randn(2, 4, 3, 5)
    flat = style.flatten(2)
    scale = norm.gamma(((flat - flat.mean(-1, keepdim=True)).square().sum(-1) / (15 - 1) + 1e-6).sqrt())
    shift = norm.beta(flat.mean(-1))
    normed = torch.nn.functional.group_norm(x, 8, eps=1e-6)
    torch.testing.assert_close(norm(x, style), scale[..., None, None] * normed + shift[..., None, None])
    with pytest.raises(ValueError, match="at least 2 positions"):
        norm(x, style[..., :1, :1])


def test_encode_decode_and_forward_agree():
    torch.manual_seed(0)
    model = tokenizers_zoo.create_model("wetok_tiny").eval()
    with torch.no_grad():
        out = model.encode(images())
        assert out.indices.shape == (2, 2, 8, 8) and out.indices.dtype == torch.int64 and model.index_layout == "[B, G, h, w]"
        assert torch.equal(out.quantized, torch.where(out.latents > 0, 1.0, -1.0))
        reconstruction = model(images()).reconstruction
        assert torch.equal(model.decode(out.indices), reconstruction)


def test_keywords_are_refused_where_they_do_not_belong():
    deterministic = tokenizers_zoo.create_model("wetok_tiny").eval()
    generative = tokenizers_zoo.create_model("wetok_tiny_gd").eval()
    indices = deterministic.encode(images()).indices
    latent = torch.randn(2, 16, 8, 8)
    with pytest.raises(TypeError, match=r"unexpected keyword argument\(s\) \['noise'\]; it takes: no keyword arguments"):
        deterministic.decode(indices, noise=latent)
    with pytest.raises(TypeError, match=r"\['generator'\]"):
        deterministic(images(), generator=torch.Generator())
    with pytest.raises(TypeError, match=r"\['nosie'\].*it takes: noise, generator"):
        generative.decode(indices, nosie=latent)
    with pytest.raises(TypeError, match="'noise' belongs to decode, train"):
        generative.encode(images(), noise=latent)
    with pytest.raises(ValueError, match=r"noise must have the latent's shape \(2, 16, 8, 8\), got \(2, 16, 4, 4\)"):
        generative.decode(indices, noise=latent[..., :4, :4])
    with pytest.raises(ValueError, match="not both"):
        generative.decode(indices, noise=latent, generator=torch.Generator())
    with pytest.raises(ValueError, match="deterministic"):
        deterministic.decoder(latent, noise=latent)


def test_zero_extended_decoder_decodes_as_the_base_for_any_noise():
    torch.manual_seed(0)
    base = tokenizers_zoo.create_model("wetok_tiny").eval()
    extended = extend_decoder(base)
    assert extended.config == base.config.replace(gan_decoder=True) and not extended.training
    assert extended.decoder.conv_in.weight[:, 16:].abs().sum() == 0
    with torch.no_grad():
        indices = base.encode(images()).indices
        expected = base.decode(indices)
        for seed in (0, 1):
            assert torch.equal(extended.decode(indices, generator=torch.Generator().manual_seed(seed)), expected)
        assert torch.equal(extended.decode(indices, noise=100 * torch.randn(2, 16, 8, 8)), expected)
    with pytest.raises(ValueError, match="already takes noise"):
        extend_decoder(extended)
    with pytest.raises(ValueError, match="only a WeTok decoder"):
        extend_decoder(tokenizers_zoo.create_model("simvq_tiny"))


def test_generative_decoder_learns_to_use_noise_reproducibly():
    torch.manual_seed(0)
    model = extend_decoder(tokenizers_zoo.create_model("wetok_tiny")).train()
    optimizer = torch.optim.Adam(model.decoder.parameters(), lr=1e-3)
    for _ in range(2):  # stage 2: the decoder alone
        optimizer.zero_grad()
        model(images(), generator=torch.Generator().manual_seed(1)).loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        indices = model.encode(images()).indices
        first = model.decode(indices, generator=torch.Generator().manual_seed(7))
        assert torch.equal(model.decode(indices, generator=torch.Generator().manual_seed(7)), first)
        noise = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(7))
        assert torch.equal(model.decode(indices, noise=noise), first)  # the generator draws the same N(0, 1) noise
        other = model.decode(indices, generator=torch.Generator().manual_seed(8))
        assert (other - first).abs().max() > 1e-4
        torch.manual_seed(3)
        global_draw = model.decode(indices)
        torch.manual_seed(3)
        assert torch.equal(model.decode(indices), global_draw)


def test_a_few_steps_lower_the_loss():
    torch.manual_seed(0)
    model = tokenizers_zoo.create_model("wetok_tiny").train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    batch, losses = images(4), []
    for _ in range(8):
        step = model(batch)
        assert sorted(step.losses) == ["commitment", "entropy", "reconstruction"] and step.stats.usage.shape == (2,)
        optimizer.zero_grad()
        step.loss.backward()
        optimizer.step()
        losses.append(step.losses["reconstruction"].item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_bundled_weights_and_the_extend_decoder_command(tmp_path, capsys, cifar_images):
    base, start = tokenizers_zoo.from_pretrained("wetok_tiny"), tokenizers_zoo.from_pretrained("wetok_tiny_gd")
    with torch.no_grad():
        out = base(cifar_images)  # held out from training
    assert base.reconstruction_metrics(cifar_images, out.reconstruction)["psnr"].mean() > 21.5
    assert (out.stats.usage > 0.8).all()  # of each group's 256 codes, over 12,800 tokens
    extended = extend_decoder(base)
    for key, value in extended.state_dict().items():
        assert torch.equal(value, start.state_dict()[key]), key  # the bundled stage-2 start is the extended wetok_tiny
    assert main(["extend-decoder", "wetok_tiny", "-o", str(tmp_path / "gd")]) == 0
    assert "zero-extended" in capsys.readouterr().out
    written = tokenizers_zoo.from_pretrained(tmp_path / "gd")
    assert written.config == start.config and torch.equal(written.decoder.conv_in.weight, start.decoder.conv_in.weight)
    assert main(["extend-decoder", "wetok_tiny_gd", "-o", str(tmp_path / "again")]) == 1
    assert "already takes noise" in capsys.readouterr().err


def official_wetok_checkpoint(path, generative=False, ema=True, stage2=False, seed=0):
    """What zhuangshaobin/WeTok's VQModel saves: encoder.* / decoder.* (no quantize.*), loss.*, and LitEma's
    dot-less copies of the trainable weights (none of the encoder after a stage-2 run). Returns the models
    holding the live and the EMA weights."""
    torch.manual_seed(seed)
    live = tokenizers_zoo.create_model("wetok_tiny", **CONVERTER_ARCH, gan_decoder=generative).eval()
    averaged = tokenizers_zoo.create_model("wetok_tiny", **CONVERTER_ARCH, gan_decoder=generative).eval()
    state = {k: v.clone() for k, v in live.state_dict().items()}
    with torch.no_grad():
        for name, parameter in averaged.named_parameters():
            if stage2 and name.startswith("encoder."):
                parameter.copy_(live.get_parameter(name))  # frozen: never averaged
                continue
            parameter.copy_(live.get_parameter(name) + 0.01 * torch.randn_like(parameter))  # an EMA that differs
            if ema:
                state["model_ema." + name.replace(".", "")] = parameter.detach().clone()
    state["loss.discriminator.main.0.weight"] = torch.randn(64, 3, 4, 4)
    state["loss.discriminator.main.3.running_mean"] = torch.zeros(128)
    state["loss.perceptual_loss.lin0.model.1.weight"] = torch.randn(1, 64, 1, 1)
    if ema:
        state["model_ema.lossdiscriminatormain0weight"] = torch.randn(64, 3, 4, 4)
        state["model_ema.decay"] = torch.tensor(0.999)
        state["model_ema.num_updates"] = torch.tensor(-1, dtype=torch.int32)
    assert {"decoder.adaptive.0.gamma.weight", "encoder.mid_block.1.conv1.weight", "decoder.up.1.upsample.conv1.weight"} <= state.keys()
    torch.save({"state_dict": state, "epoch": 24, "global_step": 1000, "pytorch-lightning_version": "2.4.0"}, path)
    return live, averaged


def assert_same_outputs(model, reference):
    noise = torch.randn(2, reference.config.z_channels, 8, 8)
    keywords = {"noise": noise} if reference.config.gan_decoder else {}
    with torch.no_grad():
        expected, out = reference.encode(images()), model.encode(images())
        assert torch.equal(out.latents, expected.latents) and torch.equal(out.indices, expected.indices)
        assert torch.equal(model.decode(out.indices, **keywords), reference.decode(expected.indices, **keywords))


@pytest.mark.parametrize("generative", [False, True])
def test_official_checkpoint_converts_with_ema_or_live_weights(tmp_path, caplog, generative):
    live, averaged = official_wetok_checkpoint(tmp_path / "WeTok.ckpt", generative=generative)
    with caplog.at_level(logging.INFO, logger="tokenizers_zoo.converters.wetok"):
        model = tokenizers_zoo.convert_official(tmp_path / "WeTok.ckpt")  # detected
    assert "loss.discriminator.* (2)" in caplog.text and "loss.perceptual_loss.* (1)" in caplog.text and "model_ema.* (3)" in caplog.text
    assert isinstance(model, tokenizers_zoo.models.WeTok) and not model.training
    assert model.config == averaged.config.replace(resolution=256) and model.quantizer.num_groups == 3
    assert model.config.gan_decoder == generative and model.config.num_res_blocks == 2
    assert torch.equal(model.decoder.adaptive[1].gamma.weight, averaged.decoder.adaptive[1].gamma.weight)
    assert_same_outputs(model, averaged)
    model = tokenizers_zoo.convert_official(tmp_path / "WeTok.ckpt", family="wetok", ema=False)
    assert torch.equal(model.decoder.conv_in.weight, live.decoder.conv_in.weight)
    assert_same_outputs(model, live)


def test_second_stage_ema_without_encoder_and_the_convert_command(tmp_path, caplog):
    live, averaged = official_wetok_checkpoint(tmp_path / "WeTok.ckpt", generative=True, stage2=True)
    with caplog.at_level(logging.INFO, logger="tokenizers_zoo.converters.wetok"):
        assert main(["convert", str(tmp_path / "WeTok.ckpt"), "-o", str(tmp_path / "zoo")]) == 0
    assert "using the live encoder" in caplog.text
    converted = tokenizers_zoo.from_pretrained(tmp_path / "zoo")
    assert torch.equal(converted.encoder.conv_in.weight, live.encoder.conv_in.weight)
    assert torch.equal(converted.decoder.conv_out.weight, averaged.decoder.conv_out.weight)
    assert_same_outputs(converted, averaged)


def test_detection_and_damaged_checkpoints(tmp_path):
    live, _ = official_wetok_checkpoint(tmp_path / "plain.ckpt", ema=False)
    checkpoint = torch.load(tmp_path / "plain.ckpt", weights_only=True)
    assert CONVERTERS["wetok"].detect(checkpoint) and not CONVERTERS["simvq"].detect(checkpoint)
    simvq_layout = {"quantize.embedding_proj.weight": torch.zeros(2, 2), "encoder.mid_block.0.conv1.weight": torch.zeros(1)}
    assert not CONVERTERS["wetok"].detect({"state_dict": simvq_layout})
    assert_same_outputs(tokenizers_zoo.convert_official(tmp_path / "plain.ckpt"), live)
    with pytest.raises(tokenizers_zoo.CheckpointError, match="no EMA weights"):
        tokenizers_zoo.convert_official(tmp_path / "plain.ckpt", ema=True)

    official_wetok_checkpoint(tmp_path / "last.ckpt")
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=True)
    del checkpoint["state_dict"]["model_ema.decoderadaptive0betabias"]
    torch.save(checkpoint, tmp_path / "partial.ckpt")
    with pytest.raises(tokenizers_zoo.CheckpointError, match="model_ema.decoderadaptive0betabias"):
        tokenizers_zoo.convert_official(tmp_path / "partial.ckpt")
    checkpoint["state_dict"]["quantize.mask"] = torch.zeros(8)  # strict: anything unknown is refused
    torch.save(checkpoint, tmp_path / "unknown.ckpt")
    with pytest.raises(tokenizers_zoo.CheckpointError, match=r"unexpected keys.*quantize\.mask"):
        tokenizers_zoo.convert_official(tmp_path / "unknown.ckpt", ema=False)
    checkpoint["state_dict"]["encoder.conv_out.weight"] = torch.zeros(20, 64, 1, 1)
    torch.save(checkpoint, tmp_path / "odd.ckpt")
    with pytest.raises(tokenizers_zoo.CheckpointError, match="20 features, not a whole number of 8-bit groups"):
        tokenizers_zoo.convert_official(tmp_path / "odd.ckpt", family="wetok")
