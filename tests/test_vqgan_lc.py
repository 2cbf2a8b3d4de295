"""VQGAN-LC: the registered entries, the LC quantizer, the official decode path, folding, the codebook builder
and the converter from a synthetic checkpoint in the official layout."""

import argparse
import logging

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import tokenizers_zoo
from tokenizers_zoo import registry
from tokenizers_zoo.cli import main
from tokenizers_zoo.converters import CONVERTERS
from tokenizers_zoo.converters.vqgan_lc import RENAMES, infer_config
from tokenizers_zoo.quantizers import LCQuantizer, ProjectedQuantizer, VectorQuantizer, build_quantizer, kmeans
from tokenizers_zoo.training.codebook import build_codebook, fold_projected, load_encoder, patch_features

from conftest import CIFAR

timm = pytest.importorskip("timm")

RELEASES = {  # name: (codes, code dim, tokens per 256 px image)
    "vqgan_lc_f16_100k_dim8": (100_000, 8, 256),
    "vqgan_lc_f8_100k_dim4": (100_000, 4, 1024),
    "vqgan_lc_f16_16k_dim8": (16_384, 8, 256),
}


def official_names(state):
    """Zoo keys -> the official VQModel keys (the quantizer's statistics buffers are not in official files)."""
    inverse = {zoo: official for official, zoo in RENAMES.items()}
    return {inverse.get(k, k): v for k, v in state.items() if not k.startswith("quantizer.") or k in inverse}


@pytest.mark.parametrize("name", sorted(RELEASES))
def test_released_entries_build_at_full_size_on_the_meta_device(name):
    codes, dim, tokens = RELEASES[name]
    with torch.device("meta"):
        model = tokenizers_zoo.create_model(name)
    q = model.quantizer
    assert isinstance(q, LCQuantizer) and q.codebook.shape == (codes, 768) and q.codebook.is_meta
    assert "codebook" in dict(q.named_buffers()) and [n for n, _ in q.named_parameters()] == ["projection.weight", "projection.bias"]
    assert (q.projection.in_features, q.projection.out_features) == (768, dim) and model.config.embed_dim == dim
    assert model.quant_conv.out_channels == dim and model.post_quant_conv.in_channels == dim
    info = registry.model_info(name)
    assert info.codebook_size == codes and info.tokens_per_item == tokens and info.weights is None
    assert info.license == "unknown" and "no licence file" in info.description and "arxiv.org/abs/2406.11837" in info.paper_url
    assert "drive.google.com" in info.official_weights and "unofficial" in info.official_weights and "rfid_imagenet_val_256" in info.metrics
    assert infer_config(official_names(model.state_dict())) == model.config  # what the converter reads from a release


def test_lc_quantizer_has_the_official_init_and_loss_weights():
    q = build_quantizer({"type": "lc", "codebook_size": 4096}, 8)
    assert isinstance(q, LCQuantizer) and (q.beta, q.codebook_weight, q.metric, q.table_dim) == (0.1, 0.033, "l2", 768)
    assert abs(float(q.projection.weight.detach().std()) / 8**-0.5 - 1) < 0.05  # N(0, e^-0.5) over 768 x 8 draws
    assert float(q.projection.bias.detach().abs().max()) <= 768**-0.5  # nn.Linear's default bias init
    z = torch.randn(2, 8, 4, 4)
    out = q.train()(z)
    vectors = z.movedim(1, -1).reshape(-1, 8)
    codes = F.embedding(out.indices.reshape(-1), q.get_codebook())
    torch.testing.assert_close(out.losses["commitment"], 0.1 * ((codes.detach() - vectors) ** 2).mean())
    torch.testing.assert_close(out.losses["codebook"], 0.033 * ((codes - vectors.detach()) ** 2).mean())
    official = 0.1 * (torch.mean((codes.detach() - vectors) ** 2) + 0.33 * torch.mean((codes - vectors.detach()) ** 2))
    torch.testing.assert_close(out.loss, official)  # rate_q * (commit + 0.33 codebook), models_vq.py quantize()


def test_only_the_projector_learns(cifar_images):
    model = tokenizers_zoo.create_model("vqgan_lc_tiny").train()
    table = model.quantizer.codebook.clone()
    weight = model.quantizer.projection.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    out = model(cifar_images[:8])
    assert sorted(out.losses) == ["codebook", "commitment", "reconstruction"]
    out.loss.backward()
    assert model.quantizer.projection.weight.grad.abs().sum() > 0 and model.quantizer.codebook.grad is None
    optimizer.step()
    assert torch.equal(model.quantizer.codebook, table) and not torch.equal(model.quantizer.projection.weight, weight)


def test_decode_follows_the_official_indices_to_image_path(cifar_images):
    model = tokenizers_zoo.create_model("vqgan_lc_tiny").eval()
    images = cifar_images[:8]
    with torch.no_grad():
        out = model.encode(images)
        assert out.indices.shape == (8, 8, 8) and out.indices.dtype == torch.int64
        assert torch.equal(out.latents, model.quant_conv(model.encoder(images)))
        q = model.quantizer
        codes = F.embedding(out.indices, q.projection(q.codebook)).permute(0, 3, 1, 2)  # models_gpt.py z_to_image
        expected = model.decoder(model.post_quant_conv(codes))
        decoded = model.decode(out.indices)
        torch.testing.assert_close(decoded, expected, rtol=0, atol=1e-6)
        assert decoded.shape == images.shape and torch.equal(decoded, model.decode_latents(out.quantized))


@pytest.mark.parametrize("quantizer", [None, {"type": "projected", "codebook_size": 64, "table_dim": 16, "groups": 2}])
def test_fold_projected_gives_the_same_tokens_and_images(cifar_images, quantizer):
    model = tokenizers_zoo.create_model("vqgan_lc_tiny", **({"quantizer": quantizer} if quantizer else {})).eval()
    folded = fold_projected(model)
    assert not any(isinstance(m, ProjectedQuantizer) for m in folded.modules()) and not folded.training
    assert not any("projection" in key for key in folded.state_dict()) and folded.config.quantizer["type"] == "vq"
    inner = folded.quantizer if quantizer is None else folded.quantizer.quantizers[0]
    assert isinstance(inner, VectorQuantizer) and inner.codebook.shape == ((1024, 8) if quantizer is None else (64, 4))
    with torch.no_grad():
        a, b = model.encode(cifar_images[:16]), folded.encode(cifar_images[:16])
        assert torch.equal(a.indices, b.indices) and torch.equal(model.decode(a.indices), folded.decode(b.indices))
    with pytest.raises(ValueError, match="no projected table"):
        fold_projected(tokenizers_zoo.create_model("vqvae_tiny"))


def tiny_vit():
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=8, depth=2)


def pooled_tokens(encoder, images, pool):
    """The official recipe by hand: normalised images -> patch tokens on their grid -> pool x pool means."""
    mean, std = (torch.tensor(encoder.pretrained_cfg[key]).view(1, 3, 1, 1) for key in ("mean", "std"))
    with torch.no_grad():
        tokens = encoder.eval().forward_features(((images + 1) / 2 - mean) / std)[:, encoder.num_prefix_tokens:]
    grid = tokens.transpose(1, 2).reshape(len(images), -1, 4, 4)
    return F.avg_pool2d(grid, pool).flatten(2).transpose(1, 2).reshape(-1, grid.shape[1])


@pytest.mark.slow
def test_build_codebook_is_seeded_kmeans_of_pooled_patch_features(cifar_images):
    encoder = tiny_vit()
    features = pooled_tokens(encoder, cifar_images, 2)
    assert torch.equal(patch_features(cifar_images, encoder, pool=2, batch_size=100), features)
    codebook = build_codebook(CIFAR, encoder, 32, pool=2, batch_size=100)
    assert codebook.shape == (32, 192)
    assert torch.equal(codebook, kmeans(features, 32, 10, generator=torch.Generator().manual_seed(0)))
    generator = torch.Generator().manual_seed(0)  # per class: 10 sub-folders of 10 images, 2 centroids each
    expected = [kmeans(pooled_tokens(encoder, cifar_images[i : i + 10], 2), 2, 10, generator=generator) for i in range(0, 100, 10)]
    assert torch.equal(build_codebook(CIFAR, encoder, 20, pool=2, per_class=True), torch.cat(expected))
    assert patch_features(cifar_images[:2], encoder, pool=4, project=True).shape == (2, encoder.head.out_features)
    resnet = timm.create_model("resnet18", pretrained=False)
    assert patch_features(F.interpolate(cifar_images[:3], size=64), resnet, pool=2).shape == (3, 512)  # 2x2 map -> 1 cell
    with pytest.raises(ValueError, match="cannot take 64x64 images"):
        patch_features(F.interpolate(cifar_images[:1], size=64), encoder)
    with pytest.raises(ValueError, match="192 dims but the table has 64"):
        build_codebook(CIFAR, encoder, 32, pool=2, feature_dim=64)
    with pytest.raises(ValueError, match="cannot be split evenly over 10"):
        build_codebook(CIFAR, encoder, 25, per_class=True)


@pytest.mark.slow
def test_build_codebook_and_fold_commands_write_loadable_folders(tmp_path, capsys, caplog, cifar_images):
    source = tmp_path / "lc512"
    tokenizers_zoo.create_model("vqgan_lc_tiny", quantizer={"type": "lc", "codebook_size": 64, "table_dim": 512}).save_pretrained(source)
    weights = tmp_path / "resnet18.safetensors"
    save_file(timm.create_model("resnet18", pretrained=False).state_dict(), weights)
    common = ["--encoder", "resnet18", "--size", "32", "--pool", "1"]

    with caplog.at_level(logging.WARNING, logger="tokenizers_zoo.training.codebook"):
        assert main(["build-codebook", str(source), str(CIFAR), "-o", str(tmp_path / "random"), *common]) == 0
    assert "features are random" in caplog.text
    assert main(["build-codebook", str(source), str(CIFAR), "-o", str(tmp_path / "lc"), *common, "--encoder-weights", str(weights)]) == 0
    built = tokenizers_zoo.from_pretrained(tmp_path / "lc")
    expected = build_codebook(CIFAR, load_encoder("resnet18", weights), 64, size=32, pool=1)
    assert torch.equal(built.quantizer.codebook, expected) and built.model_name == "vqgan_lc_tiny"

    assert main(["fold", str(tmp_path / "lc"), "-o", str(tmp_path / "folded")]) == 0
    folded = tokenizers_zoo.from_pretrained(tmp_path / "folded")
    assert isinstance(folded.quantizer, VectorQuantizer) and folded.quantizer.codebook.shape == (64, 8)
    with torch.no_grad():
        assert torch.equal(folded.encode(cifar_images).indices, built.encode(cifar_images).indices)

    capsys.readouterr()
    assert main(["fold", str(tmp_path / "lc"), "-o", str(tmp_path / "folded")]) == 1
    assert "exists; pass --force" in capsys.readouterr().err
    assert main(["build-codebook", "vqgan_lc_tiny", str(CIFAR), "-o", str(tmp_path / "x"), *common]) == 1
    assert "512 dims but the table has 64" in capsys.readouterr().err
    assert main(["build-codebook", "vqvae_tiny", str(CIFAR), "-o", str(tmp_path / "x"), *common]) == 1
    assert "not one projected table" in capsys.readouterr().err
    assert main(["build-codebook", "vqgan_lc_tiny", str(CIFAR), "-o", str(tmp_path / "x"), "--encoder", "no_such_net"]) == 1
    assert "not a timm model name" in capsys.readouterr().err


# ---------------------------------------------------------------- the converter

TINY_OFFICIAL = dict(
    resolution=256, attn_resolutions=(64,), num_res_blocks=2, quantizer={"type": "lc", "codebook_size": 48, "table_dim": 16}
)


def official_lc_checkpoint(path, container="state_dict", state=None, **args):
    """What VQGAN-LC's save_model_vqgan writes: the VQModel state dict (codebook table, projector, discriminator,
    LPIPS) with the optimisers, the epoch, the scalers and the training args as an argparse.Namespace."""
    reference = tokenizers_zoo.create_model("vqgan_lc_tiny", **TINY_OFFICIAL).eval()
    with torch.no_grad():
        reference.quantizer.projection.bias.normal_()
    state = state or official_names(reference.state_dict())
    state["discriminator.main.0.weight"] = torch.randn(64, 3, 4, 4)
    state["discriminator.main.3.running_mean"] = torch.zeros(128)
    state["perceptual_loss.net.slice1.0.weight"] = torch.randn(64, 3, 3, 3)
    state["perceptual_loss.lin0.model.1.weight"] = torch.randn(1, 64, 1, 1)
    namespace = argparse.Namespace(**{
        "embed_dim": 8, "n_vision_words": 48, "use_cblinear": 1, "tuning_codebook": 0, "quantizer_type": "org",
        "rate_q": 0.1, "rate_p": 1.0, "rate_d": 0.1, "stage": 1, **args,
    })
    torch.save({container: state, "opt_ae": {}, "opt_dist": {}, "epoch": 19, "scaler_ae": {}, "scaler_dist": {}, "args": namespace}, path)
    return reference


def test_official_checkpoint_converts_to_the_same_model(tmp_path, caplog, cifar_images):
    reference = official_lc_checkpoint(tmp_path / "vqgan-lc-tiny.pth")
    with pytest.raises(tokenizers_zoo.CheckpointError, match="trust_pickle=True"):
        tokenizers_zoo.convert_official(tmp_path / "vqgan-lc-tiny.pth")  # args is an argparse.Namespace
    with caplog.at_level(logging.INFO, logger="tokenizers_zoo.converters.vqgan_lc"), pytest.warns(UserWarning, match="unpickling"):
        model = tokenizers_zoo.convert_official(tmp_path / "vqgan-lc-tiny.pth", trust_pickle=True)
    assert "discriminator.*" in caplog.text and "perceptual_loss.*" in caplog.text
    assert model.config == reference.config and not model.training and isinstance(model.quantizer, LCQuantizer)
    converted, expected_state = model.state_dict(), reference.state_dict()
    assert converted.keys() == expected_state.keys() and all(torch.equal(v, expected_state[k]) for k, v in converted.items())
    with torch.no_grad():
        expected, out = reference.encode(cifar_images[:4]), model.encode(cifar_images[:4])
        assert torch.equal(out.indices, expected.indices) and torch.equal(out.latents, expected.latents)
        assert torch.equal(model.decode(out.indices), reference.decode(expected.indices))


def test_last_checkpoint_and_the_convert_command(tmp_path, capsys):
    reference = official_lc_checkpoint(tmp_path / "vqgan_checkpoint-last.pth", container="model")
    assert CONVERTERS["vqgan_lc"].detect(torch.load(tmp_path / "vqgan_checkpoint-last.pth", weights_only=False))
    with pytest.warns(UserWarning, match="unpickling"):
        assert main(["convert", str(tmp_path / "vqgan_checkpoint-last.pth"), "-o", str(tmp_path / "zoo"), "--trust-pickle"]) == 0
    assert tokenizers_zoo.from_pretrained(tmp_path / "zoo").config == reference.config
    assert main(["convert", str(tmp_path / "vqgan_checkpoint-last.pth"), "-o", str(tmp_path / "again")]) == 1
    assert "trust-pickle" in capsys.readouterr().err


def test_unsupported_or_inconsistent_checkpoints_are_refused(tmp_path):
    official_lc_checkpoint(tmp_path / "ok.pth")
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="no EMA weights"):
        tokenizers_zoo.convert_official(tmp_path / "ok.pth", ema=True, trust_pickle=True)
    official_lc_checkpoint(tmp_path / "args.pth", embed_dim=4)
    with pytest.warns(UserWarning), pytest.raises(tokenizers_zoo.CheckpointError, match="embed_dim=4 .tensors: 8"):
        tokenizers_zoo.convert_official(tmp_path / "args.pth", trust_pickle=True)
    state = official_names(tokenizers_zoo.create_model("vqgan_lc_tiny", **TINY_OFFICIAL).state_dict())
    for key in ("codebook_projection.weight", "codebook_projection.bias"):
        del state[key]
    mlp = {"codebook_projection.0.weight": torch.randn(256, 16), "codebook_projection.0.bias": torch.zeros(256),
           "codebook_projection.2.weight": torch.randn(8, 256), "codebook_projection.2.bias": torch.zeros(8)}
    official_lc_checkpoint(tmp_path / "mlp.pth", state={**state, **mlp}, use_cblinear=2)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="MLP codebook projector.*not supported"):
        tokenizers_zoo.convert_official(tmp_path / "mlp.pth", trust_pickle=True)
