"""``tokenizers-zoo encode`` / ``decode`` on audio: folders of files of any rate, channels and length, padded
batches, chunked long files, token files that record the rate and lengths, and clear refusals."""

import json
import logging
import math

import numpy as np
import pytest
import soundfile
import torch

from tokenizers_zoo.cli import main
from tokenizers_zoo.data import load_audio
from tokenizers_zoo.token_file import load_tokens, save_tokens

from conftest import DATA
from stand_ins import FrameAudioConfig, ReachAudioTokenizer

CLIP = DATA / "audio" / "8455_210777_000067_000000.wav"
RATE, HOP = 8000, 8


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def model():
    torch.manual_seed(0)
    return ReachAudioTokenizer(FrameAudioConfig(quantizer={"type": "vq", "codebook_size": 64})).eval()


@pytest.fixture
def model_dir(tmp_path, model):
    model.save_pretrained(tmp_path / "model")
    return tmp_path / "model"


@pytest.fixture
def folder(tmp_path):
    """Three clips: 24 kHz mono, a 16 kHz stereo FLAC in a sub-folder, and a 0.3 s mono one."""
    clip, _ = soundfile.read(CLIP, dtype="float32")
    (tmp_path / "in" / "sub").mkdir(parents=True)
    soundfile.write(tmp_path / "in" / "a.wav", clip[:30000], 24000)
    stereo = np.stack([clip[:16000], 0.5 * clip[:16000]], axis=1)
    soundfile.write(tmp_path / "in" / "sub" / "b.flac", stereo, 16000)
    soundfile.write(tmp_path / "in" / "c.wav", clip[5000:12201], 24000)
    return tmp_path / "in"


def test_encode_a_folder_and_decode_it_back(capsys, tmp_path, model, model_dir, folder, caplog):
    with caplog.at_level(logging.INFO, logger="tokenizers_zoo.data"):
        code, out, _ = run(capsys, "encode", model_dir, folder, "-o", tmp_path / "t.safetensors", "--batch-size", 2)
    assert code == 0 and "3 item(s)" in out
    assert "b.flac: averaged 2 channels to mono" in caplog.text and "resampled from 16000 Hz to 8000 Hz" in caplog.text
    tokens = load_tokens(tmp_path / "t.safetensors")
    assert tokens.input_spec["sample_rate"] == RATE and tokens.input_spec["hop_length"] == HOP
    assert [item["name"] for item in tokens.items] == ["a.wav", "c.wav", "sub/b.flac"]
    for item, indices in zip(tokens.items, tokens.tokens):
        wav = load_audio(folder / item["name"], RATE)
        assert item["shape"] == [len(wav)] and indices.shape == (-(-len(wav) // HOP),)
        assert torch.equal(indices, model.encode(wav[None]).indices[0])  # padded batches give each file's own codes
    assert tokens.codebook_fingerprint == model.quantizer.codebook_fingerprint()

    code, out, _ = run(capsys, "decode", tmp_path / "t.safetensors", "-o", tmp_path / "out", "--model", model_dir)
    assert code == 0 and "3 item(s)" in out
    for item, indices in zip(tokens.items, tokens.tokens):
        path = (tmp_path / "out" / item["name"]).with_suffix(".wav")
        written, rate = soundfile.read(path, dtype="float32")
        assert rate == RATE and written.shape == tuple(item["shape"])  # cut to the input's length, not F x hop
        expected = model.decode(indices[None])[0, : item["shape"][0]].clamp(-1, 1)
        torch.testing.assert_close(torch.from_numpy(written), expected, atol=1.5 / 32768, rtol=0)


def test_long_files_are_encoded_in_chunks_with_the_same_codes(capsys, tmp_path, model_dir, folder):
    assert run(capsys, "encode", model_dir, folder, "-o", tmp_path / "whole.safetensors")[0] == 0
    code, _, _ = run(capsys, "encode", model_dir, folder, "-o", tmp_path / "chunked.safetensors", "--chunk-seconds", 0.1, "--chunk-context-seconds", 0.01)
    assert code == 0
    whole, chunked = load_tokens(tmp_path / "whole.safetensors"), load_tokens(tmp_path / "chunked.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(whole.tokens, chunked.tokens))


def test_one_file_decodes_to_the_named_file(capsys, tmp_path, model_dir):
    assert run(capsys, "encode", model_dir, CLIP, "-o", tmp_path / "t.safetensors")[0] == 0
    assert run(capsys, "decode", tmp_path / "t.safetensors", "-o", tmp_path / "speech.flac", "--model", model_dir)[0] == 0
    assert soundfile.info(tmp_path / "speech.flac").frames == len(load_audio(CLIP, RATE))


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--chunk-context-seconds", "0.5"], "--chunk-context-seconds is the overlap of chunked encoding: give --chunk-seconds too"),
        (["--chunk-seconds", "0"], "--chunk-seconds must be a finite number of seconds > 0, got 0.0"),
        (["--chunk-seconds", "nan"], "--chunk-seconds must be a finite number"),
        (["--chunk-seconds", "1", "--chunk-context-seconds", "-1"], "--chunk-context-seconds must be a finite number of seconds >= 0"),
    ],
)
def test_bad_chunk_options_are_refused(capsys, tmp_path, model_dir, extra, message):
    code, _, err = run(capsys, "encode", model_dir, CLIP, "-o", tmp_path / "t.safetensors", *extra)
    assert code == 1 and message in err


def test_bad_audio_files_and_token_files_are_refused(capsys, tmp_path, model_dir, folder):
    (folder / "broken.wav").write_bytes(b"RIFF....WAVEjunk")
    code, _, err = run(capsys, "encode", model_dir, folder, "-o", tmp_path / "t.safetensors")
    assert code == 1 and "broken.wav is not a readable audio file" in err and not (tmp_path / "t.safetensors").exists()
    (folder / "broken.wav").unlink()
    soundfile.write(folder / "empty.wav", np.zeros(0, dtype=np.float32), 24000)
    code, _, err = run(capsys, "encode", model_dir, folder / "empty.wav", "-o", tmp_path / "t.safetensors")
    assert code == 1 and "empty.wav holds no audio (0 frames)" in err

    assert run(capsys, "encode", model_dir, CLIP, "-o", tmp_path / "t.safetensors")[0] == 0
    tokens = load_tokens(tmp_path / "t.safetensors")
    tokens.items[0]["shape"] = [len(tokens.tokens[0]) * HOP + 1]  # longer than its tokens can decode to
    save_tokens(tmp_path / "bad.safetensors", tokens)
    code, _, err = run(capsys, "decode", tmp_path / "bad.safetensors", "-o", tmp_path / "out", "--model", model_dir)
    assert code == 1 and "records shape" in err and not (tmp_path / "out").exists()


def test_chunking_is_refused_for_an_image_model(capsys, tmp_path):
    import tokenizers_zoo

    tokenizers_zoo.create_model("vqvae_tiny", ch=32, z_channels=32, embed_dim=8).save_pretrained(tmp_path / "image")
    code, _, err = run(capsys, "encode", tmp_path / "image", DATA / "cifar10" / "cat" / "0000.jpg", "-o", tmp_path / "t.safetensors", "--chunk-seconds", 1)
    assert code == 1 and "--chunk-seconds and --chunk-context-seconds are for audio; image models take no chunks" in err


def test_eval_on_a_folder_averages_each_files_metrics(capsys, tmp_path, model, model_dir, folder):
    from tokenizers_zoo.audio_metrics import audio_reconstruction_metrics, missing_audio_metrics

    code, out, _ = run(capsys, "eval", model_dir, folder, "--json", tmp_path / "eval.json", "--batch-size", 2,
                       "--save-reconstructions", tmp_path / "rec")
    assert code == 0
    result = json.loads((tmp_path / "eval.json").read_text())
    expected, codes = {}, []
    for path in sorted(folder.rglob("*.*")):
        wav = load_audio(path, RATE)[None]
        with torch.no_grad():
            indices = model.encode(wav).indices
            reconstruction = model.decode(indices)[:, : wav.shape[-1]]
        codes.append(indices.flatten())
        for name, value in audio_reconstruction_metrics(reconstruction, wav, RATE).items():
            expected.setdefault(name, []).append(float(value))
        written, _ = soundfile.read((tmp_path / "rec" / path.relative_to(folder)).with_suffix(".wav"), dtype="float32")
        assert written.shape == (wav.shape[-1],)
    assert result["items"] == 3 and result["kbps"] == 6.0  # 1000 tokens/s x 6 bits
    if "stoi" in expected:  # undefined for the 0.3 s clip: averaged over the two others
        assert math.isnan(expected["stoi"][1]) and result["stoi_items"] == 2
        expected["stoi"] = [value * 1.5 for value in expected["stoi"] if not math.isnan(value)]
    for name, values in expected.items():
        assert result[name] == pytest.approx(sum(values) / 3, abs=1e-4), name
    assert result["codebook_usage"] == pytest.approx(len(torch.cat(codes).unique()) / 64, abs=1e-4)
    assert {name for name in missing_audio_metrics()} == {name for name, value in result.items() if value == "not installed"}
    assert "si_sdr" in out and "mrstft_distance" in out and f"{result['mel_distance']}" in out  # the printed table


def test_eval_refuses_what_audio_cannot_do(capsys, tmp_path, model_dir, folder):
    code, _, err = run(capsys, "eval", model_dir, folder, "--size", 64)
    assert code == 1 and "--size resizes images" in err
    (tmp_path / "short").mkdir()
    soundfile.write(tmp_path / "short" / "a.wav", np.zeros(300, dtype=np.float32), 8000)
    code, _, err = run(capsys, "eval", model_dir, tmp_path / "short")
    assert code == 1 and "has 300 samples; the audio metrics need at least 1025" in err
