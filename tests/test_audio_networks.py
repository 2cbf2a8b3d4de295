"""The audio codec networks against independent references: EnCodec's padding, legacy weight norm, the "same" ISTFT
(perfect reconstruction of a torch.stft), the magnitude clip, 1-D attention, AdaLayerNorm rows, causality."""

import math

import pytest
import torch
import torch.nn.functional as F

from tokenizers_zoo.networks.blocks import AttnBlock, ResnetBlock
from tokenizers_zoo.networks.seanet import SEANetArch, SEANetEncoder, WeightNormConv1d, reflect_pad, seanet_padding
from tokenizers_zoo.networks.vocos import ISTFT, ISTFTHead, AdaLayerNorm, VocosArch, VocosBackbone


@pytest.mark.parametrize("causal", [False, True])
def test_padding_matches_encodec_and_gives_ceil_frames(causal):
    for kernel, stride, dilation in ((7, 1, 1), (3, 1, 2), (16, 8, 1), (10, 5, 1), (12, 6, 1), (1, 1, 1)):
        effective = (kernel - 1) * dilation + 1
        total = effective - stride
        for length in (1, 2, 5, 37, 320, 321, 999):
            n_frames = (length - effective + total) / stride + 1  # encodec get_extra_padding_for_conv1d
            extra = (math.ceil(n_frames) - 1) * stride + (effective - total) - length
            official = (total, extra) if causal else (total - total // 2, total // 2 + extra)
            assert seanet_padding(length, kernel, stride, dilation, causal) == official
            left, right = official
            assert (length + left + right - effective) // stride + 1 == -(-length // stride)


def test_reflect_padding_of_short_inputs_zero_extends_first():
    x = torch.tensor([[[1.0, 2.0, 3.0]]])
    assert reflect_pad(x, 2, 1).tolist() == [[[3.0, 2.0, 1.0, 2.0, 3.0, 2.0]]]
    padded = reflect_pad(x, 3, 4)  # encodec pad1d: extend to [1, 2, 3, 0, 0], reflect by (3, 4), cut the 2 extra zeros
    expected = F.pad(F.pad(x, (0, 2)), (3, 4), mode="reflect")[..., :-2]
    assert torch.equal(padded, expected) and padded.shape[-1] == 3 + 3 + 4


def test_weight_norm_conv_equals_torch_weight_norm():
    torch.manual_seed(0)
    ours = WeightNormConv1d(6, 5, 4, stride=2, dilation=1)
    reference = torch.nn.utils.parametrizations.weight_norm(torch.nn.Conv1d(6, 5, 4, stride=2))
    with torch.no_grad():
        ours.weight_g.mul_(torch.rand(5, 1, 1) + 0.5)
        reference.parametrizations.weight.original0.copy_(ours.weight_g)
        reference.parametrizations.weight.original1.copy_(ours.weight_v)
        reference.bias.copy_(ours.bias)
    x = torch.randn(2, 6, 21)
    assert torch.allclose(ours(x), reference(x), atol=1e-6)
    fresh = WeightNormConv1d(6, 5, 4)  # like weight_norm applied to a fresh conv: g = ||v||, so the weight is v
    assert torch.allclose(fresh.weight(), fresh.weight_v, atol=1e-6)


def test_istft_same_padding_inverts_an_stft():
    for n_fft, hop in ((1280, 320), (2400, 600), (64, 16)):
        frames = 9
        signal = torch.randn(2, frames * hop, generator=torch.Generator().manual_seed(n_fft))
        pad = (n_fft - hop) // 2
        window = torch.hann_window(n_fft)
        padded = F.pad(signal, (pad, pad), mode="reflect")
        spec = torch.stft(padded, n_fft, hop, window=window, center=False, return_complex=True)
        assert spec.shape[-1] == frames
        recovered = ISTFT(n_fft, hop)(spec)
        assert recovered.shape == signal.shape and torch.allclose(recovered, signal, atol=1e-4)
    with pytest.raises(ValueError, match="even difference"):
        ISTFT(1281, 320)


def test_head_clips_the_magnitude_at_100():
    head = ISTFTHead(8, 64, 16)
    features = torch.randn(1, 5, 8)
    phases = torch.rand(33, generator=torch.Generator().manual_seed(0)) * 2 * math.pi

    def output(log_magnitude):
        with torch.no_grad():
            head.out.weight.zero_()
            head.out.bias.zero_()
            head.out.bias[:33] = log_magnitude
            head.out.bias[33:] = phases
            return head(features)

    assert torch.allclose(output(10.0), output(math.log(100.0)), atol=1e-4)
    assert not torch.allclose(output(math.log(50.0)), output(math.log(100.0)))
    assert output(10.0).shape == (1, 5 * 16)


def as_image_kernel(weight):
    """A 1-D kernel [out, in, k] as the middle row of a k x k one (zeros above and below): the same map on a 1-pixel row."""
    square = weight.new_zeros(*weight.shape, weight.shape[-1])
    square[:, :, weight.shape[-1] // 2] = weight
    return square


def test_one_dimensional_blocks_equal_the_image_blocks_on_a_row():
    torch.manual_seed(0)
    x = torch.randn(2, 32, 11)
    for make in (lambda dims: AttnBlock(32, dims=dims), lambda dims: ResnetBlock(32, 32, dims=dims)):
        one, two = make(1).eval(), make(2).eval()
        two.load_state_dict({k: as_image_kernel(v) if v.ndim == 3 else v for k, v in one.state_dict().items()})
        assert torch.allclose(one(x), two(x[:, :, None])[:, :, 0], atol=1e-5)
    attention = AttnBlock(32, dims=1)
    h = attention.norm(x)
    q, k, v = (proj(h) for proj in (attention.q, attention.k, attention.v))
    weights = torch.softmax(torch.bmm(q.transpose(1, 2), k) / math.sqrt(32), dim=2)
    expected = x + attention.proj_out(torch.bmm(v, weights.transpose(1, 2)))
    assert torch.allclose(attention(x), expected, atol=1e-5)


def test_adaptive_layer_norm_rows_per_item():
    norm = AdaLayerNorm(3, 4)
    with torch.no_grad():
        norm.scale.weight.copy_(torch.arange(12.0).reshape(3, 4))
        norm.shift.weight.fill_(0.5)
    x = torch.randn(2, 5, 4)
    out = norm(x, torch.tensor([2, 0]))
    normed = F.layer_norm(x, (4,), eps=1e-6)
    assert torch.allclose(out[0], normed[0] * norm.scale.weight[2] + 0.5) and torch.allclose(out[1], normed[1] * norm.scale.weight[0] + 0.5)
    backbone = VocosBackbone(VocosArch(backbone_dim=32, intermediate_dim=48, num_layers=1, adanorm_num_embeddings=2, n_fft=64), 8)
    assert backbone.condition_ids(torch.tensor([1]), 3, torch.device("cpu")).tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match=r"bandwidth_id must be in \[0, 2\)"):
        backbone.condition_ids(2, 3, torch.device("cpu"))


def test_non_causal_encoder_looks_ahead_and_causal_does_not():
    """Causal convs pad on the left only, but by reflection (as released), so the first few positions of each layer
    mirror the next few: a change at frame 15 of 30 leaves frames 0-14 alone."""
    torch.manual_seed(0)
    audio = torch.randn(1, 9600) * 0.1
    changed = audio.clone()
    changed[:, 4800:] = 0.0
    for causal in (False, True):
        encoder = SEANetEncoder(SEANetArch(n_filters=2, latent_dim=8, causal=causal)).eval()
        with torch.no_grad():
            before, after = encoder(audio[:, None]), encoder(changed[:, None])
        assert before.shape == (1, 8, 30)
        assert torch.equal(before[..., :15], after[..., :15]) == causal  # frame 14 covers samples up to 4,799
        assert not torch.equal(before[..., 15:], after[..., 15:])
