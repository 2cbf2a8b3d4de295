"""Audio in and out: files refused or converted with clear messages, and long inputs encoded in overlapping
chunks whose codes equal whole-input encoding while each window stays small."""

import logging

import numpy as np
import pytest
import soundfile
import torch

from tokenizers_zoo.data import load_audio, save_audio
from tokenizers_zoo.data.audio import audio_header

from conftest import DATA
from stand_ins import FrameAudioConfig, ReachAudioTokenizer

CLIP = DATA / "audio" / "8455_210777_000067_000000.wav"


def test_conversion_can_be_refused_with_the_rate_and_channels_named(tmp_path, caplog):
    stereo = tmp_path / "stereo.flac"
    soundfile.write(stereo, np.stack([np.linspace(-0.5, 0.5, 1600)] * 2, axis=1), 16000)
    with pytest.raises(ValueError, match=r"stereo\.flac is 16000 Hz with 2 channel\(s\); expected 24000 Hz mono \(conversion is off\)"):
        load_audio(stereo, 24000, convert=False)
    with pytest.raises(ValueError, match=r"is 16000 Hz with 2 channel\(s\); expected 16000 Hz mono"):
        load_audio(stereo, 16000, convert=False)
    with caplog.at_level(logging.INFO, logger="tokenizers_zoo.data.audio"):
        wav = load_audio(stereo, 24000)
    assert wav.shape == (2400,) and "averaged 2 channels" in caplog.text and "resampled from 16000 Hz to 24000 Hz" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="tokenizers_zoo.data.audio"):
        assert torch.equal(load_audio(stereo, 24000), wav)
    assert "resampled" not in caplog.text  # noted once per file: a training set is read every epoch
    assert torch.equal(load_audio(CLIP, 24000, convert=False), load_audio(CLIP, 24000))


@pytest.mark.parametrize("rate", [0, -8000, 24000.0, True, "24000"])
def test_a_bogus_sample_rate_is_refused(tmp_path, rate):
    with pytest.raises(ValueError, match="sample_rate must be a positive number of samples per second"):
        load_audio(CLIP, rate)
    with pytest.raises(ValueError, match="sample_rate must be a positive"):
        save_audio(torch.zeros(10), tmp_path / "x.wav", rate)


def test_the_header_gives_duration_rate_and_frames_without_decoding(tmp_path):
    seconds, rate, frames = audio_header(CLIP)
    assert (rate, frames) == (24000, len(load_audio(CLIP, 24000))) and seconds == frames / 24000
    (tmp_path / "junk.wav").write_bytes(b"RIFF....WAVEjunk")
    with pytest.raises(ValueError, match=r"junk\.wav is not a readable audio file"):
        audio_header(tmp_path / "junk.wav")


def reach_model():
    torch.manual_seed(0)
    return ReachAudioTokenizer(FrameAudioConfig(quantizer={"type": "vq", "codebook_size": 64})).eval()


def speech(batch=2, seconds=1.0):
    clip = load_audio(CLIP, 8000)
    samples = int(seconds * 8000)
    return torch.stack([clip[i * samples : (i + 1) * samples] for i in range(batch)])


def test_overlapping_chunks_give_the_whole_input_codes():
    model, audio = reach_model(), speech()[:, :7995]  # not a whole number of hops
    whole = model.encode(audio)
    reach = model.reach * model.input_spec.hop_length
    with torch.no_grad():
        for chunk in (8, 64, 800, 8000):
            chunked = model.encode(audio, chunk_size=chunk, chunk_context=reach)
            assert torch.equal(chunked.indices, whole.indices), chunk
            torch.testing.assert_close(chunked.latents, whole.latents, atol=1e-5, rtol=1e-5)
        assert torch.equal(model.encode(audio, chunk_size=800).indices, whole.indices)  # default context: one second
        blind = model.encode(audio, chunk_size=64, chunk_context=0)  # the encoder reaches past an isolated chunk
    assert not torch.allclose(blind.latents, whole.latents)


def test_chunked_encoding_keeps_each_window_small_and_masks_padding():
    model, audio = reach_model(), speech(seconds=1.5)
    windows = []
    encode_latents = model.encode_latents
    model.encode_latents = lambda x, **context: windows.append(x.shape[-1]) or encode_latents(x, **context)
    lengths = torch.tensor([12000, 9001])
    with torch.no_grad():
        chunked = model.encode(audio, lengths=lengths, chunk_size=1600, chunk_context=160)
    assert max(windows) == 1600 + 2 * 160 and len(windows) == 8  # memory follows the window, not the input
    model.encode_latents = encode_latents
    whole = model.encode(audio, lengths=lengths)
    assert torch.equal(chunked.indices, whole.indices) and torch.equal(chunked.lengths, torch.tensor([1500, 1126]))
    assert model.default_chunk_context == 8000


@pytest.mark.parametrize(
    "options, message",
    [
        ({"chunk_size": 12}, "chunk_size must be a positive multiple of the hop length 8, got 12"),
        ({"chunk_size": 0}, "chunk_size must be a positive multiple"),
        ({"chunk_size": 16, "chunk_context": 4}, "chunk_context must be a non-negative multiple of the hop length 8, got 4"),
        ({"chunk_size": 16, "chunk_context": -8}, "chunk_context must be a non-negative multiple"),
        ({"chunk_context": 16}, "give chunk_size too"),
        ({"chunk_size": 16, "sample_rate": 16000}, "16000 Hz given, this tokenizer expects 8000 Hz"),
    ],
)
def test_bad_chunking_is_refused(options, message):
    with pytest.raises(ValueError, match=message):
        reach_model().encode(speech(), **options)
