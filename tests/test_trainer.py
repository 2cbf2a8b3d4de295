"""The trainer with a discriminator: G and D steps, disc start, parameter groups, frozen stages, EMA of
trainable weights only, validation with best-checkpoint selection, and bit-exact resume."""

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

import tokenizers_zoo
from tokenizers_zoo.config import ConfigError
from tokenizers_zoo.data import ImageFolder, list_images
from tokenizers_zoo.objectives import GANObjective
from tokenizers_zoo.training import OptimizerConfig, ParamGroup, TrainConfig, Trainer, WeightEMA, build_optimizer, freeze
from tokenizers_zoo.training.optim import gradients_off
from tokenizers_zoo.training.validation import evaluate
from tokenizers_zoo.training.batches import evaluation_loader

from conftest import CIFAR, small_image_model

FILES = list_images(CIFAR)


def dataset():
    return ImageFolder(FILES[:64], hflip=True)


def gan(**options):
    return GANObjective({"type": "patchgan", "channels": 8, "n_layers": 2}, **options)


def states_equal(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_gan_training_trains_both_and_saves_the_generator_only(tmp_path):
    objective = gan(adaptive_weight=True, lecam_weight=0.1, feature_matching_weight=0.1, generator_loss="non_saturating")
    d_before = copy.deepcopy(objective.discriminator.state_dict())
    model = small_image_model()
    config = TrainConfig(steps=4, batch_size=8, log_every=1, optimizer=OptimizerConfig(lr=1e-3))
    history = Trainer(model, dataset(), config, tmp_path, objective=objective).fit()
    for row in history:
        for key in ("loss", "reconstruction", "adversarial", "feature_matching", "adaptive_weight", "disc_loss", "disc_discriminator", "disc_lecam"):
            assert key in row and row[key] == row[key], key  # present and not NaN
    assert not states_equal(d_before, objective.discriminator.state_dict())
    saved = load_file(tmp_path / "final" / "model.safetensors")
    assert saved.keys() == model.state_dict().keys()  # no discriminator, no LeCAM statistics
    assert tokenizers_zoo.from_pretrained(tmp_path / "final").config == model.config
    kept = load_file(tmp_path / "checkpoint" / "objective.safetensors")
    assert torch.equal(kept["discriminator.main.0.weight"], objective.discriminator.main[0].weight.detach())
    assert {"lecam.ema_real", "lecam.ema_fake"} <= kept.keys()


def test_discriminator_waits_for_its_start_step(tmp_path):
    objective = gan(disc_start=2)
    d_before = copy.deepcopy(objective.discriminator.state_dict())
    trainer = Trainer(small_image_model(), dataset(), TrainConfig(steps=2, batch_size=8, log_every=1), tmp_path, objective=objective)
    history = trainer.fit()
    assert all("adversarial" not in row and "disc_loss" not in row for row in history)
    assert states_equal(d_before, objective.discriminator.state_dict())
    trainer = Trainer(small_image_model(), dataset(), TrainConfig(steps=3, batch_size=8, log_every=1), tmp_path, objective=objective)
    assert trainer.step == 2
    (row,) = trainer.fit()
    assert "adversarial" in row and "disc_loss" in row
    assert not states_equal(d_before, objective.discriminator.state_dict())


def test_generator_backward_gives_the_discriminator_no_gradient():
    objective = gan()
    fake = torch.randn(2, 3, 32, 32, requires_grad=True)
    with gradients_off(objective.discriminator):
        objective.discriminator(fake).logits[0].mean().backward()
    assert fake.grad is not None
    assert all(p.grad is None and p.requires_grad for p in objective.discriminator.parameters())


@pytest.mark.slow
def test_resume_with_a_discriminator_is_bit_exact(tmp_path):
    groups = (ParamGroup(params=("decoder.*",), lr=5e-4, betas=(0.9, 0.99)),)

    def run(steps, folder):
        torch.manual_seed(0)
        config = TrainConfig(
            steps=steps, batch_size=8, log_every=100, checkpoint_every=3, ema_decay=0.9, warmup_steps=2, schedule="cosine",
            optimizer=OptimizerConfig(lr=1e-3, groups=groups), disc_optimizer=OptimizerConfig(lr=2e-4),
        )
        model = small_image_model(dead_code_threshold=0.5)
        return Trainer(model, dataset(), config, folder, objective=gan(adaptive_weight=True, lecam_weight=0.1, lecam_decay=0.9))

    run(6, tmp_path / "straight").fit()
    interrupted = run(6, tmp_path / "resumed")
    step = interrupted.train_step

    def killed_after_the_checkpoint(batch):
        if interrupted.step == 3:
            raise KeyboardInterrupt
        return step(batch)

    interrupted.train_step = killed_after_the_checkpoint
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit()
    resumed = run(6, tmp_path / "resumed")
    assert resumed.step == 3
    resumed.fit()
    for name in ("model/model.safetensors", "objective.safetensors", "ema.safetensors"):
        straight = load_file(tmp_path / "straight" / "checkpoint" / name)
        assert states_equal(straight, load_file(tmp_path / "resumed" / "checkpoint" / name)), name
    states = [torch.load(tmp_path / run_dir / "checkpoint" / "trainer_state.pt", weights_only=True) for run_dir in ("straight", "resumed")]
    for key in ("optimizer", "disc_optimizer"):
        for a, b in zip(states[0][key]["state"].values(), states[1][key]["state"].values()):
            assert all(torch.equal(a[k], b[k]) for k in a), key
    assert states[0]["scheduler"] == states[1]["scheduler"]


def test_parameter_groups():
    model = small_image_model()
    config = OptimizerConfig(lr=1e-3, weight_decay=0.01, groups=(ParamGroup(params=("decoder.*",), lr=1e-4, betas=(0.9, 0.99)),))
    optimizer = build_optimizer(model, config)
    decoder, rest = optimizer.param_groups
    assert decoder["lr"] == 1e-4 and decoder["betas"] == (0.9, 0.99) and decoder["weight_decay"] == 0.01
    assert rest["lr"] == 1e-3 and rest["betas"] == (0.5, 0.9)
    assert {id(p) for p in decoder["params"]} == {id(p) for p in model.decoder.parameters()}
    assert len(rest["params"]) == len([p for n, p in model.named_parameters() if not n.startswith("decoder.")])
    with pytest.raises(ConfigError, match="matches no trainable parameter"):
        build_optimizer(model, OptimizerConfig(groups=(ParamGroup(params=("decodr.*",)),)))
    with pytest.raises(ConfigError, match="matched by parameter groups 0 and 1"):
        build_optimizer(model, OptimizerConfig(groups=(ParamGroup(params=("decoder.*",)), ParamGroup(params=("*.conv_out.*",)))))
    assert OptimizerConfig.from_dict({"groups": [{"params": ["encoder.*"], "lr": 0.1}]}).groups[0].lr == 0.1


def test_frozen_stages_stay_fixed_and_out_of_the_ema(tmp_path):
    model = small_image_model(dead_code_threshold=5.0)  # restarts would rewrite a training quantizer's codes
    before = copy.deepcopy(model.state_dict())
    config = TrainConfig(steps=3, batch_size=8, optimizer=OptimizerConfig(lr=1e-2), ema_decay=0.5, freeze=("encoder", "quantizer", "quant_conv"))
    trainer = Trainer(model, dataset(), config, tmp_path)
    assert not any(name.startswith(("encoder.", "quant_conv.")) for name in trainer.ema.state_dict())
    trainer.fit()
    after = model.state_dict()
    for key, value in before.items():
        if key.startswith(("encoder.", "quantizer.", "quant_conv.")):
            assert torch.equal(value, after[key]), key  # weights, EMA codebook and its statistics
    assert not torch.equal(before["decoder.conv_out.weight"], after["decoder.conv_out.weight"])
    assert not model.quantizer.training and model.decoder.training
    with pytest.raises(ConfigError, match="names no submodule or parameter"):
        freeze(small_image_model(), ("encodr",))
    with pytest.raises(ConfigError, match="quantizer.codebook is a buffer updated during training"):
        freeze(small_image_model(), ("quantizer.codebook",))


def test_weight_ema_averages_trainable_parameters_only():
    model = tokenizers_zoo.create_model(
        "vqvae_tiny", ch=32, z_channels=32, embed_dim=8, quantizer={"type": "projected", "codebook_size": 64, "table_dim": 16}
    )
    model.encoder.requires_grad_(False)
    ema = WeightEMA(model, 0.5)
    assert "quantizer.codebook" not in ema.state_dict() and "quantizer.projection.weight" in ema.state_dict()
    assert not any(name.startswith("encoder.") for name in ema.state_dict())
    live = model.quantizer.projection.weight.detach().clone()
    with torch.no_grad():
        model.quantizer.projection.weight.add_(2.0)
    ema.update(model)
    with ema.swapped_in(model):
        torch.testing.assert_close(model.quantizer.projection.weight, live + 1.0)
    torch.testing.assert_close(model.quantizer.projection.weight, live + 2.0)


def test_validation_keeps_the_best_weights(tmp_path):
    val = ImageFolder(FILES[-16:])
    config = TrainConfig(steps=4, batch_size=8, log_every=100, val_every=2, val_metric="psnr", optimizer=OptimizerConfig(lr=2e-3))
    history = Trainer(small_image_model(), dataset(), config, tmp_path, val_dataset=val).fit()
    rows = [row for row in history if "val_psnr" in row]
    assert [row["step"] for row in rows] == [2, 4]
    assert {"val_loss", "val_reconstruction", "val_commitment", "val_codebook_usage"} <= rows[0].keys()
    best = max(row["val_psnr"] for row in rows)
    kept = tokenizers_zoo.from_pretrained(tmp_path / "best")
    assert evaluate(kept, evaluation_loader(val, 8), torch.device("cpu"))["psnr"] == pytest.approx(best, abs=1e-5)
    log = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert [row["val_psnr"] for row in log if "val_psnr" in row] == [row["val_psnr"] for row in rows]
    with pytest.raises(ConfigError, match="set val_mode"):
        TrainConfig(val_metric="fid")
    trainer = Trainer(small_image_model(), dataset(), TrainConfig(steps=1, batch_size=8, val_metric="fid", val_mode="min"), tmp_path / "x", val_dataset=val)
    with pytest.raises(ConfigError, match="'fid' is not measured"):
        trainer.fit()


def test_the_trainer_takes_audio_batches_with_lengths_and_whole_graphs(tmp_path):
    from tokenizers_zoo.data import AudioFolder, GraphDataset

    from conftest import DATA
    from stand_ins import FrameAudioConfig, FrameAudioTokenizer, MeanGraphConfig, MeanGraphTokenizer

    clip = next((DATA / "audio").glob("*.wav"))
    audio = AudioFolder([clip] * 8, sample_rate=8000, segment=4000)  # 24 kHz speech resampled to the model's rate
    model = FrameAudioTokenizer(FrameAudioConfig())
    config = TrainConfig(steps=30, batch_size=4, log_every=1, optimizer=OptimizerConfig(lr=1e-2, betas=(0.9, 0.99)))
    history = Trainer(model, audio, config, tmp_path / "audio").fit()
    assert history[-1]["reconstruction"] < 0.8 * history[0]["reconstruction"]

    torch.manual_seed(0)
    features = torch.rand(40, 6)
    edges = torch.randint(40, (2, 120))
    graph = GraphDataset(features, edges)
    history = Trainer(MeanGraphTokenizer(MeanGraphConfig()), graph, TrainConfig(steps=30, batch_size=1, log_every=1, optimizer=OptimizerConfig(lr=1e-2)), tmp_path / "graph").fit()
    assert history[-1]["reconstruction"] < 0.8 * history[0]["reconstruction"]
    with pytest.raises(TypeError, match=r"\['labels'\]"):  # the graph base takes no labels: a family declares them
        Trainer(MeanGraphTokenizer(MeanGraphConfig()), GraphDataset(features, edges, labels=torch.zeros(40)), TrainConfig(steps=1, batch_size=1), tmp_path / "labels").fit()
