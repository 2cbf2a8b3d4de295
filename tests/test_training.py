"""The shared trainer: it learns, resumes exactly, runs in bf16, exports EMA weights; recipes are checked."""

import json
import shutil
from pathlib import Path
import math

import pytest
import torch
from safetensors.torch import load_file

import tokenizers_zoo
from tokenizers_zoo.config import ConfigError
from tokenizers_zoo.data import ImageFolder
from tokenizers_zoo.training import OptimizerConfig, TrainConfig, Trainer, run_recipe

from conftest import CIFAR


def small_model(**quantizer):
    spec = {"type": "vq", "codebook_size": 64, "ema": True, **quantizer}
    return tokenizers_zoo.create_model("vqvae_tiny", ch=32, z_channels=32, embed_dim=8, quantizer=spec)


def dataset():
    return ImageFolder(CIFAR, hflip=True)


@pytest.mark.slow
def test_loss_falls_and_codebook_use_rises(tmp_path):
    config = TrainConfig(steps=60, batch_size=16, optimizer=OptimizerConfig(lr=2e-3, betas=(0.9, 0.99)), log_every=1)
    history = Trainer(small_model(dead_code_threshold=0.5, decay=0.9), dataset(), config, tmp_path).fit()
    first, last = history[:5], history[-5:]
    mean = lambda rows, key: sum(r[key] for r in rows) / len(rows)  # noqa: E731
    assert mean(last, "reconstruction") < 0.75 * mean(first, "reconstruction")
    assert mean(last, "codebook_usage") > mean(first, "codebook_usage") + 0.15
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == 60


def test_resume_continues_exactly(tmp_path):
    def config(steps):
        return TrainConfig(steps=steps, batch_size=8, optimizer=OptimizerConfig(lr=1e-3), log_every=100, checkpoint_every=3, ema_decay=0.9)

    torch.manual_seed(0)
    Trainer(small_model(dead_code_threshold=0.5), dataset(), config(6), tmp_path / "straight").fit()
    torch.manual_seed(0)
    Trainer(small_model(dead_code_threshold=0.5), dataset(), config(3), tmp_path / "resumed").fit()
    resumed = Trainer(small_model(dead_code_threshold=0.5), dataset(), config(6), tmp_path / "resumed")
    assert resumed.step == 3
    resumed.fit()
    straight = load_file(tmp_path / "straight" / "final" / "model.safetensors")
    again = load_file(tmp_path / "resumed" / "final" / "model.safetensors")
    for key, value in straight.items():
        assert torch.equal(value, again[key]), key


def test_exports_the_ema_weights(tmp_path):
    trainer = Trainer(small_model(), dataset(), TrainConfig(steps=4, batch_size=8, optimizer=OptimizerConfig(lr=1e-2), ema_decay=0.5), tmp_path)
    trainer.fit()
    final = load_file(tmp_path / "final" / "model.safetensors")
    assert torch.equal(final["encoder.conv_in.weight"], trainer.ema.state_dict()["encoder.conv_in.weight"])
    assert not torch.equal(final["encoder.conv_in.weight"], trainer.model.encoder.conv_in.weight.detach())
    assert tokenizers_zoo.from_pretrained(tmp_path / "final").config == trainer.model.config


def test_bf16_mixed_precision_step(tmp_path):
    trainer = Trainer(small_model(), dataset(), TrainConfig(steps=2, batch_size=8, mixed_precision="bf16"), tmp_path)
    batch = torch.stack([trainer.dataset[i] for i in range(8)])
    with trainer._autocast():
        out = trainer.network(batch)
    assert torch.isfinite(out.loss) and out.losses["commitment"].dtype == torch.float32
    assert out.reconstruction.dtype == torch.bfloat16
    logs = trainer.train_step(batch)
    assert all(map(math.isfinite, logs.values()))


def test_recipe_validation(tmp_path):
    with pytest.raises(ConfigError, match="a recipe needs 'model'"):
        run_recipe({"model": "vqvae_tiny", "optimiser": {}}, CIFAR, tmp_path)
    with pytest.raises(ConfigError, match="TrainConfig has no field"):
        run_recipe({"model": "vqvae_tiny", "train": {"epochs": 3}}, CIFAR, tmp_path)
    with pytest.raises(FileNotFoundError, match="every file under"):
        run_recipe({"model": "vqvae_tiny", "data": {"exclude": ["*"]}}, CIFAR, tmp_path)
    with pytest.raises(ValueError, match="fewer than one batch"):
        run_recipe({"model": "vqvae_tiny", "train": {"batch_size": 1000}}, CIFAR, tmp_path)
    with pytest.raises(ValueError, match="mixed_precision"):
        TrainConfig(mixed_precision="fp8")


def test_fine_tune_recipe_starts_from_pretrained_weights(tmp_path):
    source = small_model()
    source.save_pretrained(tmp_path / "base")
    recipe = {"model": "vqvae_tiny", "init_from": str(tmp_path / "base"), "train": {"steps": 1, "batch_size": 4, "optimizer": {"lr": 1e-9}}}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    run_recipe(tmp_path / "recipe.json", CIFAR, tmp_path / "run")
    tuned = tokenizers_zoo.from_pretrained(tmp_path / "run" / "final")
    assert tuned.config == source.config
    torch.testing.assert_close(tuned.encoder.conv_in.weight, source.encoder.conv_in.weight, rtol=0, atol=1e-6)


@pytest.fixture
def cifar_layout(tmp_path):
    """A folder laid out like the CIFAR-10 subset the recipes train on: */000?.jpg held out, */001?.jpg to train."""
    root = tmp_path / "cifar"
    for image in CIFAR.rglob("*.jpg"):
        for name in (image.name, image.name.replace("000", "001")):
            (root / image.parent.name).mkdir(parents=True, exist_ok=True)
            shutil.copy(image, root / image.parent.name / name)
    return root


@pytest.mark.slow
def test_every_shipped_recipe_builds_and_trains_a_step(tmp_path, cifar_layout):
    """Each recipe in recipes/ builds its model, objective, data splits and optimizers and runs one step."""
    from tokenizers_zoo.training import build_trainer

    recipes = [path for path in sorted((Path(__file__).parents[1] / "recipes").glob("*.json")) if _is_image_recipe(path)]
    assert len(recipes) >= 2
    for path in recipes:
        trainer = build_trainer(path, cifar_layout, tmp_path / path.stem, {"steps": 1, "batch_size": 4, "val_every": 1})
        assert len(trainer.dataset) == 100 and len(trainer.val_dataset) == 100  # the held-out images are the validation split
        history = trainer.fit()
        assert "val_psnr" in history[-1], path.name
        assert (tmp_path / path.stem / "best" / "model.safetensors").is_file()


def _is_image_recipe(path: Path) -> bool:
    """Image training recipes (the audio and graph ones are tested beside their families)."""
    data = json.loads(path.read_text()).get("data", {})
    return isinstance(data, dict) and data.get("type", "images") == "images"


def test_gan_recipe_freezes_and_uses_its_objective(tmp_path, cifar_layout):
    from tokenizers_zoo.objectives import GANObjective
    from tokenizers_zoo.training import build_trainer

    trainer = build_trainer(Path(__file__).parents[1] / "recipes" / "vqvae_tiny_gan_decoder_cifar10.json", cifar_layout, tmp_path / "run")
    assert isinstance(trainer.objective, GANObjective) and trainer.objective.disc_start == 200
    assert not any(p.requires_grad for p in trainer.model.encoder.parameters())
    assert trainer.disc_optimizer is not None and type(trainer.optimizer).__name__ == "Adam"
    assert trainer.model.quantizer in trainer.frozen


def test_train_command_starts_from_another_model(tmp_path, cifar_layout):
    """`--init-from` replaces the recipe's model: e.g. a VQGAN-LC whose table build-codebook filled."""
    from tokenizers_zoo.cli import main

    start = tokenizers_zoo.create_model("vqgan_lc_tiny")
    with torch.no_grad():
        start.quantizer.codebook.normal_()
    start.save_pretrained(tmp_path / "start")
    recipe = Path(__file__).parents[1] / "recipes" / "vqgan_lc_tiny_cifar10.json"
    assert main(["train", str(recipe), "--data", str(cifar_layout), "--output", str(tmp_path / "run"), "--steps", "1",
                 "--init-from", str(tmp_path / "start")]) == 0
    trained = tokenizers_zoo.from_pretrained(tmp_path / "run" / "final")
    assert torch.equal(trained.quantizer.codebook, start.quantizer.codebook)  # the frozen table came from --init-from
