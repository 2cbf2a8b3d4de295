"""The audio objective: vocos / DAC discriminators (official shapes at tiny widths), mel L1, the loss terms,
every discriminator trained, and the shared trainer's bf16 autocast and resume with it."""

import math
from pathlib import Path

import pytest
import torch
import torchaudio

from tokenizers_zoo.config import ConfigError
from tokenizers_zoo.data import AudioFolder
from tokenizers_zoo.objectives import (
    AudioGANObjective,
    DACDiscriminator,
    MelL1,
    MultiPeriodDiscriminator,
    MultiResolutionDiscriminator,
    build_objective,
    discriminator_adversarial_loss,
    generator_adversarial_loss,
)
from tokenizers_zoo.training import TrainConfig, Trainer
from tokenizers_zoo.training.optim import OptimizerConfig

from conftest import DATA
from stand_ins import FrameAudioConfig, FrameAudioTokenizer

RATE = 8000
TINY_TERMS = [
    {"name": "mpd", "discriminator": {"type": "multi_period", "periods": [2, 3], "channels": [4, 8]}, "loss": "clamped_hinge"},
    {"name": "mrd", "discriminator": {"type": "multi_resolution", "resolutions": [[128, 32, 128]], "channels": 4}, "loss": "clamped_hinge"},
    {
        "name": "dac",
        "discriminator": {"type": "dac", "periods": [2], "fft_sizes": [128], "period_channels": [4, 8], "band_channels": 4},
        "loss": "least_squares",
        "average": False,
    },
]
MEL = {"n_fft": 256, "hop_length": 64, "n_mels": 20}


def tiny_objective(**options):
    return build_objective({"type": "audio_gan", "discriminators": TINY_TERMS, "sample_rate": RATE, "mel": MEL, **options})


def speech(batch=2, samples=4000):
    clip = AudioFolder([next((DATA / "audio").glob("*.wav"))], RATE)[0]["x"]
    return torch.stack([clip[i * samples : (i + 1) * samples] for i in range(batch)])


def test_period_and_resolution_maps_have_the_official_shapes():
    audio = torch.randn(1, 24000) * 0.1
    mpd = MultiPeriodDiscriminator(channels=(2, 2, 2, 2, 2))(audio)
    for period, logits, features in zip((2, 3, 5, 7, 11), mpd.logits, mpd.features):
        rows = math.ceil(24000 / period)
        for _ in range(4):
            rows = math.ceil(rows / 3)  # stride 3, kernel 5, padding 2
        assert logits.shape == (1, 1, rows, period)
        assert len(features) == 5 and features[-1] is logits  # vocos: convs 2..5 and the logit map
    mrd = MultiResolutionDiscriminator(channels=2)(audio)
    for (n_fft, hop, _), logits in zip(((1024, 256, 1024), (2048, 512, 2048), (512, 128, 512)), mrd.logits):
        bins, frames = n_fft // 2 + 1, 24000 // hop + 1
        for stride in (1, 0, 1, 0, 1):  # frequency halved by every conv, time by the 1st, 3rd and 5th
            bins, frames = math.ceil(bins / 2), math.ceil(frames / 2) if stride else frames
        assert logits.shape == (1, 1, bins, frames)
    dac = DACDiscriminator(period_channels=(2, 2, 2, 2, 2), band_channels=2)(audio)
    assert len(dac.logits) == 8  # 5 periods + 3 FFT sizes
    assert [f.shape[-1] for f in dac.features[5][:5]] == [102, 51, 26, 13, 13]  # first band: bins 0..101, then stride 2 three times
    assert len(dac.features[5]) == 25 and all(len(f) == 5 for f in dac.features[:5])  # DAC: every conv, not the logits
    assert dac.logits[5].shape == (1, 1, 24000 // 512 + 1, sum(math.ceil(math.ceil(math.ceil(w / 2) / 2) / 2) for w in (102, 154, 256, 256, 257)))


def test_dac_pads_a_whole_period_and_normalises_its_input():
    audio = torch.randn(2, 600) * 0.01 + 0.3
    dac = DACDiscriminator(periods=(3,), fft_sizes=(64,), period_channels=(2, 2), band_channels=2)
    assert dac(audio).logits[0].shape[2] == math.ceil((600 + 3) / 3 / 3)  # T % 3 == 0 still gets 3 samples of padding
    torch.testing.assert_close(dac(audio).logits[1], dac(10 * audio + 2).logits[1], atol=1e-4, rtol=1e-4)  # DC and gain removed
    with pytest.raises(ValueError, match=r"mono float audio \[B, T\]"):
        dac(audio[:, None])


def test_clamped_hinge_is_vocos_hinge():
    real, fake = [torch.tensor([2.0, 0.5, -1.0])], [torch.tensor([-2.0, 0.5, 3.0])]
    assert float(generator_adversarial_loss("clamped_hinge", fake)) == pytest.approx((3 + 0.5 + 0) / 3)
    assert float(discriminator_adversarial_loss("clamped_hinge", real, fake)) == pytest.approx((0 + 0.5 + 2) / 3 + (0 + 1.5 + 4) / 3)


def test_mel_l1_is_vocos_log_mel_distance():
    a, b = torch.randn(2, 4000) * 0.1, torch.randn(2, 4000) * 0.1
    mel = torchaudio.transforms.MelSpectrogram(sample_rate=RATE, **MEL, center=True, power=1)
    expected = (mel(a).clamp_min(1e-7).log() - mel(b).clamp_min(1e-7).log()).abs().mean()
    loss = MelL1(RATE, **MEL)
    torch.testing.assert_close(loss(a, b), expected)
    assert float(loss(a, a)) == 0 and not loss.state_dict()  # filters are rebuilt, never checkpointed
    with pytest.raises(ValueError, match=r"one shape, got \[2, 4000\] and \[2, 3999\]"):
        loss(a, b[:, 1:])


def test_generator_terms_follow_each_discriminator_convention():
    torch.manual_seed(0)
    model, objective = FrameAudioTokenizer(FrameAudioConfig()), tiny_objective(reconstruction_weight=0.5)
    objective.prepare(model)
    x = speech()
    out = model(x)
    losses = objective.generator_loss(out, x, step=0, last_layer=model.last_layer).losses
    assert set(losses) == {
        "commitment", "codebook", "reconstruction", "mel",
        *(f"{kind}_{name}" for kind in ("adversarial", "feature_matching") for name in ("mpd", "mrd", "dac")),
    }
    judged = objective.discriminator(out.reconstruction)
    mpd_logits = judged["mpd"].logits
    torch.testing.assert_close(losses["adversarial_mpd"], sum(torch.relu(1 - f).mean() for f in mpd_logits) / 2)  # averaged
    torch.testing.assert_close(losses["adversarial_dac"], sum((1 - f).square().mean() for f in judged["dac"].logits))  # summed
    torch.testing.assert_close(losses["mel"], 45 * MelL1(RATE, **MEL)(out.reconstruction, x))
    torch.testing.assert_close(losses["reconstruction"], 0.5 * out.losses["reconstruction"])
    disc = objective.discriminator_loss(x, out.reconstruction, step=0, discriminator=objective.discriminator)
    assert set(disc.losses) == {"discriminator_mpd", "discriminator_mrd", "discriminator_dac"}
    before = tiny_objective(disc_start=5)
    assert set(before.generator_loss(out, x, step=4, last_layer=model.last_layer).losses) == {"commitment", "codebook", "mel"}


def test_reconstructions_are_trimmed_to_the_input_and_never_shorter():
    torch.manual_seed(0)
    model, objective = FrameAudioTokenizer(FrameAudioConfig()), tiny_objective()
    x = speech()[:, :3995]  # not a whole number of hops: the decoder gives 4000 samples
    out = model(x)
    assert out.reconstruction.shape[-1] == 3995  # the audio base cuts the training pass's reconstruction to the input
    assert torch.isfinite(objective.generator_loss(out, x, step=0, last_layer=model.last_layer).loss)
    with torch.no_grad():
        whole_hops = model.decode(model.encode(x).indices)
    assert whole_hops.shape[-1] == 4000
    out.reconstruction = whole_hops  # the objective also takes a decoder's whole hops and cuts them itself
    assert torch.isfinite(objective.generator_loss(out, x, step=0, last_layer=model.last_layer).loss)
    with pytest.raises(ValueError, match=r"does not cover the audio"):
        objective.discriminator_loss(x, out.reconstruction[:, :100], step=0, discriminator=objective.discriminator)


def test_bad_objective_settings_are_refused():
    with pytest.raises(ConfigError, match="loss must be one of"):
        tiny_objective(discriminators=[{**TINY_TERMS[0], "loss": "wasserstein"}])
    with pytest.raises(ConfigError, match="unique"):
        tiny_objective(discriminators=[TINY_TERMS[0], TINY_TERMS[0]])
    with pytest.raises(ConfigError, match="set for 24000 Hz audio; the model takes audio at 8000"):
        build_objective({"type": "audio_gan", "discriminators": [], "mel": MEL}).prepare(FrameAudioTokenizer(FrameAudioConfig()))
    with pytest.raises(ValueError, match="bands must be"):
        DACDiscriminator(bands=((0.5, 0.2),))


def _trainer(tmp_path, steps, **train):
    """The stand-in (EMA codebook of 64, k-means start) overfitting one fixed 0.5 s segment; the adversarial terms
    weigh 0.1 so that the mel term leads on so small a model, while every discriminator still trains."""
    torch.manual_seed(0)
    data = AudioFolder([next((DATA / "audio").glob("*.wav"))] * 4, RATE, segment=4000, random_crop=False)
    config = TrainConfig(steps=steps, batch_size=2, log_every=1, optimizer=OptimizerConfig(lr=1e-2), disc_optimizer=OptimizerConfig(lr=1e-3), **train)
    model = FrameAudioTokenizer(FrameAudioConfig(dim=8, quantizer={"type": "vq", "codebook_size": 64, "ema": True, "kmeans_init": True}))
    terms = [{**term, "weight": 0.1, "feature_matching_weight": 0.1} for term in TINY_TERMS]
    return Trainer(model, data, config, tmp_path, objective=tiny_objective(discriminators=terms))


def test_every_discriminator_is_trained_and_the_generator_learns(tmp_path):
    trainer = _trainer(tmp_path / "run", steps=40)
    weights = lambda: {n: p.detach().clone() for n, p in trainer.objective.discriminator.named_parameters() if not n.endswith("bias")}
    start = weights()  # (a hinge gives the logit bias no gradient while every logit is inside the margin)
    history = trainer.fit()
    unchanged = [name for name, value in weights().items() if torch.equal(value, start[name])]
    assert not unchanged and {name.split(".")[0] for name in start} == {"mpd", "mrd", "dac"}  # WavTokenizer's DAC never moved
    assert {"disc_discriminator_mpd", "disc_discriminator_mrd", "disc_discriminator_dac"} <= set(history[0])
    first, last = sum(h["mel"] for h in history[:3]) / 3, sum(h["mel"] for h in history[-5:]) / 5
    assert last < 0.9 * first


def test_resume_and_bf16_autocast_with_the_audio_objective(tmp_path):
    straight = _trainer(tmp_path / "straight", steps=4)
    straight.fit()
    _trainer(tmp_path / "resumed", steps=2).fit()
    resumed = _trainer(tmp_path / "resumed", steps=4)
    assert resumed.step == 2
    resumed.fit()
    for a, b in zip([*straight.model.parameters(), *straight.objective.parameters()], [*resumed.model.parameters(), *resumed.objective.parameters()]):
        assert torch.equal(a, b)
    history = _trainer(tmp_path / "bf16", steps=2, mixed_precision="bf16").fit()
    assert all(math.isfinite(h["loss"]) and math.isfinite(h["disc_loss"]) for h in history)


def _ddp_worker(rank: int, out_dir: str) -> None:
    import os

    import torch.distributed as dist

    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo", init_method=f"file://{out_dir}/rendezvous", rank=rank, world_size=2)
    trainer = _trainer(Path(out_dir) / "run", steps=3)  # same seed: the same initial weights on both ranks
    trainer.fit()
    torch.save({"model": trainer.model.state_dict(), "objective": trainer.objective.state_dict(), "wrapped": type(trainer.disc_network).__name__},
               Path(out_dir) / f"rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_keeps_the_model_and_every_discriminator_identical_on_each_rank(tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_ddp_worker, args=(str(tmp_path),), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert rank0["wrapped"] == "DistributedDataParallel"
    for part in ("model", "objective"):
        assert rank0[part].keys() == rank1[part].keys()
        for key, value in rank0[part].items():
            assert torch.equal(value, rank1[part][key]), f"{part}: {key} differs between ranks"


def test_the_wavtokenizer_recipe_builds_and_trains_a_step(tmp_path):
    from tokenizers_zoo import registry
    from tokenizers_zoo.training import build_trainer

    if not registry.is_model("wavtokenizer_tiny"):
        pytest.skip("the WavTokenizer family is not in this tree")
    recipe = Path(__file__).parents[1] / "recipes" / "wavtokenizer_tiny_libritts.json"
    trainer = build_trainer(recipe, DATA / "audio", tmp_path, {"steps": 1, "batch_size": 1})
    assert isinstance(trainer.objective, AudioGANObjective) and set(trainer.objective.discriminator) == {"mpd", "mrd", "dac"}
    history = trainer.fit()
    assert {"mel", "adversarial_dac", "feature_matching_mpd", "disc_discriminator_mrd"} <= set(history[-1])
    assert (tmp_path / "final" / "model.safetensors").is_file()
