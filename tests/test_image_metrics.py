"""Image metrics and the perceptual term: LPIPS in taming's layout loaded from local files, the objective's
perceptual term and adaptive weight, SSIM, bits per pixel, rFID, and what ``tokenizers-zoo eval`` reports.

Every weights file here is written by the test with random weights in the official layout; nothing is downloaded.
"""

import argparse
import functools
import json
import logging
import math
from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import tokenizers_zoo
from tokenizers_zoo import cli
from tokenizers_zoo.config import ConfigError
from tokenizers_zoo.data import ImageFolder, list_images
from tokenizers_zoo.hub import CheckpointError
from tokenizers_zoo.metrics import bits_per_pixel, frechet_inception_distance, ssim
from tokenizers_zoo.objectives import LPIPS, GANObjective, Objective, adaptive_weight, build_objective
from tokenizers_zoo.training import TrainConfig, Trainer

from conftest import CIFAR, small_image_model

torchvision = pytest.importorskip("torchvision")

CONVS = {1: (0, 2), 2: (5, 7), 3: (10, 12, 14), 4: (17, 19, 21), 5: (24, 26, 28)}  # vgg16.features conv indices per slice
CHANNELS = (64, 128, 256, 512, 512)
TAPS = (3, 8, 15, 22, 29)  # relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in vgg16.features


@pytest.fixture(scope="module")
def lpips_files(tmp_path_factory):
    """A torchvision vgg16 state dict (features and a stand-in classifier key) and LPIPS v0.1 lin weights."""
    folder = tmp_path_factory.mktemp("lpips")
    torch.manual_seed(1)
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    backbone = {f"features.{k}": v for k, v in features.state_dict().items()}
    torch.save({**backbone, "classifier.6.bias": torch.zeros(1000)}, folder / "vgg16.pth")
    torch.save({f"lin{n}.model.1.weight": torch.rand(1, c, 1, 1) for n, c in enumerate(CHANNELS)}, folder / "vgg.pth")
    return {"backbone": str(folder / "vgg16.pth"), "linear": str(folder / "vgg.pth")}


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    """torch-fidelity's FID InceptionV3 state dict with random (variance-keeping) weights."""
    fe = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    pytest.importorskip("torchmetrics")
    torch.manual_seed(2)
    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, state: None):
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    path = tmp_path_factory.mktemp("inception") / "inception.pth"
    torch.save(net.state_dict(), path)
    return path


def images(n=4, seed=0, size=32):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# ---------------------------------------------------------------- LPIPS


def test_lpips_has_taming_module_names():
    state = LPIPS().state_dict()
    expected = ["scaling_layer.shift", "scaling_layer.scale"]
    expected += [f"net.slice{s}.{i}.{p}" for s, convs in CONVS.items() for i in convs for p in ("weight", "bias")]
    expected += [f"lin{n}.model.1.weight" for n in range(5)]
    assert list(state) == expected
    assert [tuple(state[f"lin{n}.model.1.weight"].shape) for n in range(5)] == [(1, c, 1, 1) for c in CHANNELS]
    assert torch.allclose(state["scaling_layer.shift"].flatten(), torch.tensor([-0.030, -0.088, -0.188]))
    assert torch.allclose(state["scaling_layer.scale"].flatten(), torch.tensor([0.458, 0.448, 0.450]))
    assert sum(v.numel() for v in state.values()) == 14_716_166  # the 14.7 M of the official checkpoints' perceptual_loss.*
    official = {f"loss.perceptual_loss.{k}": v for k, v in state.items()}  # as in a taming / SimVQ / WeTok checkpoint
    LPIPS().load_state_dict({k.removeprefix("loss.perceptual_loss."): v for k, v in official.items()}, strict=True)


def test_lpips_from_files_is_frozen_symmetric_and_follows_the_reference_math(lpips_files):
    lpips = LPIPS.from_files(**lpips_files)
    assert not lpips.training and not lpips.train().training
    assert not any(p.requires_grad for p in lpips.parameters())
    a, b = images(seed=0), images(seed=1)
    assert torch.equal(lpips(a, a), torch.zeros(4))
    distance = lpips(a, b)
    assert distance.shape == (4,) and bool((distance > 0).all())
    torch.testing.assert_close(distance, lpips(b, a))
    # an independent reading of taming's formula on torchvision's layers, loaded from the same files
    features = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"]).eval()
    backbone = torch.load(lpips_files["backbone"], weights_only=True)
    features.load_state_dict({k.removeprefix("features."): v for k, v in backbone.items() if k.startswith("features.")})
    lins = torch.load(lpips_files["linear"], weights_only=True)
    shift, scale = torch.tensor([-0.030, -0.088, -0.188])[:, None, None], torch.tensor([0.458, 0.448, 0.450])[:, None, None]
    h0, h1, expected = (a - shift) / scale, (b - shift) / scale, 0
    for index, layer in enumerate(features[:30]):
        h0, h1 = layer(h0), layer(h1)
        if index in TAPS:
            n0, n1 = (h / (torch.sqrt((h**2).sum(1, keepdim=True)) + 1e-10) for h in (h0, h1))
            weight = lins[f"lin{TAPS.index(index)}.model.1.weight"]
            expected = expected + F.conv2d((n0 - n1) ** 2, weight).mean((1, 2, 3))
    torch.testing.assert_close(distance, expected)


def test_lpips_from_files_refuses_missing_and_mismatched_files(lpips_files, tmp_path):
    with pytest.raises(FileNotFoundError, match="no LPIPS backbone weights file"):
        LPIPS.from_files(tmp_path / "none.pth", lpips_files["linear"])
    with pytest.raises(FileNotFoundError, match="no LPIPS linear weights file"):
        LPIPS.from_files(lpips_files["backbone"], tmp_path / "none.pth")
    with pytest.raises(CheckpointError, match=r"missing keys.*features\.0\.weight"):
        LPIPS.from_files(lpips_files["linear"], lpips_files["linear"])  # the files swapped
    with pytest.raises(CheckpointError, match=r"unexpected keys.*features"):
        LPIPS.from_files(lpips_files["backbone"], lpips_files["backbone"])
    lins = torch.load(lpips_files["linear"], weights_only=True)
    torch.save({**lins, "lin4.model.1.weight": torch.rand(1, 256, 1, 1)}, tmp_path / "alex.pth")
    with pytest.raises(CheckpointError, match=r"mis-shaped keys.*lin4\.model\.1\.weight"):
        LPIPS.from_files(lpips_files["backbone"], tmp_path / "alex.pth")
    torch.save({"weights": lins, "args": argparse.Namespace(lr=1e-4)}, tmp_path / "pickled.pth")
    with pytest.raises(CheckpointError, match="weights_only=True"):
        LPIPS.from_files(lpips_files["backbone"], tmp_path / "pickled.pth")


# ---------------------------------------------------------------- the perceptual term


def test_objective_adds_the_weighted_perceptual_term(lpips_files):
    objective = build_objective({"type": "reconstruction", "perceptual": lpips_files, "perceptual_weight": 0.5})
    model = small_image_model().train()
    x = images(2)
    out = model(x)
    result = objective.generator_loss(out, x, step=0, last_layer=model.last_layer)
    assert list(result.losses) == [*out.losses, "perceptual"]
    torch.testing.assert_close(result.losses["perceptual"], 0.5 * objective.perceptual_loss(out.reconstruction, x).mean())
    torch.testing.assert_close(result.loss, out.loss + result.losses["perceptual"])
    result.losses["perceptual"].backward()
    assert model.decoder.last_layer().grad.abs().sum() > 0
    assert dict(objective.state_dict()) == {} and not list(objective.parameters())  # LPIPS is not part of the module tree
    gan = build_objective({"type": "gan", "discriminator": {"type": "patchgan", "n_layers": 2}, "perceptual": lpips_files})
    assert isinstance(gan, GANObjective) and gan.perceptual_weight == 1.0 and gan.perceptual_loss is not None
    with pytest.raises(ConfigError, match="'perceptual_weight' must be a number"):
        build_objective({"type": "gan", "discriminator": {"type": "patchgan"}, "perceptual_weight": "high"})
    with pytest.raises(ConfigError, match="'backbone' and 'linear'"):
        build_objective({"type": "reconstruction", "perceptual": {"vgg": lpips_files["backbone"]}})
    with pytest.raises(ValueError, match="perceptual_weight must be a finite number >= 0"):
        Objective(perceptual_weight=-1.0)


def test_a_note_says_when_the_perceptual_loss_is_off(caplog, lpips_files):
    caplog.set_level(logging.INFO, logger="tokenizers_zoo.objectives.base")
    Objective(perceptual=lpips_files)
    assert "perceptual loss is off" not in caplog.text
    GANObjective({"type": "patchgan", "n_layers": 2})
    notes = [r for r in caplog.records if "perceptual loss is off: no local LPIPS weights were given" in r.getMessage()]
    assert len(notes) == 1 and notes[0].levelno == logging.INFO


def test_adaptive_weight_balances_reconstruction_plus_perceptual(lpips_files):
    objective = GANObjective({"type": "patchgan", "channels": 8, "n_layers": 2}, adaptive_weight=True, perceptual=lpips_files)
    model = small_image_model().train()
    x = images(2)
    out = model(x)
    result = objective.generator_loss(out, x, step=0, last_layer=model.last_layer)
    layer = model.last_layer()
    nll = out.losses["reconstruction"] + objective.perceptual_loss(out.reconstruction, x).mean()
    adversarial = -objective.discriminator(out.reconstruction).logits[0].mean()  # hinge G loss; BatchNorm in batch mode
    terms = (nll, adversarial, out.losses["reconstruction"])
    nll_grad, adv_grad, rec_grad = (torch.autograd.grad(t, layer, retain_graph=True)[0] for t in terms)
    expected = nll_grad.norm() / (adv_grad.norm() + 1e-4)
    torch.testing.assert_close(result.logs["adaptive_weight"], expected)
    torch.testing.assert_close(result.losses["adversarial"], expected * adversarial)
    assert not torch.isclose(expected, rec_grad.norm() / (adv_grad.norm() + 1e-4))  # the perceptual term matters
    torch.testing.assert_close(result.logs["adaptive_weight"], adaptive_weight(nll, adversarial, layer, 1e4))


@pytest.mark.slow
def test_lpips_is_saved_nowhere_and_a_perceptual_run_resumes(lpips_files, tmp_path):
    def run(steps):
        objective = GANObjective({"type": "patchgan", "channels": 8, "n_layers": 2}, perceptual=lpips_files, perceptual_weight=0.5)
        config = TrainConfig(steps=steps, batch_size=2, log_every=1)
        return Trainer(small_image_model(), ImageFolder(list_images(CIFAR)[:8]), config, tmp_path, objective=objective)

    history = run(2).fit()
    assert all("perceptual" in row and math.isfinite(row["perceptual"]) for row in history)
    kept = load_file(tmp_path / "checkpoint" / "objective.safetensors")
    assert kept and all(key.startswith("discriminator.") for key in kept)  # the discriminator only, no LPIPS
    saved = load_file(tmp_path / "final" / "model.safetensors")
    assert saved.keys() == small_image_model().state_dict().keys()
    resumed = run(3)
    assert resumed.step == 2
    (row,) = resumed.fit()
    assert row["step"] == 3 and math.isfinite(row["perceptual"]) and "adversarial" in row


# ---------------------------------------------------------------- SSIM, bits per pixel, rFID


def test_ssim_is_torchmetrics_value_and_one_for_identical_images():
    structural_similarity_index_measure = pytest.importorskip("torchmetrics.functional.image").structural_similarity_index_measure

    a, b = images(seed=0), images(seed=1)
    torch.testing.assert_close(ssim(a, b), structural_similarity_index_measure(a, b, data_range=2.0, reduction="none"))
    torch.testing.assert_close(ssim(a, a), torch.ones(4))
    with pytest.raises(ValueError, match="SSIM needs images of at least 11x11"):
        ssim(images(size=8), images(size=8))
    model = tokenizers_zoo.create_model("vqvae_tiny")
    metrics = model.reconstruction_metrics(a, b)
    assert sorted(metrics) == ["psnr", "ssim"] and metrics["ssim"].shape == (4,)
    assert sorted(model.reconstruction_metrics(images(size=8), images(size=8))) == ["psnr"]  # too small for SSIM's window


def test_bits_per_pixel_is_exact():
    model = tokenizers_zoo.create_model("vqvae_tiny")
    with torch.no_grad():
        indices = model.encode(images(2)).indices
    assert indices.shape == (2, 8, 8) and bits_per_pixel(indices, (32, 32), 512) == 64 * 9 / 1024
    grouped = torch.zeros(2, 4, 8, 8, dtype=torch.int64)  # 4 groups of 256 codes
    assert bits_per_pixel(grouped, (32, 32), 256) == 4 * 64 * 8 / 1024


def test_rfid_is_offline_zero_for_identical_sets_and_refuses_bad_files(inception_file, tmp_path):
    fe = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    with mock.patch.object(fe, "load_state_dict_from_url", side_effect=AssertionError("tried to download")):
        fid = frechet_inception_distance(inception_file, features=64)
    real = ((images(6, seed=0) + 1) * 127.5).round().to(torch.uint8)
    other = ((images(6, seed=1) * 0.5 + 1) * 127.5).round().to(torch.uint8)
    fid.update(real, real=True)
    fid.update(real, real=False)
    assert abs(float(fid.compute())) < 1e-3
    fid.reset()
    fid.update(real, real=True)
    fid.update(other, real=False)
    assert float(fid.compute()) > 1e-3
    with pytest.raises(FileNotFoundError, match="no InceptionV3 weights file"):
        frechet_inception_distance(tmp_path / "none.pth")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "small.pth")
    with pytest.raises(ValueError, match="is not torch-fidelity's InceptionV3 for FID"):
        frechet_inception_distance(tmp_path / "small.pth")
    torch.save({"args": argparse.Namespace(lr=1e-4)}, tmp_path / "pickled.pth")
    with pytest.raises(ValueError, match="weights_only=True"):
        frechet_inception_distance(tmp_path / "pickled.pth")


# ---------------------------------------------------------------- tokenizers-zoo eval


def run(capsys, *args):
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def saved_model(folder, **quantizer):
    torch.manual_seed(0)
    spec = {"type": "vq", "codebook_size": 300, **quantizer}
    model = tokenizers_zoo.create_model("vqvae_tiny", ch=32, z_channels=32, embed_dim=8, quantizer=spec)
    model.save_pretrained(folder)
    return folder


def test_eval_reports_every_image_metric(capsys, tmp_path, lpips_files):
    pytest.importorskip("torchmetrics")  # SSIM
    model = saved_model(tmp_path / "model", codebook_size=512)
    lpips_flags = ["--lpips-backbone", lpips_files["backbone"], "--lpips-linear", lpips_files["linear"]]
    code, out, err = run(capsys, "eval", model, CIFAR, "--limit", "8", *lpips_flags)
    assert code == 0, err
    result = json.loads(out)
    assert {"psnr", "ssim", "lpips", "bpp", "codebook_usage", "codebook_perplexity"} <= result.keys()
    assert result["bpp"] == 64 * 9 / 1024 and 0 < result["ssim"] < 1 and result["lpips"] > 0
    code, out, err = run(capsys, "eval", model, CIFAR, "--limit", "8")
    assert code == 0 and "lpips" not in json.loads(out)
    code, _, err = run(capsys, "eval", model, CIFAR, "--lpips-backbone", lpips_files["backbone"])
    assert code == 1 and "LPIPS needs both --lpips-backbone" in err
    code, _, err = run(capsys, "eval", model, CIFAR, "--lpips-backbone", tmp_path / "none.pth", "--lpips-linear", lpips_files["linear"])
    assert code == 1 and "no LPIPS backbone weights file" in err


def test_eval_reports_groups_and_rfid(capsys, tmp_path, monkeypatch, inception_file):
    model = saved_model(tmp_path / "model", codebook_size=64, groups=2)
    monkeypatch.setattr(cli, "frechet_inception_distance", functools.partial(frechet_inception_distance, features=64))
    code, out, err = run(capsys, "eval", model, CIFAR, "--limit", "6", "--inception", inception_file)
    assert code == 0, err
    result = json.loads(out)
    assert result["rfid"] > 0 and result["bpp"] == 2 * 64 * 6 / 1024
    assert {"codebook_usage/0", "codebook_usage/1", "codebook_perplexity/0", "codebook_perplexity/1"} <= result.keys()
    code, _, err = run(capsys, "eval", model, CIFAR, "--limit", "1", "--inception", inception_file)
    assert code == 1 and "rFID needs at least 2 images" in err
