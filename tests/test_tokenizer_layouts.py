"""The Tokenizer interface driven through every index layout: images [B,h,w] and [B,G,h,w], audio [B,T]
with per-item lengths and chunking, graphs [N]; plus the input checks."""

import pytest
import torch

import tokenizers_zoo
from tokenizers_zoo import EncodeOutput, TokenizerOutput

from stand_ins import FrameAudioConfig, FrameAudioTokenizer, MeanGraphConfig, MeanGraphTokenizer


def tiny_image_model(**quantizer):
    spec = {"type": "vq", "codebook_size": 32, **quantizer}
    return tokenizers_zoo.create_model("vqvae_tiny", ch=32, z_channels=32, embed_dim=8, quantizer=spec)


def images(batch=2, size=16):
    return torch.rand(batch, 3, size, size) * 2 - 1


def test_image_layout_one_codebook():
    model = tiny_image_model().eval()
    out = model.encode(images())
    assert isinstance(out, EncodeOutput)
    assert out.indices.shape == (2, 4, 4) and out.indices.dtype == torch.int64
    assert out.quantized.shape == out.latents.shape == (2, 8, 4, 4)
    assert model.index_layout == "[B, h, w]"
    assert model.decode(out.indices).shape == (2, 3, 16, 16)
    torch.testing.assert_close(model.decode(out.indices), model.decode_latents(out.quantized), rtol=0, atol=0)


def test_image_layout_groups():
    model = tiny_image_model(groups=2).eval()
    out = model.encode(images())
    assert out.indices.shape == (2, 2, 4, 4)
    assert model.index_layout == "[B, G, h, w]"
    torch.testing.assert_close(model.decode(out.indices), model.decode_latents(out.quantized), rtol=0, atol=0)
    with pytest.raises(ValueError, match="4 dims"):
        model.decode(out.indices[:, 0])


def test_training_forward_returns_losses_and_stats():
    model = tiny_image_model().train()
    out = model(images())
    assert isinstance(out, TokenizerOutput)
    assert set(out.losses) == {"reconstruction", "commitment", "codebook"}
    torch.testing.assert_close(out.loss, sum(out.losses.values()))
    out.loss.backward()
    assert model.encoder.conv_in.weight.grad is not None and model.quantizer.codebook.grad is not None
    reconstruction, indices, loss, losses, stats, extras = out  # also unpacks like a tuple
    assert out["indices"] is indices and out[0] is reconstruction and 0 <= float(stats.usage) <= 1
    assert extras["latents"].shape == extras["quantized"].shape == (2, 8, 4, 4)


def test_audio_layout_with_lengths():
    model = FrameAudioTokenizer(FrameAudioConfig()).eval()
    audio = torch.rand(2, 100) * 2 - 1
    lengths = torch.tensor([100, 37])
    out = model.encode(audio, lengths=lengths, sample_rate=8000)
    assert out.indices.shape == (2, 13) and out.lengths.tolist() == [13, 5]  # ceil(100/8), ceil(37/8)
    assert model.index_layout == "[B, T]"
    assert model.decode(out.indices).shape == (2, 104)


def test_audio_padding_is_masked_out_of_losses():
    model = FrameAudioTokenizer(FrameAudioConfig()).train()
    audio = torch.rand(2, 64) * 2 - 1
    lengths = torch.tensor([64, 32])
    padded = audio.clone()
    padded[1, 32:] = 0.9  # changing the padding must not change the losses
    first, second = model(audio, lengths=lengths), model(padded, lengths=lengths)
    for name in first.losses:
        torch.testing.assert_close(first.losses[name], second.losses[name])


def test_audio_chunked_encoding_equals_whole():
    model = FrameAudioTokenizer(FrameAudioConfig()).eval()
    audio = torch.rand(3, 200) * 2 - 1
    whole = model.encode(audio)
    chunked = model.encode(audio, chunk_size=48)
    assert torch.equal(whole.indices, chunked.indices)
    with pytest.raises(ValueError, match="multiple of the hop"):
        model.encode(audio, chunk_size=50)


def test_audio_input_checks():
    model = FrameAudioTokenizer(FrameAudioConfig())
    with pytest.raises(ValueError, match="16000 Hz given.*8000 Hz"):
        model.encode(torch.zeros(1, 80), sample_rate=16000)
    with pytest.raises(ValueError, match=r"mono \[B, T\]"):
        model.encode(torch.zeros(1, 1, 80))
    with pytest.raises(ValueError, match=r"lengths must be in \[1, 80\]"):
        model.encode(torch.zeros(2, 80), lengths=torch.tensor([80, 81]))
    with pytest.raises(ValueError, match=r"must be in \[-1, 1\]"):
        model.encode(torch.full((1, 80), 3.0))


def test_graph_layout_one_code_per_node():
    model = MeanGraphTokenizer(MeanGraphConfig()).eval()
    features = torch.rand(7, 6)
    edge_index = torch.tensor([[0, 1, 2, 3, 4, 5], [1, 2, 3, 4, 5, 6]])
    out = model.encode(features, edge_index=edge_index)
    assert out.indices.shape == (7,) and model.index_layout == "[N]"
    assert model.decode(out.indices, edge_index=edge_index).shape == (7, 6)
    rewired = model.encode(features, edge_index=torch.tensor([[6], [0]]))
    assert not torch.equal(out.latents, rewired.latents)  # the structure reaches the encoder


def test_graph_input_checks():
    model = MeanGraphTokenizer(MeanGraphConfig())
    features = torch.rand(4, 6)
    with pytest.raises(ValueError, match="edge_index"):
        model.encode(features)
    with pytest.raises(ValueError, match=r"outside \[0, 4\)"):
        model.encode(features, edge_index=torch.tensor([[0], [4]]))
    with pytest.raises(TypeError, match="int64"):
        model.encode(features, edge_index=torch.tensor([[0.0], [1.0]]))
    with pytest.raises(ValueError, match=r"\[N, 6\]"):
        model.encode(torch.rand(4, 5), edge_index=torch.tensor([[0], [1]]))


@pytest.mark.parametrize(
    "x, error, match",
    [
        (torch.rand(2, 3, 16), ValueError, r"\[B, 3, H, W\]"),
        (torch.rand(2, 1, 16, 16), ValueError, "3 channels"),
        (torch.rand(2, 3, 18, 16), ValueError, "multiples of 4"),
        (torch.randint(0, 255, (2, 3, 16, 16), dtype=torch.uint8), TypeError, "floating-point"),
        (torch.rand(2, 3, 16, 16) * 255, ValueError, r"\[-1, 1\]"),
        (torch.full((1, 3, 16, 16), float("nan")), ValueError, "NaN"),
        ([[0.0]], TypeError, "torch.Tensor"),
    ],
)
def test_image_input_checks(x, error, match):
    with pytest.raises(error, match=match):
        tiny_image_model().encode(x)


def test_decode_rejects_bad_indices():
    model = tiny_image_model()
    with pytest.raises(ValueError, match=r"\[0, 32\)"):
        model.decode(torch.full((1, 4, 4), 32))
    with pytest.raises(TypeError, match="integer"):
        model.decode(torch.zeros(1, 4, 4))
