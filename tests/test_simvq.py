"""SimVQ: the registered entries, the Open-MAGVIT2 network's official layout, the quantizer's projection at decode
time, learning, and conversion of a synthetic checkpoint in the official Lightning layout."""

import logging

import pytest
import torch
import torch.nn.functional as F
import yaml

import tokenizers_zoo
from tokenizers_zoo.cli import main
from tokenizers_zoo.converters import CONVERTERS
from tokenizers_zoo.networks.magvit2 import depth_to_space
from image_helpers import images, parameter_count

RELEASED = {"simvq_1k_imagenet128": 1_024, "simvq_8k_imagenet128": 8_192, "simvq_65k_imagenet128": 65_536, "simvq_262k_imagenet128": 262_144}
CONVERTER_ARCH = dict(ch=32, ch_mult=(1, 2, 2), num_res_blocks=2, z_channels=8, resolution=32)


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_entries_build_at_full_size(name):
    with torch.device("meta"):
        model = tokenizers_zoo.create_model(name)
    info = tokenizers_zoo.model_info(name)
    assert model.quantizer.codebook_size == info.codebook_size == RELEASED[name]
    assert tuple(model.quantizer.codebook.shape) == (RELEASED[name], 128) and "codebook" not in dict(model.quantizer.named_parameters())
    assert info.tokens_per_item == 256 and info.input_spec.image_size == 128 and info.input_spec.size_multiple == 8
    assert info.license == "mit" and info.weights is None and "2411.02038" in info.paper_url
    assert f"simvq_{name.split('_')[1]}" in info.official_weights and info.metrics["codebook_usage_imagenet128_val50k"] == 1.0
    assert 24.2e6 < parameter_count(model.encoder) < 24.4e6  # research notes: 24.3 M
    assert 39.8e6 < parameter_count(model.decoder) < 39.95e6  # research notes: 39.9 M
    assert parameter_count(model.quantizer) == 128 * 128 + 128  # only the linear layer trains


def test_network_keys_follow_the_official_layout():
    state = tokenizers_zoo.create_model("simvq_tiny").state_dict()  # ch 32, ch_mult (1, 2, 2), 1 res block, z 16
    expected_shapes = {
        "encoder.conv_in.weight": [32, 3, 3, 3],
        "encoder.down.0.block.0.norm1.weight": [32],
        "encoder.down.0.block.0.conv1.weight": [32, 32, 3, 3],
        "encoder.down.0.downsample.weight": [32, 32, 3, 3],
        "encoder.down.0.downsample.bias": [32],
        "encoder.down.1.block.0.conv1.weight": [64, 32, 3, 3],
        "encoder.down.1.block.0.nin_shortcut.weight": [64, 32, 1, 1],
        "encoder.down.1.downsample.weight": [64, 64, 3, 3],
        "encoder.mid_block.0.conv2.weight": [64, 64, 3, 3],
        "encoder.norm_out.bias": [64],
        "encoder.conv_out.weight": [16, 64, 1, 1],
        "encoder.conv_out.bias": [16],
        "decoder.conv_in.weight": [64, 16, 3, 3],
        "decoder.conv_in.bias": [64],
        "decoder.mid_block.0.norm2.weight": [64],
        "decoder.up.2.block.0.conv1.weight": [64, 64, 3, 3],
        "decoder.up.2.upsample.conv1.weight": [256, 64, 3, 3],
        "decoder.up.1.upsample.conv1.bias": [256],
        "decoder.up.0.block.0.nin_shortcut.weight": [32, 64, 1, 1],
        "decoder.conv_out.weight": [3, 32, 3, 3],
        "decoder.conv_out.bias": [3],
        "quantizer.codebook": [1024, 16],
        "quantizer.projection.weight": [16, 16],
        "quantizer.projection.bias": [16],
    }
    assert {key: list(state[key].shape) for key in expected_shapes if key in state} == expected_shapes
    absent = [  # bias-free convs, no attention, no nin_shortcut between equal widths, num_res_blocks blocks per decoder level
        "encoder.conv_in.bias", "encoder.down.0.block.0.conv1.bias", "encoder.down.0.block.0.nin_shortcut.weight",
        "encoder.down.2.downsample.weight", "encoder.down.1.block.0.nin_shortcut.bias", "decoder.up.0.upsample.conv1.weight",
        "decoder.up.0.block.1.conv1.weight", "encoder.mid.attn_1.q.weight", "quant_conv.weight",
    ]
    assert not [key for key in absent if key in state]
    encoder_keys = [k for k in state if k.startswith("encoder.")]
    decoder_keys = [k for k in state if k.startswith("decoder.")]
    assert len(encoder_keys) == 34 and len(decoder_keys) == 35  # counted from improved_model.py by hand
    assert not any("attn" in key for key in state)


def test_depth_to_space_uses_dcr_order():
    x = torch.arange(2 * 8 * 3 * 3, dtype=torch.float32).reshape(2, 8, 3, 3)
    out = depth_to_space(x, 2)
    assert out.shape == (2, 2, 6, 6)
    for i in range(2):
        for j in range(2):
            for c in range(2):
                assert torch.equal(out[:, c, i::2, j::2], x[:, (i * 2 + j) * 2 + c])
    assert not torch.equal(out, F.pixel_shuffle(x, 2))


def test_round_trip_decodes_projected_codes():
    torch.manual_seed(0)
    model = tokenizers_zoo.create_model("simvq_tiny").eval()
    with torch.no_grad():
        out = model.encode(images())
        assert out.indices.shape == (2, 8, 8) and out.indices.dtype == torch.int64
        assert torch.equal(model.decode(out.indices), model.decode_latents(out.quantized))
        projected = model.quantizer.projection(model.quantizer.codebook)[out.indices].permute(0, 3, 1, 2)
        assert torch.allclose(out.quantized, projected, atol=1e-6)
        basis_rows = model.quantizer.codebook[out.indices].permute(0, 3, 1, 2)  # what the official get_codebook_entry returns
        assert not torch.allclose(model.decode(out.indices), model.decode_latents(basis_rows), atol=1e-3)


def test_a_few_steps_lower_the_loss_and_leave_the_basis_alone():
    torch.manual_seed(0)
    model = tokenizers_zoo.create_model("simvq_tiny").train()
    basis = model.quantizer.codebook.clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.5, 0.9))
    batch, losses = images(), []
    for _ in range(6):
        step = model(batch)
        assert sorted(step.losses) == ["codebook", "commitment", "reconstruction"]
        optimizer.zero_grad()
        step.loss.backward()
        assert model.quantizer.projection.weight.grad.abs().sum() > 0 and model.quantizer.projection.bias.grad.abs().sum() > 0
        optimizer.step()
        losses.append(step.loss.item())
    assert losses[-1] < 0.9 * losses[0], losses
    assert torch.equal(model.quantizer.codebook, basis) and model.quantizer.codebook.grad is None


def official_simvq_checkpoint(path, ema=True, seed=0):
    """What youngsheen/SimVQ's VQModel saves (use_ema: true): official names, LitEma's dot-less copies, loss.*.

    Returns the models holding the live and the EMA weights.
    """
    torch.manual_seed(seed)
    live = tokenizers_zoo.create_model("simvq_tiny", **CONVERTER_ARCH, quantizer={"type": "projected", "codebook_size": 64}).eval()
    averaged = tokenizers_zoo.create_model("simvq_tiny", **CONVERTER_ARCH, quantizer={"type": "projected", "codebook_size": 64}).eval()
    official = {"quantizer.codebook": "quantize.embedding.weight", "quantizer.projection.weight": "quantize.embedding_proj.weight",
                "quantizer.projection.bias": "quantize.embedding_proj.bias"}
    statistics = ("quantizer.cluster_size", "quantizer.initialized")  # zoo-only buffers
    state = {official.get(k, k): v.clone() for k, v in live.state_dict().items() if k not in statistics}
    with torch.no_grad():
        averaged.quantizer.codebook.copy_(live.quantizer.codebook)  # the frozen basis is not averaged
        for name, parameter in averaged.named_parameters():
            parameter.add_(0.01 * torch.randn_like(parameter))  # an EMA that differs from the live weights
            if ema:
                state["model_ema." + official.get(name, name).replace(".", "")] = parameter.detach().clone()
    state["loss.discriminator.main.0.weight"] = torch.randn(64, 3, 4, 4)
    state["loss.discriminator.main.3.running_mean"] = torch.zeros(128)
    state["loss.perceptual_loss.lin0.model.1.weight"] = torch.randn(1, 64, 1, 1)
    state["loss.perceptual_loss.net.slice1.0.weight"] = torch.randn(64, 3, 3, 3)
    if ema:
        state["model_ema.lossdiscriminatormain0weight"] = torch.randn(64, 3, 4, 4)
        state["model_ema.decay"] = torch.tensor(0.999)
        state["model_ema.num_updates"] = torch.tensor(-1, dtype=torch.int32)
    assert {"quantize.embedding.weight", "encoder.mid_block.0.conv1.weight", "decoder.up.1.upsample.conv1.weight"} <= state.keys()
    torch.save({"state_dict": state, "epoch": 49, "global_step": 250250, "pytorch-lightning_version": "2.4.0"}, path)
    return live, averaged


def assert_same_outputs(model, reference):
    with torch.no_grad():
        expected, out = reference.encode(images()), model.encode(images())
        assert torch.equal(out.latents, expected.latents) and torch.equal(out.indices, expected.indices)
        assert torch.equal(model.decode(out.indices), reference.decode(expected.indices))


def test_official_checkpoint_converts_with_ema_or_live_weights(tmp_path, caplog):
    live, averaged = official_simvq_checkpoint(tmp_path / "last.ckpt")
    with caplog.at_level(logging.INFO, logger="tokenizers_zoo.converters.simvq"):
        model = tokenizers_zoo.convert_official(tmp_path / "last.ckpt", family="simvq")
    assert "loss.discriminator.* (2)" in caplog.text and "loss.perceptual_loss.* (2)" in caplog.text and "model_ema.* (3)" in caplog.text
    assert not model.training and model.config == averaged.config.replace(resolution=128, quantizer=model.config.quantizer)
    assert model.quantizer.codebook_size == 64 and model.config.num_res_blocks == 2 and model.config.ch_mult == (1, 2, 2)
    assert torch.equal(model.encoder.conv_in.weight, averaged.encoder.conv_in.weight)
    assert torch.equal(model.quantizer.projection.weight, averaged.quantizer.projection.weight)
    assert torch.equal(model.quantizer.codebook, live.quantizer.codebook)
    assert_same_outputs(model, averaged)

    model = tokenizers_zoo.convert_official(tmp_path / "last.ckpt", family="simvq", ema=False)
    assert torch.equal(model.decoder.conv_out.weight, live.decoder.conv_out.weight)
    assert_same_outputs(model, live)


def test_convert_command_and_the_official_yaml(tmp_path):
    live, averaged = official_simvq_checkpoint(tmp_path / "last.ckpt")
    config = {"model": {"class_path": "taming.models.vq.VQModel", "init_args": {"ddconfig": {"resolution": 256}}}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    command = ["convert", str(tmp_path / "last.ckpt"), "--family", "simvq"]
    assert main([*command, "-o", str(tmp_path / "zoo"), "--config", str(tmp_path / "config.yaml")]) == 0
    converted = tokenizers_zoo.from_pretrained(tmp_path / "zoo")
    assert converted.config.resolution == 256 and converted.input_spec.image_size == 256
    assert_same_outputs(converted, averaged)
    assert main([*command, "-o", str(tmp_path / "live"), "--no-ema"]) == 0
    assert_same_outputs(tokenizers_zoo.from_pretrained(tmp_path / "live"), live)


def test_detection_and_missing_ema(tmp_path, caplog):
    live, _ = official_simvq_checkpoint(tmp_path / "plain.ckpt", ema=False)
    checkpoint = torch.load(tmp_path / "plain.ckpt", weights_only=True)
    assert CONVERTERS["simvq"].detect(checkpoint)
    taming_layout = {"quantize.embedding.weight": torch.zeros(4, 2), "encoder.mid.block_1.conv1.weight": torch.zeros(1)}
    assert not CONVERTERS["simvq"].detect({"state_dict": taming_layout})
    with pytest.raises(tokenizers_zoo.CheckpointError, match="no EMA weights"):
        tokenizers_zoo.convert_official(tmp_path / "plain.ckpt", family="simvq", ema=True)
    with caplog.at_level(logging.INFO, logger="tokenizers_zoo.converters.simvq"):
        assert_same_outputs(tokenizers_zoo.convert_official(tmp_path / "plain.ckpt", family="simvq"), live)
    assert "using the live weights" in caplog.text

    official_simvq_checkpoint(tmp_path / "last.ckpt")
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=True)
    del checkpoint["state_dict"]["model_ema.quantizeembedding_projbias"]
    torch.save(checkpoint, tmp_path / "partial.ckpt")
    with pytest.raises(tokenizers_zoo.CheckpointError, match="model_ema.quantizeembedding_projbias"):
        tokenizers_zoo.convert_official(tmp_path / "partial.ckpt", family="simvq")
    checkpoint["state_dict"]["quantize.embedding_proj.bias"] = torch.zeros(3)  # strict: live tensors are checked too
    checkpoint["state_dict"]["colorize"] = torch.zeros(3, 5, 1, 1)
    torch.save(checkpoint, tmp_path / "damaged.ckpt")
    with pytest.raises(tokenizers_zoo.CheckpointError, match=r"(?s)unexpected keys.*colorize.*mis-shaped keys.*quantizer\.projection\.bias"):
        tokenizers_zoo.convert_official(tmp_path / "damaged.ckpt", family="simvq", ema=False)


def test_auto_detection_picks_simvq(tmp_path):
    official_simvq_checkpoint(tmp_path / "last.ckpt")
    assert isinstance(tokenizers_zoo.convert_official(tmp_path / "last.ckpt"), tokenizers_zoo.models.SimVQ)
