"""save_pretrained / from_pretrained / push_to_hub: round trips, the HF cache offline, strict errors."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from huggingface_hub import ModelCard
from safetensors.torch import load_file, save_file

import tokenizers_zoo
from tokenizers_zoo import CheckpointError, hub
from tokenizers_zoo.config import ConfigError

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def small_model(**overrides):
    options = {"ch": 32, "z_channels": 32, "embed_dim": 8, "quantizer": {"type": "vq", "codebook_size": 64, "ema": True}}
    model = tokenizers_zoo.create_model("vqvae_tiny", **{**options, **overrides})
    model.train()(torch.rand(2, 3, 16, 16) * 2 - 1)  # move the EMA buffers away from their initial values
    return model.eval()


def test_save_load_round_trip_is_bit_exact(tmp_path):
    model = small_model()
    model.save_pretrained(tmp_path / "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = tokenizers_zoo.from_pretrained(tmp_path / "a")
    assert type(loaded) is type(model) and loaded.config == model.config and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    loaded.save_pretrained(tmp_path / "b")
    for name in ("model.safetensors", "config.json", "README.md"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    assert torch.equal(model.encode(x).indices, loaded.encode(x).indices)


def test_config_json_and_model_card(tmp_path):
    model = small_model()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["architecture"] == "vqvae" and config["model_name"] == "vqvae_tiny"
    assert config["_zoo_version"] == tokenizers_zoo.__version__ and config["embed_dim"] == 8
    card = ModelCard.load(tmp_path / "README.md")
    assert card.data.library_name == "tokenizers-zoo" and card.data.license == "apache-2.0"
    assert card.data.pipeline_tag == "image-to-image" and card.data.datasets == ["cifar10"]
    assert {"image-tokenization", "vector-quantization", "arxiv:1711.00937"} <= set(card.data.tags)
    assert "64 codes of dimension 8" in card.text and 'from_pretrained("vqvae_tiny")' in card.text


def _populate_hf_cache(cache: Path, repo_id: str, folder: Path, commit: str, refs: tuple[str, ...]) -> None:
    """Lay ``folder`` out the way huggingface_hub caches a repo: blobs by hash, snapshot links, refs."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for path in folder.iterdir():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        shutil.copy(path, repo / "blobs" / digest)
        os.symlink(f"../../blobs/{digest}", snapshot / path.name)
    for ref in refs:
        (repo / "refs" / ref).write_text(commit)


def test_loads_from_the_hf_cache_offline(tmp_path):
    model = small_model()
    model.save_pretrained(tmp_path / "saved")
    cache = tmp_path / "cache"
    _populate_hf_cache(cache, "zoo-test/tiny", tmp_path / "saved", COMMIT, refs=("main", "v1"))
    for revision in (None, "v1", COMMIT):
        loaded = tokenizers_zoo.from_pretrained("zoo-test/tiny", revision=revision, cache_dir=cache, local_files_only=True)
        assert torch.equal(loaded.quantizer.codebook, model.quantizer.codebook)
    loaded = tokenizers_zoo.from_pretrained(f"zoo-test/tiny@{COMMIT}", cache_dir=cache, local_files_only=True)
    assert loaded.config == model.config
    with pytest.raises(FileNotFoundError, match="not in the local Hugging Face cache"):
        tokenizers_zoo.from_pretrained("zoo-test/tiny", revision="v2", cache_dir=cache, local_files_only=True)


@pytest.mark.slow
def test_hf_hub_offline_environment(tmp_path):
    """With HF_HUB_OFFLINE=1 and HF_HUB_CACHE set (as on a machine without network), a Hub id loads from the cache."""
    small_model().save_pretrained(tmp_path / "saved")
    _populate_hf_cache(tmp_path / "cache", "zoo-test/tiny", tmp_path / "saved", COMMIT, refs=("main",))
    code = (
        "import tokenizers_zoo\n"
        "m = tokenizers_zoo.from_pretrained('zoo-test/tiny')\n"
        "print(type(m).__name__, m.quantizer.codebook_size)\n"
        "try:\n    tokenizers_zoo.from_pretrained('zoo-test/absent')\n"
        "except FileNotFoundError as e:\n    print('missing:', 'cache' in str(e))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[:2] == ["VQVAE 64", "missing: True"]


def test_mismatched_checkpoint_lists_every_problem(tmp_path):
    small_model().save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    weights["quantizer.codebook"] = torch.zeros(128, 8)
    weights["extra.weight"] = torch.zeros(1)
    del weights["decoder.conv_out.bias"]
    save_file(weights, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError) as error:
        tokenizers_zoo.from_pretrained(tmp_path)
    message = str(error.value)
    assert "missing keys (1): decoder.conv_out.bias" in message
    assert "unexpected keys (1): extra.weight" in message
    assert "quantizer.codebook: checkpoint [128, 8] vs model [64, 8]" in message
    with pytest.warns(UserWarning, match="strict=False"):
        loaded = tokenizers_zoo.from_pretrained(tmp_path, strict=False)
    assert torch.equal(loaded.encoder.conv_in.weight, weights["encoder.conv_in.weight"])


def test_config_that_does_not_fit_the_weights(tmp_path):
    small_model().save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["ch"] = 64
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="mis-shaped keys"):
        tokenizers_zoo.from_pretrained(tmp_path)


def test_corrupt_and_missing_files(tmp_path):
    small_model().save_pretrained(tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        tokenizers_zoo.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        tokenizers_zoo.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"ch": 32}))
    with pytest.raises(ConfigError, match="no 'architecture'"):
        tokenizers_zoo.from_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="has no model.safetensors"):
        tokenizers_zoo.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="not a folder, a registered model, or a Hub repo id"):
        tokenizers_zoo.from_pretrained("no such thing")


def test_failed_save_leaves_previous_files_untouched(tmp_path, monkeypatch):
    model = small_model()
    model.save_pretrained(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(hub, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        small_model(ch=64).save_pretrained(tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


class FakeHfApi:
    """Records what push_to_hub asks of the Hub."""

    def __init__(self):
        self.created, self.uploaded = None, None

    def create_repo(self, repo_id, **kwargs):
        self.created = (repo_id, kwargs)

    def upload_folder(self, repo_id, folder_path, **kwargs):
        self.uploaded = (repo_id, {p.name: p.read_bytes() for p in Path(folder_path).iterdir()}, kwargs)
        return "commit-url"


def test_push_to_hub_uploads_exactly_the_saved_folder(tmp_path):
    model, api = small_model(), FakeHfApi()
    assert model.push_to_hub("zoo-test/pushed", private=True, revision="dev", api=api) == "commit-url"
    model.save_pretrained(tmp_path)
    repo_id, files, options = api.uploaded
    assert api.created == ("zoo-test/pushed", {"private": True, "exist_ok": True, "token": None})
    assert repo_id == "zoo-test/pushed" and options["revision"] == "dev"
    assert files == {p.name: p.read_bytes() for p in tmp_path.iterdir()}
