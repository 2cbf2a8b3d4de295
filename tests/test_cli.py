"""The tokenizers-zoo command: every subcommand, and clear errors for bad paths and token files."""

import json
import subprocess
import sys

import pytest
import torch
from safetensors.torch import save_file

import tokenizers_zoo
from tokenizers_zoo.cli import main
from tokenizers_zoo.data import load_image
from tokenizers_zoo.token_file import load_tokens

from conftest import CIFAR

CAT, DOG = CIFAR / "cat" / "0000.jpg", CIFAR / "dog" / "0001.jpg"


@pytest.fixture
def model_dir(tmp_path):
    model = tokenizers_zoo.create_model(
        "vqvae_tiny", ch=32, z_channels=32, embed_dim=8, quantizer={"type": "vq", "codebook_size": 300}
    )
    model.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_and_info(capsys):
    code, out, _ = run(capsys, "list")
    assert code == 0 and out.splitlines()[0].split() == ["name", "modality", "codebook", "tokens", "license", "weights"]
    assert any(line.startswith("vqvae_tiny ") for line in out.splitlines())
    code, out, _ = run(capsys, "list", "nothing*")
    assert code == 0 and len(out.splitlines()) == 1
    code, out, _ = run(capsys, "info", "vqvae_tiny")
    assert code == 0 and json.loads(out)["codebook_size"] == 512
    code, _, err = run(capsys, "info", "vqvae_huge")
    assert code == 1 and "no registered model named 'vqvae_huge'" in err


def test_encode_decode_round_trip(capsys, tmp_path, model_dir):
    tokens = tmp_path / "tokens.safetensors"
    code, out, err = run(capsys, "encode", model_dir, CAT, DOG, "-o", tokens)
    assert code == 0, err
    token_file = load_tokens(tokens)
    assert [item["name"] for item in token_file.items] == ["0000.jpg", "0001.jpg"]
    assert token_file.codebook_size == 300 and token_file.index_layout == "[B, h, w]"
    assert token_file.tokens[0].shape == (8, 8) and token_file.tokens[0].dtype == torch.int64

    model = tokenizers_zoo.from_pretrained(model_dir)
    with torch.no_grad():
        expected = model.encode(torch.stack([load_image(CAT), load_image(DOG)])).indices
    assert torch.equal(torch.stack(token_file.tokens), expected)

    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "out")
    assert code == 0, err
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == ["0000_0000.png", "0001_0001.png"]
    with torch.no_grad():
        reference = model.decode(expected[:1])[0].clamp(-1, 1)
    decoded = load_image(tmp_path / "out" / "0000_0000.png")
    assert (decoded - reference).abs().max() <= 1.01 / 127.5  # only the 8-bit rounding differs


def test_encode_folder_and_decode_one_file(capsys, tmp_path, model_dir):
    tokens = tmp_path / "t.safetensors"
    assert run(capsys, "encode", model_dir, CIFAR, "-o", tokens)[0] == 0
    names = [item["name"] for item in load_tokens(tokens).items]
    assert len(names) == 100 and names[:2] == ["airplane/0000.jpg", "airplane/0001.jpg"]
    assert run(capsys, "decode", tokens, "-o", tmp_path / "all")[0] == 0
    assert (tmp_path / "all" / "0099_truck_0009.png").is_file()
    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "one.png")
    assert code == 1 and "holds 100 items" in err
    assert run(capsys, "encode", model_dir, CIFAR / "cat" / "0001.jpg", CIFAR / "dog" / "0001.jpg", "-o", tokens)[0] == 0
    assert [item["name"] for item in load_tokens(tokens).items] == ["0001.jpg", "0001.jpg"]  # same names, both kept
    assert run(capsys, "encode", model_dir, CAT, "-o", tokens)[0] == 0
    assert run(capsys, "decode", tokens, "-o", tmp_path / "one.png")[0] == 0
    assert load_image(tmp_path / "one.png").shape == (3, 32, 32)


def test_eval_reports_psnr_and_usage(capsys, tmp_path, model_dir):
    code, out, err = run(capsys, "eval", model_dir, CIFAR, "--limit", "20", "--save-reconstructions", tmp_path / "rec")
    assert code == 0, err
    result = json.loads(out)
    assert result["images"] == 20 and result["codebook_size"] == 300
    assert 0 < result["codebook_usage"] <= 1 and result["psnr_db"] > 0
    assert sorted(p.name for p in (tmp_path / "rec").iterdir())[:2] == ["airplane_0000.png", "airplane_0001.png"]
    assert len(list((tmp_path / "rec").iterdir())) == 20


def test_clear_errors(capsys, tmp_path, model_dir):
    code, _, err = run(capsys, "encode", model_dir, tmp_path / "missing.png", "-o", tmp_path / "t.safetensors")
    assert code == 1 and "no image file or folder" in err
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    code, _, err = run(capsys, "encode", model_dir, broken, "-o", tmp_path / "t.safetensors")
    assert code == 1 and "not a readable image" in err
    code, _, err = run(capsys, "encode", tmp_path / "nowhere", CAT, "-o", tmp_path / "t.safetensors")
    assert code == 1 and "not a folder, a registered model, or a Hub repo id" in err
    code, _, err = run(capsys, "decode", tmp_path / "absent.safetensors", "-o", tmp_path)
    assert code == 1 and "no token file" in err
    broken.write_bytes(b"\x00" * 50)
    code, _, err = run(capsys, "decode", broken, "-o", tmp_path)
    assert code == 1 and "not a readable safetensors file" in err
    save_file({"x": torch.zeros(2)}, tmp_path / "other.safetensors")
    code, _, err = run(capsys, "decode", tmp_path / "other.safetensors", "-o", tmp_path)
    assert code == 1 and "not a tokenizers_zoo token file" in err
    assert not (tmp_path / "t.safetensors").exists()  # failed commands write nothing


def test_token_file_from_another_model_is_refused(capsys, tmp_path, model_dir):
    tokens = tmp_path / "tokens.safetensors"
    assert run(capsys, "encode", model_dir, CAT, "-o", tokens)[0] == 0
    other = tokenizers_zoo.create_model("vqvae_tiny", ch=32, z_channels=32, embed_dim=8)
    other.save_pretrained(tmp_path / "other")
    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "x.png", "--model", tmp_path / "other")
    assert code == 1 and "the token file was made by" in err and "512" in err


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "tokenizers_zoo", "list", "vqvae*"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "vqvae_tiny" in result.stdout
    result = subprocess.run([sys.executable, "-m", "tokenizers_zoo", "frobnicate"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "invalid choice" in result.stderr
