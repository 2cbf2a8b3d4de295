"""Objectives: adversarial losses, LeCAM, feature matching, the adaptive weight and the PatchGAN discriminator."""

import pytest
import torch
import torch.nn.functional as F

from tokenizers_zoo.config import ConfigError
from tokenizers_zoo.objectives import (
    GANObjective,
    LeCAM,
    Objective,
    PatchGANDiscriminator,
    adaptive_weight,
    build_objective,
    discriminator_adversarial_loss,
    feature_matching_loss,
    generator_adversarial_loss,
)

REAL, FAKE = [torch.tensor([2.0, -0.5])], [torch.tensor([0.5, -3.0])]


def test_adversarial_losses_have_their_textbook_values():
    # hinge: D = 1/2 (mean relu(1 - r) + mean relu(1 + f)); G = -mean f
    assert torch.isclose(discriminator_adversarial_loss("hinge", REAL, FAKE), torch.tensor(0.5 * (0.75 + 0.75)))
    assert torch.isclose(generator_adversarial_loss("hinge", FAKE), torch.tensor(1.25))
    # non-saturating: D = 1/2 (mean softplus(-r) + mean softplus(f)); G = mean softplus(-f)
    expected = 0.5 * (F.softplus(-REAL[0]).mean() + F.softplus(FAKE[0]).mean())
    assert torch.isclose(discriminator_adversarial_loss("non_saturating", REAL, FAKE), expected)
    assert torch.isclose(generator_adversarial_loss("non_saturating", FAKE), F.softplus(-FAKE[0]).mean())
    # least squares: D = mean (1 - r)^2 + mean f^2; G = mean (1 - f)^2
    assert torch.isclose(discriminator_adversarial_loss("least_squares", REAL, FAKE), torch.tensor((1 + 2.25) / 2 + (0.25 + 9) / 2))
    assert torch.isclose(generator_adversarial_loss("least_squares", FAKE), torch.tensor((0.25 + 16) / 2))
    # several sub-discriminators are summed
    assert torch.isclose(generator_adversarial_loss("hinge", FAKE * 3), torch.tensor(3 * 1.25))
    with pytest.raises(ValueError, match="hinge"):
        generator_adversarial_loss("wasserstein", FAKE)


def test_feature_matching_is_l1_between_feature_maps_with_real_as_constant():
    real = [[torch.ones(2, 3), torch.zeros(4)]]
    fake = [[torch.full((2, 3), 3.0, requires_grad=True), torch.full((4,), -1.0, requires_grad=True)]]
    loss = feature_matching_loss(real, fake)
    assert torch.isclose(loss, torch.tensor(2.0 + 1.0))
    loss.backward()
    assert fake[0][0].grad is not None and real[0][0].grad is None


def test_lecam_tracks_logit_means_and_penalises_drift():
    lecam = LeCAM(decay=0.5)
    real, fake = [torch.full((4,), 2.0)], [torch.full((4,), -2.0)]
    value = lecam(real, fake)
    assert float(lecam.ema_real) == 1.0 and float(lecam.ema_fake) == -1.0  # 0.5 * 0 + 0.5 * mean
    # relu(2 - (-1))^2 + relu(1 - (-2))^2
    assert torch.isclose(value, torch.tensor(9.0 + 9.0))
    assert float(lecam([torch.full((4,), -5.0)], [torch.full((4,), 5.0)])) == 0.0  # logits inside the running means


def test_adaptive_weight_is_the_gradient_norm_ratio_at_the_last_layer():
    layer = torch.nn.Linear(3, 2)
    x = torch.randn(5, 3)
    out = layer(x)
    reconstruction, adversarial = out.square().mean(), -out[:, 0].mean()
    g_rec = torch.autograd.grad(reconstruction, layer.weight, retain_graph=True)[0]
    g_adv = torch.autograd.grad(adversarial, layer.weight, retain_graph=True)[0]
    expected = g_rec.norm() / (g_adv.norm() + 1e-4)
    weight = adaptive_weight(reconstruction, adversarial, layer.weight, maximum=1e4)
    assert torch.isclose(weight, expected) and not weight.requires_grad
    assert torch.isclose(adaptive_weight(reconstruction, adversarial, layer.weight, maximum=0.01), torch.tensor(0.01))


def test_patchgan_has_taming_layout_and_patch_logits():
    disc = PatchGANDiscriminator(in_channels=3, channels=16, n_layers=3)
    keys = list(disc.state_dict())
    assert keys[:3] == ["main.0.weight", "main.0.bias", "main.2.weight"]  # no bias before BatchNorm
    assert "main.3.running_mean" in keys and keys[-2:] == ["main.11.weight", "main.11.bias"]
    assert disc.main[8].out_channels == 128  # widths 16, 32, 64, 128 (x min(2^n, 8))
    out = disc(torch.randn(2, 3, 32, 32))
    assert out.logits[0].shape == (2, 1, 2, 2) and len(out.features[0]) == 4
    weights = torch.cat([m.weight.detach().flatten() for m in disc.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(float(weights.std()) - 0.02) < 0.002


def test_objectives_build_from_recipe_entries():
    assert type(build_objective(None)) is Objective
    gan = build_objective({"type": "gan", "discriminator": {"type": "patchgan", "n_layers": 2}, "disc_start": 5, "lecam_weight": 0.1})
    assert isinstance(gan, GANObjective) and gan.lecam is not None
    assert not gan.discriminator_active(4) and gan.discriminator_active(5)
    with pytest.raises(ConfigError, match="unknown objective type"):
        build_objective({"type": "vae"})
    with pytest.raises(ConfigError, match=r"no option\(s\) \['disc_begin'\]"):
        build_objective({"type": "gan", "discriminator": {"type": "patchgan"}, "disc_begin": 5})
    with pytest.raises(ConfigError, match="unknown discriminator type"):
        build_objective({"type": "gan", "discriminator": {"type": "stylegan"}})
    with pytest.raises(ConfigError, match="'disc_weight' must be a number"):
        build_objective({"type": "gan", "discriminator": {"type": "patchgan"}, "disc_weight": "high"})
    with pytest.raises(ValueError, match="adversarial losses must be one of"):
        build_objective({"type": "gan", "discriminator": {"type": "patchgan"}, "generator_loss": "wgan"})
