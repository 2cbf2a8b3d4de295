"""Converters: a synthetic checkpoint in the official taming-transformers layout converts to an identical model."""

import logging

import pytest
import torch
import yaml

import tokenizers_zoo
from tokenizers_zoo.cli import main
from tokenizers_zoo.converters import CONVERTERS
from tokenizers_zoo.converters.taming import infer_config

ARCH = dict(ch=32, ch_mult=(1, 2, 2), num_res_blocks=2, attn_resolutions=(64,), resolution=256, z_channels=16, embed_dim=4)


def official_taming_checkpoint(path, **overrides):
    """What CompVis' VQModel saves: a Lightning dict whose state_dict uses the official names, plus loss.*."""
    torch.manual_seed(0)
    model = tokenizers_zoo.create_model("vqvae_tiny", **{**ARCH, **overrides}, quantizer={"type": "vq", "codebook_size": 48})
    state = {("quantize.embedding.weight" if k == "quantizer.codebook" else k): v.clone() for k, v in model.state_dict().items()
             if not k.startswith("quantizer.") or k == "quantizer.codebook"}
    state["loss.discriminator.main.0.weight"] = torch.randn(64, 3, 4, 4)
    state["loss.perceptual_loss.lin0.model.1.weight"] = torch.randn(1, 64, 1, 1)
    torch.save({"state_dict": state, "epoch": 3, "global_step": 1000}, path)
    return model.eval()


def test_taming_checkpoint_converts_to_the_same_model(tmp_path, caplog):
    original = official_taming_checkpoint(tmp_path / "last.ckpt")
    with caplog.at_level(logging.INFO, logger="tokenizers_zoo.converters.taming"):
        model = tokenizers_zoo.convert_official(tmp_path / "last.ckpt")
    assert "loss.*" in caplog.text  # training-only weights are dropped and named
    assert not model.training and model.config.ch_mult == (1, 2, 2) and model.config.attn_resolutions == (64,)
    assert model.config.num_res_blocks == 2 and model.quantizer.codebook_size == 48 and model.config.embed_dim == 4
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected, out = original.encode(images), model.encode(images)
        assert torch.equal(out.indices, expected.indices) and torch.equal(out.latents, expected.latents)
        assert torch.equal(model.decode(out.indices), original.decode(expected.indices))


def test_convert_command_writes_a_loadable_folder(tmp_path, capsys):
    official_taming_checkpoint(tmp_path / "last.ckpt", attn_resolutions=(), ch_mult=(1, 1, 2))
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"model": {"params": {"ddconfig": {"resolution": 128}}}}))
    assert main(["convert", str(tmp_path / "last.ckpt"), "-o", str(tmp_path / "zoo"), "--config", str(tmp_path / "config.yaml")]) == 0
    converted = tokenizers_zoo.from_pretrained(tmp_path / "zoo")
    assert converted.config.resolution == 128 and converted.config.attn_resolutions == ()
    assert main(["convert", str(tmp_path / "last.ckpt"), "-o", str(tmp_path / "zoo")]) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "last.ckpt"), "-o", str(tmp_path / "zoo"), "--family", "taming", "--force"]) == 0
    assert "taming" in CONVERTERS


def test_taming_has_no_ema_and_mismatched_tensors_are_named(tmp_path):
    official_taming_checkpoint(tmp_path / "last.ckpt")
    with pytest.raises(ValueError, match="no EMA weights"):
        tokenizers_zoo.convert_official(tmp_path / "last.ckpt", ema=True)
    checkpoint = torch.load(tmp_path / "last.ckpt", weights_only=True)
    checkpoint["state_dict"]["decoder.conv_in.weight"] = torch.zeros(1)
    assert infer_config(checkpoint["state_dict"]).z_channels == 16
    torch.save(checkpoint, tmp_path / "damaged.ckpt")
    with pytest.raises(tokenizers_zoo.CheckpointError, match="mis-shaped keys.*decoder.conv_in.weight"):
        tokenizers_zoo.convert_official(tmp_path / "damaged.ckpt")


@pytest.mark.parametrize("name", ["vqgan_imagenet_f16_1024", "vqgan_imagenet_f16_16384", "vqgan_tiny"])
def test_registered_taming_vqgans_are_what_the_converter_infers(name):
    """The registered configs equal what the converter reads from official-layout tensors of that size."""
    with torch.device("meta"):
        model = tokenizers_zoo.create_model(name)
    state = {("quantize.embedding.weight" if k == "quantizer.codebook" else k): v for k, v in model.state_dict().items()
             if not k.startswith("quantizer.") or k == "quantizer.codebook"}
    official_yaml = {"model": {"params": {"ddconfig": {"resolution": model.config.resolution}}}}
    assert infer_config(state, official_yaml) == model.config
    assert tokenizers_zoo.model_info(name).license in ("mit", "apache-2.0")
