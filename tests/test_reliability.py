"""Data-loss and silent-wrong-result defects: folders swapped whole, checkpoints that are not what they say,
attention that would never finish, official files that need unpickling."""

import argparse
import os

import pytest
import torch
from safetensors.torch import load_file, save_file

import tokenizers_zoo
from tokenizers_zoo import CheckpointError, atomic, hub
from tokenizers_zoo.converters import CONVERTERS, Converter, convert_official, register_converter
from tokenizers_zoo.networks import attention
from tokenizers_zoo.networks.blocks import AttnBlock

SMALL = dict(ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(), resolution=16, z_channels=32, embed_dim=8)


def tiny(seed=0, **overrides):
    torch.manual_seed(seed)
    return tokenizers_zoo.create_model("vqvae_tiny", **{**SMALL, **overrides})


def test_save_pretrained_switches_the_folder_as_a_whole(tmp_path, monkeypatch):
    folder = tmp_path / "model"
    tiny(0).save_pretrained(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def crash_after_the_config(*args, **kwargs):
        raise KeyboardInterrupt  # killed between the config and the weights

    monkeypatch.setattr(hub, "save_file", crash_after_the_config)
    with pytest.raises(KeyboardInterrupt):
        tiny(1, embed_dim=4).save_pretrained(folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging folder left
    monkeypatch.undo()
    for exchange in (True, False):  # renameat2 swap, and the two-rename fallback
        if not exchange:
            monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
        tiny(2).save_pretrained(folder)
        assert torch.equal(tokenizers_zoo.from_pretrained(folder).encoder.conv_in.weight, tiny(2).encoder.conv_in.weight)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"holds files that are not part of a saved model \(notes.txt\)"):
        tiny(3).save_pretrained(folder)
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda w: w.update({"quantizer.codebook": w["quantizer.codebook"].to(torch.int32)}), "mis-typed keys.*quantizer.codebook: checkpoint torch.int32 vs model torch.float32"),
        (lambda w: w["encoder.conv_in.weight"].view(-1)[0].fill_(float("inf")), r"non-finite tensors \(NaN or inf\).*encoder.conv_in.weight"),
    ],
)
def test_checkpoints_are_not_cast_or_loaded_with_non_finite_values(tmp_path, damage, message):
    tiny().save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    damage(weights)
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=message):
        tokenizers_zoo.from_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="strict=False"):
        tokenizers_zoo.from_pretrained(tmp_path, strict=False)


def test_attention_is_chunked_over_queries(monkeypatch):
    block = AttnBlock(32)
    x = torch.randn(2, 32, 12, 10)
    whole = block(x)
    monkeypatch.setattr(attention, "_MAX_SCORE_ELEMENTS", 2 * 120 * 7)  # 7 queries per chunk
    torch.testing.assert_close(block(x), whole, rtol=1e-5, atol=1e-6)


def test_huge_images_are_refused_before_any_work(monkeypatch):
    model = tokenizers_zoo.from_pretrained("vqvae_tiny")
    big = torch.zeros(1, 3, 4096, 4096)
    calls = []
    monkeypatch.setattr(model.encoder, "forward", lambda *a, **k: calls.append(1))
    with pytest.raises(ValueError, match=r"a 4096x4096 image needs self-attention over 1,048,576 positions, above the limit of 65,536"):
        model.encode(big)
    assert not calls
    monkeypatch.setenv("TOKENIZERS_ZOO_MAX_ATTENTION_POSITIONS", str(2**20))
    model.validate_input(big, {})  # the limit can be raised
    monkeypatch.setenv("TOKENIZERS_ZOO_MAX_ATTENTION_POSITIONS", "lots")
    with pytest.raises(ValueError, match="must be a positive integer"):
        model.validate_input(big, {})


def test_convert_official_reads_tensors_only_unless_trusted(tmp_path):
    source = tiny()
    state = {"state_dict": {f"model.{k}": v for k, v in source.state_dict().items()}}
    register_converter(Converter(
        family="test_prefixed",
        description="a zoo VQ-VAE saved under 'model.'",
        detect=lambda checkpoint: "state_dict" in checkpoint and any(k.startswith("model.") for k in checkpoint["state_dict"]),
        convert=lambda checkpoint, config, ema: _load_prefixed(checkpoint),
    ))
    try:
        torch.save(state, tmp_path / "plain.ckpt")
        converted = convert_official(tmp_path / "plain.ckpt")
        assert not converted.training and torch.equal(converted.decoder.conv_out.weight, source.decoder.conv_out.weight)
        torch.save({**state, "args": argparse.Namespace(embed_dim=8)}, tmp_path / "pickled.ckpt")
        with pytest.raises(CheckpointError, match="stores Python objects besides tensors.*trust_pickle=True"):
            convert_official(tmp_path / "pickled.ckpt")
        with pytest.warns(UserWarning, match="unpickling"):
            assert convert_official(tmp_path / "pickled.ckpt", trust_pickle=True).config == source.config
        (tmp_path / "broken.ckpt").write_bytes(b"PK\x03\x04 not really a zip")
        with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
            convert_official(tmp_path / "broken.ckpt")
        with pytest.raises(KeyError, match="no converter for family 'nope'"):
            convert_official(tmp_path / "plain.ckpt", family="nope")
    finally:
        CONVERTERS.pop("test_prefixed")


def _load_prefixed(checkpoint):
    model = tiny()
    hub.load_state_dict_checked(model, {k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items()}, "test")
    return model


def test_atomic_write_leaves_nothing_behind(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def fail(path):
        path.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic.atomic_write(target, fail)
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["file.bin"]


def test_written_files_and_folders_get_the_usual_modes(tmp_path):
    """Temporary files are private while written; what lands has the mode a plain write would give."""
    mask = os.umask(0o022)
    try:
        atomic.atomic_write(tmp_path / "f.bin", lambda path: path.write_bytes(b"x"))
        tiny().save_pretrained(tmp_path / "model")
    finally:
        os.umask(mask)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "model").stat().st_mode & 0o777 == 0o755
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in (tmp_path / "model").iterdir())
