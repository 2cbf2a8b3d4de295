"""Configs round-trip through JSON; the registry lists, describes and builds models."""

import json

import pytest

import tokenizers_zoo
from tokenizers_zoo import registry
from tokenizers_zoo.config import ConfigError
from tokenizers_zoo.models import VQVAEConfig
from tokenizers_zoo.specs import spec_from_dict
from tokenizers_zoo.training import TrainConfig

from stand_ins import FrameAudioConfig, MeanGraphConfig


@pytest.mark.parametrize("config", [VQVAEConfig(), registry.model_config("vqvae_tiny"), FrameAudioConfig(), MeanGraphConfig(), TrainConfig()])
def test_configs_round_trip_through_json(config):
    restored = type(config).from_dict(json.loads(json.dumps(config.to_dict())))
    assert restored == config
    assert isinstance(getattr(restored, "ch_mult", ()), tuple)


def test_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="no field.*'chanels'"):
        VQVAEConfig.from_dict({"chanels": 3})
    with pytest.raises(ConfigError, match="no field"):
        VQVAEConfig().replace(depth=3)
    with pytest.raises(ValueError, match="reconstruction_loss"):
        VQVAEConfig(reconstruction_loss="lpips")


def test_input_specs_round_trip():
    for config in (VQVAEConfig(), FrameAudioConfig(), MeanGraphConfig()):
        spec = config.input_spec()
        assert spec_from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_list_models_with_wildcards_and_filters():
    assert "vqvae_tiny" in tokenizers_zoo.list_models()
    assert tokenizers_zoo.list_models("vqvae*") == ["vqvae_tiny"]
    assert tokenizers_zoo.list_models(["nothing*", "vqvae*"]) == ["vqvae_tiny"]
    assert "simvq_262k_imagenet128" in tokenizers_zoo.list_models("simvq*")
    assert tokenizers_zoo.list_models("nothing*") == []
    audio = tokenizers_zoo.list_models(modality="audio")
    assert "wavtokenizer_small_75" in audio and "vqvae_tiny" not in audio
    assert tokenizers_zoo.list_models("vqvae*", modality="image", pretrained=True) == ["vqvae_tiny"]


def test_model_info_metadata():
    info = tokenizers_zoo.model_info("vqvae_tiny")
    assert info.modality == "image" and info.codebook_size == 512 and info.license == "apache-2.0"
    assert info.tokens == "64 per 32x32 image"
    assert info.input_spec.size_multiple == 4 and info.weights == "bundled:vqvae_tiny"
    assert json.loads(json.dumps(info.to_dict()))["input_spec"]["modality"] == "image"


def test_create_model_with_overrides():
    model = tokenizers_zoo.create_model("vqvae_tiny", embed_dim=8, quantizer={"type": "vq", "codebook_size": 64})
    assert model.quantizer.codebook_size == 64 and model.quantizer.dim == 8
    assert model.model_name == "vqvae_tiny"
    with pytest.raises(ConfigError, match="no field"):
        tokenizers_zoo.create_model("vqvae_tiny", nonsense=1)
    with pytest.raises(KeyError, match="did you mean.*vqvae_tiny"):
        tokenizers_zoo.create_model("tiny")


def test_register_model_checks_its_input():
    info = tokenizers_zoo.model_info("vqvae_tiny")
    with pytest.raises(ValueError, match="already registered"):
        tokenizers_zoo.register_model(info, registry.model_config("vqvae_tiny"))
    with pytest.raises(TypeError, match="VQVAEConfig"):
        tokenizers_zoo.register_model(info, TrainConfig())
    with pytest.raises(ValueError, match="modality"):
        tokenizers_zoo.ModelInfo(**{**info.__dict__, "modality": "audio"})
    registry.register_model(tokenizers_zoo.ModelInfo(**{**info.__dict__, "name": "test_copy", "weights": None}), VQVAEConfig())
    try:
        assert tokenizers_zoo.list_models("*copy") == ["test_copy"]
        assert tokenizers_zoo.list_models("*copy", pretrained=True) == []
    finally:
        registry.unregister_model("test_copy")
