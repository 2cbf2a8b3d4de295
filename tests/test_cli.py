"""The tokenizers-zoo command: every subcommand, what decode agrees to load, and clear errors for bad input."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import tokenizers_zoo
from tokenizers_zoo import hub, token_file
from tokenizers_zoo.cli import main
from tokenizers_zoo.data import load_image
from tokenizers_zoo.data.signal_files import SIGNAL_FILES
from tokenizers_zoo.token_file import load_tokens

from conftest import CIFAR

CAT, DOG = CIFAR / "cat" / "0000.jpg", CIFAR / "dog" / "0001.jpg"


def tiny(codebook_size=300, seed=0):
    torch.manual_seed(seed)
    return tokenizers_zoo.create_model("vqvae_tiny", ch=32, z_channels=32, embed_dim=8, quantizer={"type": "vq", "codebook_size": codebook_size})


@pytest.fixture
def model_dir(tmp_path):
    tiny().save_pretrained(tmp_path / "model")
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
    made = load_tokens(tokens)
    assert [item["name"] for item in made.items] == ["0000.jpg", "0001.jpg"]
    assert made.codebook_size == 300 and made.index_layout == "[B, h, w]" and made.model == str(model_dir)
    assert made.tokens[0].shape == (8, 8) and made.tokens[0].dtype == torch.int64
    model = tokenizers_zoo.from_pretrained(model_dir)
    assert made.codebook_fingerprint == model.quantizer.codebook_fingerprint()
    with torch.no_grad():
        expected = model.encode(torch.stack([load_image(CAT), load_image(DOG)])).indices
    assert torch.equal(torch.stack(made.tokens), expected)

    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "out", "--model", model_dir)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0000.png", "0001.png"]
    with torch.no_grad():
        reference = model.decode(expected[:1])[0].clamp(-1, 1)
    decoded = load_image(tmp_path / "out" / "0000.png")
    assert (decoded - reference).abs().max() <= 1.01 / 127.5  # only the 8-bit rounding differs
    assert run(capsys, "decode", tokens, "-o", tmp_path / "out", "--model", model_dir)[0] == 1  # outputs exist
    assert run(capsys, "decode", tokens, "-o", tmp_path / "out", "--model", model_dir, "--force")[0] == 0


def test_encode_streams_in_batches_and_decode_keeps_the_folders(capsys, tmp_path, model_dir, monkeypatch):
    reads, encodes = [], []
    image = SIGNAL_FILES["image"]
    monkeypatch.setitem(SIGNAL_FILES, "image", type(image)(**{**image.__dict__, "read": lambda *a: reads.append(1) or image.read(*a)}))
    encode = tokenizers_zoo.models.VQVAE.encode
    monkeypatch.setattr(tokenizers_zoo.models.VQVAE, "encode", lambda self, x: encodes.append(len(reads)) or encode(self, x))
    tokens = tmp_path / "t.safetensors"
    assert run(capsys, "encode", model_dir, CIFAR, "-o", tokens, "--batch-size", "8")[0] == 0
    assert encodes[:3] == [8, 16, 24] and len(reads) == 100  # never more than one batch of images held
    monkeypatch.undo()
    assert run(capsys, "encode", model_dir, CIFAR, "-o", tmp_path / "all.safetensors", "--batch-size", "100")[0] == 0
    assert all(torch.equal(a, b) for a, b in zip(load_tokens(tokens).tokens, load_tokens(tmp_path / "all.safetensors").tokens))
    assert run(capsys, "decode", tokens, "-o", tmp_path / "all", "--model", model_dir)[0] == 0
    assert (tmp_path / "all" / "truck" / "0009.png").is_file() and len(list((tmp_path / "all").rglob("*.png"))) == 100
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left
    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "one.png", "--model", model_dir)
    assert code == 1 and "holds 100 items" in err
    assert run(capsys, "encode", model_dir, CIFAR / "cat" / "0001.jpg", CIFAR / "dog" / "0001.jpg", "-o", tokens, "--force")[0] == 0
    assert run(capsys, "decode", tokens, "-o", tmp_path / "same", "--model", model_dir)[0] == 0
    assert sorted(p.name for p in (tmp_path / "same").iterdir()) == ["0001.png", "0001_1.png"]  # same names, both kept
    assert run(capsys, "encode", model_dir, CAT, "-o", tokens, "--force")[0] == 0
    assert run(capsys, "decode", tokens, "-o", tmp_path / "one.png", "--model", model_dir)[0] == 0
    assert load_image(tmp_path / "one.png").shape == (3, 32, 32)


def test_deep_folder_names_keep_their_structure(capsys, tmp_path, model_dir):
    deep = tmp_path / "in" / ("a" * 120) / ("b" * 120) / ("c" * 120)
    deep.mkdir(parents=True)
    Image.open(CAT).save(deep / "cat.png")
    tokens = tmp_path / "t.safetensors"
    assert run(capsys, "encode", model_dir, tmp_path / "in", "-o", tokens)[0] == 0
    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "out", "--model", model_dir)
    assert code == 0, err
    assert (tmp_path / "out" / deep.relative_to(tmp_path / "in") / "cat.png").is_file()
    made = load_tokens(tokens)
    made.items[0]["name"] = "x" * 300 + ".png"
    token_file.save_tokens(tokens, made)
    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "long", "--model", model_dir)
    assert code == 1 and "over 255 bytes" in err and not (tmp_path / "long").exists()
    made.items[0]["name"] = "../escape.png"
    token_file.save_tokens(tokens, made)
    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "out2", "--model", model_dir)
    assert code == 1 and "not a relative path" in err and not (tmp_path / "escape.png").exists()


def test_encode_refuses_to_overwrite_an_input(capsys, tmp_path, model_dir):
    image = tmp_path / "cat.png"
    Image.open(CAT).save(image)
    original = image.read_bytes()
    for output in (image, tmp_path / "." / "cat.png"):
        code, _, err = run(capsys, "encode", model_dir, image, "-o", output, "--force")
        assert code == 1 and "is one of the inputs" in err
    code, _, err = run(capsys, "encode", model_dir, tmp_path, "-o", image, "--force")
    assert code == 1 and "is one of the inputs" in err
    assert image.read_bytes() == original


def test_decode_never_lets_the_file_choose_what_to_load(capsys, tmp_path, model_dir, monkeypatch):
    tokens = tmp_path / "t.safetensors"
    assert run(capsys, "encode", model_dir, CAT, "-o", tokens)[0] == 0
    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "out")
    assert code == 1 and "not a registered model" in err and "--model" in err  # a folder named in the header is not loaded
    made = load_tokens(tokens)
    made.model = "attacker/weights"
    token_file.save_tokens(tokens, made)
    monkeypatch.setattr(hub, "hf_hub_download", lambda *a, **k: pytest.fail("decode contacted the Hub"))
    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "out")
    assert code == 1 and "'attacker/weights', which is not a registered model" in err
    # a registered name is loaded, offline (bundled weights here)
    assert run(capsys, "encode", "vqvae_tiny", CAT, "-o", tmp_path / "b.safetensors")[0] == 0
    assert load_tokens(tmp_path / "b.safetensors").revision == f"bundled@{tokenizers_zoo.__version__}"
    code, _, err = run(capsys, "decode", tmp_path / "b.safetensors", "-o", tmp_path / "bundled")
    assert code == 0, err


def test_decode_refuses_another_codebook_unless_forced(capsys, tmp_path, model_dir):
    tokens = tmp_path / "t.safetensors"
    assert run(capsys, "encode", model_dir, CAT, "-o", tokens)[0] == 0
    tiny(seed=1).save_pretrained(tmp_path / "retrained")  # same sizes, other codes
    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "x.png", "--model", tmp_path / "retrained")
    assert code == 1 and "made with another codebook" in err and "--force" in err and not (tmp_path / "x.png").exists()
    with pytest.warns(UserWarning, match="decoding anyway"):
        assert run(capsys, "decode", tokens, "-o", tmp_path / "x.png", "--model", tmp_path / "retrained", "--force")[0] == 0
    tiny(codebook_size=512).save_pretrained(tmp_path / "other")
    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "y.png", "--model", tmp_path / "other")
    assert code == 1 and "the token file was made by" in err and "512" in err
    made = load_tokens(tokens)  # a version-1 file has no fingerprint
    made.codebook_fingerprint = None
    token_file.save_tokens(tokens, made)
    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "z.png", "--model", model_dir)
    assert code == 1 and "no codebook fingerprint" in err


def test_hostile_token_files_are_refused_before_any_work(capsys, tmp_path, model_dir):
    tokens = tmp_path / "t.safetensors"
    assert run(capsys, "encode", model_dir, CAT, "-o", tokens)[0] == 0
    made = load_tokens(tokens)
    made.tokens = [torch.zeros(1400, 1400, dtype=torch.int64)]  # 2 MB of uint16: a 5600 x 5600 decode, 2M attention positions
    token_file.save_tokens(tokens, made)
    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "big", "--model", model_dir)
    assert code == 1 and "self-attention over 1,960,000 positions" in err
    made.tokens = [torch.zeros(0, 0, dtype=torch.int64)]
    token_file.save_tokens(tokens, made)
    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "empty", "--model", model_dir)
    assert code == 1 and "empty" in err
    made.tokens = [torch.zeros(64, dtype=torch.int64)]  # a flat sequence where a grid belongs
    token_file.save_tokens(tokens, made)
    code, _, err = run(capsys, "decode", tokens, "-o", tmp_path / "flat", "--model", model_dir)
    assert code == 1 and "indices must have 3 dims ([B, h, w])" in err


def test_eval_reports_quality_and_usage(capsys, tmp_path, model_dir):
    code, out, err = run(capsys, "eval", model_dir, CIFAR, "--limit", "20", "--save-reconstructions", tmp_path / "rec")
    assert code == 0, err
    result = json.loads(out)
    assert result["items"] == 20 and result["codebook_size"] == 300
    assert 0 < result["codebook_usage"] <= 1 and result["psnr"] > 0
    assert sorted(p.relative_to(tmp_path / "rec").as_posix() for p in (tmp_path / "rec").rglob("*.png"))[:2] == ["airplane/0000.png", "airplane/0001.png"]
    weights = hub.read_checkpoint(model_dir / "model.safetensors")
    weights["decoder.conv_out.bias"][0] = float("nan")
    save_file(weights, model_dir / "model.safetensors", metadata={"format": "pt"})
    code, out, err = run(capsys, "eval", model_dir, CIFAR, "--limit", "4")
    assert code == 1 and out == "" and "non-finite tensors (NaN or inf)" in err and "decoder.conv_out.bias" in err


def test_convert_command_uses_the_converter_registry(capsys, tmp_path):
    code, _, err = run(capsys, "convert", tmp_path / "missing.ckpt", "-o", tmp_path / "out")
    assert code == 1 and "no checkpoint file" in err
    torch.save({"state_dict": {"x": torch.zeros(1)}}, tmp_path / "unknown.ckpt")
    code, _, err = run(capsys, "convert", tmp_path / "unknown.ckpt", "-o", tmp_path / "out")
    assert code == 1 and "no registered converter recognises it" in err
    code, _, err = run(capsys, "convert", tmp_path / "unknown.ckpt", "-o", tmp_path / "out", "--family", "nope")
    assert code == 1 and "no converter for family 'nope'" in err


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["encode", "{model}", "{tmp}/missing.png", "-o", "{tmp}/t.safetensors"], "no file or folder"),
        (["encode", "{model}", "{tmp}/broken.png", "-o", "{tmp}/t.safetensors"], "not a readable image"),
        (["encode", "{tmp}/nowhere", CAT, "-o", "{tmp}/t.safetensors"], "not a folder, a registered model, or a Hub repo id"),
        (["encode", "{model}", CAT, "-o", "{tmp}"], "is a folder; give the file to write"),
        (["encode", "{model}", CAT, "-o", "{tmp}/exists.safetensors"], "exists; pass --force"),
        (["encode", "{model}", CAT, "-o", "{tmp}/t.safetensors", "--device", "bogus"], "is not a device name"),
        (["encode", "{model}", CAT, "-o", "{tmp}/t.safetensors", "--device", "cuda:0"], "no CUDA GPU"),
        (["encode", "{model}", CAT, "-o", "{tmp}/t.safetensors", "--batch-size", "0"], "--batch-size must be positive"),
        (["encode", "{model}", "{tmp}/bomb.png", "-o", "{tmp}/t.safetensors"], "decompression bomb"),
        (["decode", "{tmp}/absent.safetensors", "-o", "{tmp}/out"], "no token file"),
        (["decode", "{tmp}/broken.png", "-o", "{tmp}/out"], "not a readable safetensors file"),
        (["decode", "{tmp}/other.safetensors", "-o", "{tmp}/out"], "not a tokenizers_zoo token file"),
        (["eval", "{model}", CIFAR, "--device", "cuda"], "no CUDA GPU"),
    ],
)
def test_clear_errors(capsys, tmp_path, model_dir, monkeypatch, arguments, message):
    if torch.cuda.is_available() and "cuda" in " ".join(map(str, arguments)):
        pytest.skip("this machine has a GPU")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    (tmp_path / "exists.safetensors").write_bytes(b"keep me")
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(tmp_path / "bomb.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    save_file({"x": torch.zeros(2)}, tmp_path / "other.safetensors")
    filled = [str(a).format(model=model_dir, tmp=tmp_path) for a in arguments]
    code, _, err = run(capsys, *filled)
    assert code == 1 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "t.safetensors").exists() and (tmp_path / "exists.safetensors").read_bytes() == b"keep me"


def test_module_entry_point():
    result = subprocess.run([sys.executable, "-m", "tokenizers_zoo", "list", "vqvae*"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "vqvae_tiny" in result.stdout
    result = subprocess.run([sys.executable, "-m", "tokenizers_zoo", "frobnicate"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "invalid choice" in result.stderr
