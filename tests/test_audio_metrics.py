"""The audio metrics against independent computations: closed forms on synthetic signals (gains, noise at a known
SNR) and a NumPy reimplementation of the STFT distance."""

import math

import numpy as np
import pytest
import torch

from tokenizers_zoo.audio_metrics import (
    STFT_RESOLUTIONS, audio_reconstruction_metrics, kbps, mel_distance, missing_audio_metrics, multi_resolution_stft_distance,
    pesq, si_sdr, stoi,
)
from tokenizers_zoo.data import load_audio
from tokenizers_zoo.objectives import MelL1

from conftest import DATA

RATE = 24000
SPEECH = DATA / "audio" / "8455_210777_000067_000000.wav"


@pytest.fixture(scope="module")
def noise():
    return 0.3 * torch.randn(2, RATE, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def speech():
    return load_audio(SPEECH, 16000)[:32000]


def numpy_si_sdr(estimate: np.ndarray, reference: np.ndarray) -> float:
    """Least-squares projection of the zero-mean estimate on the zero-mean reference."""
    estimate, reference = estimate - estimate.mean(), reference - reference.mean()
    scale = np.linalg.lstsq(reference[:, None], estimate, rcond=None)[0][0]
    return 10 * math.log10(np.sum((scale * reference) ** 2) / np.sum((estimate - scale * reference) ** 2))


def test_si_sdr_of_noise_at_a_known_snr(noise):
    target = noise[0].double()
    orthogonal = noise[1].double() - noise[1].double().mean()
    orthogonal -= (orthogonal @ (target - target.mean())) / (target - target.mean()).square().sum() * (target - target.mean())
    for snr in (-5.0, 0.0, 20.0):
        distortion = orthogonal * (0.7 * (target - target.mean()).norm() / orthogonal.norm() / 10 ** (snr / 20))
        got = si_sdr((0.7 * target + distortion + 0.2)[None].float(), target[None].float())  # gain and offset do not count
        assert abs(float(got) - snr) < 1e-3
    white = torch.randn(4, RATE, generator=torch.Generator().manual_seed(1))
    reference = torch.sin(torch.arange(RATE) * 0.05).expand(4, -1)
    got = si_sdr(reference + white * (reference.std() / 10), reference)  # white noise at 20 dB SNR
    assert torch.allclose(got, torch.full((4,), 20.0), atol=0.3)
    assert si_sdr(3 * reference[:1], reference[:1]) > 100


def test_si_sdr_matches_a_least_squares_reference(noise):
    estimate = noise[0] + 0.5 * noise[1]
    expected = numpy_si_sdr(estimate.double().numpy(), noise[0].double().numpy())
    assert abs(float(si_sdr(estimate[None], noise[:1])) - expected) < 1e-4


def numpy_stft_magnitude(audio: np.ndarray, n_fft: int, hop: int, win: int) -> np.ndarray:
    window = np.zeros(n_fft)
    start = (n_fft - win) // 2
    window[start : start + win] = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(win) / win)
    padded = np.pad(audio, n_fft // 2, mode="reflect")
    frames = np.stack([padded[i : i + n_fft] for i in range(0, len(padded) - n_fft + 1, hop)])
    return np.sqrt(np.maximum(np.abs(np.fft.rfft(frames * window, axis=1)) ** 2, 1e-7)).T


def test_stft_distance_matches_a_numpy_reference(noise):
    reconstruction, target = noise[0] + 0.1 * noise[1], noise[0]
    expected = 0.0
    for n_fft, hop, win in STFT_RESOLUTIONS:
        r, t = (numpy_stft_magnitude(x.double().numpy(), n_fft, hop, win) for x in (reconstruction, target))
        expected += np.linalg.norm(t - r) / np.linalg.norm(t) + np.mean(np.abs(np.log(t) - np.log(r)))
    got = multi_resolution_stft_distance(reconstruction[None], target[None])
    assert abs(float(got) - expected / len(STFT_RESOLUTIONS)) < 1e-4


@pytest.mark.parametrize("gain", [0.5, 2.0])
def test_a_gain_gives_its_closed_form_distances(noise, gain):
    """Every magnitude scales by the gain: spectral convergence |1 - g|, log-magnitude and log-mel L1 |log g|."""
    stft = multi_resolution_stft_distance(gain * noise, noise)
    torch.testing.assert_close(stft, torch.full((2,), abs(1 - gain) + abs(math.log(gain))), atol=2e-3, rtol=0)
    torch.testing.assert_close(mel_distance(gain * noise, noise, RATE), torch.full((2,), abs(math.log(gain))), atol=1e-4, rtol=0)
    assert torch.all(multi_resolution_stft_distance(noise, noise) == 0) and torch.all(mel_distance(noise, noise, RATE) == 0)


def test_mel_distance_is_the_mel_loss_per_item(noise):
    mel = MelL1(RATE)
    distorted = noise + 0.2 * torch.randn(noise.shape, generator=torch.Generator().manual_seed(2))
    per_item = mel_distance(distorted, noise, RATE, mel)
    assert torch.allclose(per_item, torch.stack([mel(distorted[i : i + 1], noise[i : i + 1]) for i in range(2)]))
    with pytest.raises(ValueError, match="built for 24000 Hz, the audio is at 16000 Hz"):
        mel_distance(distorted, noise, 16000, mel)


def test_stoi_is_one_for_a_copy_and_falls_with_noise(speech):
    pystoi = pytest.importorskip("pystoi")
    noise = torch.randn(speech.shape, generator=torch.Generator().manual_seed(3)) * speech.std()
    noisy = [speech + noise * 10 ** (-snr / 20) for snr in (20, 5, -5)]
    scores = stoi(torch.stack([speech, *noisy]), speech.expand(4, -1), 16000)
    assert abs(float(scores[0]) - 1) < 1e-6 and bool(torch.all(scores[:-1] > scores[1:])) and float(scores[-1]) < 0.8
    assert abs(float(scores[2]) - pystoi.stoi(speech.double().numpy(), noisy[1].double().numpy(), 16000)) < 1e-6
    assert torch.isnan(stoi(noisy[0][None, 8000:12800], speech[None, 8000:12800], 16000)).all()  # 0.3 s: undefined


def test_pesq_without_its_package_says_how_to_install_it(speech):
    if "pesq_wb" not in missing_audio_metrics():
        assert float(pesq(speech[None], speech[None], 16000)) > 4
        return
    with pytest.raises(ImportError, match="PESQ needs the pesq package: pip install pesq"):
        pesq(speech[None], speech[None], 16000)


def test_the_eval_metrics_and_bitrates(noise):
    metrics = audio_reconstruction_metrics(noise, noise, RATE)
    assert set(metrics) == {"mel_distance", "mrstft_distance", "si_sdr", "stoi", "pesq_wb"} - set(missing_audio_metrics())
    assert all(values.shape == (2,) for values in metrics.values())
    assert kbps(75, 4096) == pytest.approx(0.9) and kbps(40, 4096) == pytest.approx(0.48) and kbps(1000, 64, 2) == 12.0
    with pytest.raises(ValueError, match="positive"):
        kbps(75, 0)


@pytest.mark.parametrize("metric", [si_sdr, multi_resolution_stft_distance, lambda r, t: mel_distance(r, t, RATE)])
def test_bad_inputs_are_refused(noise, metric):
    with pytest.raises(ValueError, match=r"mono batches \[B, T\] of one shape, got \[2, 24000\] and \[2, 23999\]"):
        metric(noise, noise[:, 1:])
    with pytest.raises(ValueError, match="mono batches"):
        metric(noise[0], noise[0])
    with pytest.raises(TypeError, match="floating-point audio"):
        metric(noise.to(torch.int16), noise.to(torch.int16))


def test_too_short_audio_for_the_stft_is_refused():
    with pytest.raises(ValueError, match="a 2048-point centred STFT needs more than 1024 samples, got 1000"):
        multi_resolution_stft_distance(torch.zeros(1, 1000), torch.zeros(1, 1000))
