"""What the WavTokenizer and SimVQ-audio tests share: state dicts in the official key layout, written from the official
module structure (EnCodec ``SEANetEncoder``'s ``nn.Sequential``, WavTokenizer's ``VocosBackbone`` and ``ISTFTHead``), and
a reference forward computed from those tensors alone, with the official formulas, independently of the zoo's modules."""

import math

import torch
import torch.nn.functional as F


def clip(seconds=1.0, batch=2, seed=0, rate=24_000):
    """Seeded speech-like noise in [-1, 1]: a few sines under noise, ``[batch, seconds * rate]``."""
    generator = torch.Generator().manual_seed(seed)
    t = torch.arange(int(seconds * rate)) / rate
    tones = sum(torch.sin(2 * math.pi * f * t + p) for f, p in ((180.0, 0.3), (440.0, 1.1), (1200.0, 2.0)))
    return (0.2 * tones / 3 + 0.05 * torch.randn(batch, t.numel(), generator=generator)).clamp(-1, 1)


def _randn(generator, *shape, scale=1.0):
    return torch.randn(*shape, generator=generator) * scale


def _conv(state, generator, key, out_channels, in_channels, kernel):
    v = _randn(generator, out_channels, in_channels, kernel, scale=0.5)
    state[key + ".conv.conv.weight_v"] = v
    state[key + ".conv.conv.weight_g"] = 0.5 + 0.5 * torch.rand(out_channels, 1, 1, generator=generator)  # row norms: activations stay O(1)
    state[key + ".conv.conv.bias"] = _randn(generator, out_channels, scale=0.05)


def official_seanet(prefix, yaml_ratios, n_filters, latent_dim, lstm_layers=2, seed=0):
    """The SEANet encoder's tensors: ``model.0`` conv k7; per (reversed) ratio a res block (``block.1`` k3,
    ``block.3`` k1, ``shortcut`` k1), an ELU and a conv of kernel 2 x ratio; then ``SLSTM``, ELU, conv k7."""
    generator = torch.Generator().manual_seed(seed)
    state, width, index = {}, n_filters, 1
    _conv(state, generator, f"{prefix}model.0", n_filters, 1, 7)
    for ratio in reversed(yaml_ratios):
        _conv(state, generator, f"{prefix}model.{index}.block.1", width // 2, width, 3)
        _conv(state, generator, f"{prefix}model.{index}.block.3", width, width // 2, 1)
        _conv(state, generator, f"{prefix}model.{index}.shortcut", width, width, 1)
        _conv(state, generator, f"{prefix}model.{index + 2}", 2 * width, width, 2 * ratio)
        index, width = index + 3, 2 * width
    for layer in range(lstm_layers):
        for kind in ("ih", "hh"):
            state[f"{prefix}model.{index}.lstm.weight_{kind}_l{layer}"] = _randn(generator, 4 * width, width, scale=width**-0.5)
            state[f"{prefix}model.{index}.lstm.bias_{kind}_l{layer}"] = _randn(generator, 4 * width, scale=0.1)
    _conv(state, generator, f"{prefix}model.{index + 2}", latent_dim, width, 7)
    return state


def official_vocos(latent_dim, dim, intermediate_dim, num_layers, adanorm_rows, n_fft, seed=1):
    """``backbone.*`` (embed, pos_net 0-5, norm, convnext.{i}, final_layer_norm) and ``head.*`` (out, istft.window)."""
    generator = torch.Generator().manual_seed(seed)

    def affine(key, size):
        state[key + ".weight"] = 1 + _randn(generator, size, scale=0.1)
        state[key + ".bias"] = _randn(generator, size, scale=0.1)

    def norm(key):
        if adanorm_rows is None:
            affine(key, dim)
        else:
            state[key + ".scale.weight"] = 1 + _randn(generator, adanorm_rows, dim, scale=0.3)
            state[key + ".shift.weight"] = _randn(generator, adanorm_rows, dim, scale=0.3)

    def linear(key, out_features, in_features, *kernel):
        state[key + ".weight"] = _randn(generator, out_features, in_features, *kernel, scale=(in_features * math.prod(kernel)) ** -0.5)
        state[key + ".bias"] = _randn(generator, out_features, scale=0.02)

    state = {}
    linear("backbone.embed", dim, latent_dim, 7)
    for block in (0, 1, 3, 4):
        affine(f"backbone.pos_net.{block}.norm1", dim)
        linear(f"backbone.pos_net.{block}.conv1", dim, dim, 3)
        affine(f"backbone.pos_net.{block}.norm2", dim)
        linear(f"backbone.pos_net.{block}.conv2", dim, dim, 3)
    affine("backbone.pos_net.2.norm", dim)
    for name in ("q", "k", "v", "proj_out"):
        linear(f"backbone.pos_net.2.{name}", dim, dim, 1)
    affine("backbone.pos_net.5", dim)
    norm("backbone.norm")
    for layer in range(num_layers):
        key = f"backbone.convnext.{layer}"
        state[key + ".dwconv.weight"] = _randn(generator, dim, 1, 7, scale=0.3)
        state[key + ".dwconv.bias"] = _randn(generator, dim, scale=0.02)
        norm(key + ".norm")
        linear(key + ".pwconv1", intermediate_dim, dim)
        linear(key + ".pwconv2", dim, intermediate_dim)
        state[key + ".gamma"] = 0.5 + torch.rand(dim, generator=generator)
    affine("backbone.final_layer_norm", dim)
    linear("head.out", n_fft + 2, dim)
    state["head.istft.window"] = torch.hann_window(n_fft)
    return state


# ---------------------------------------------------------------- reference forward from the official tensors


def _reference_sconv(x, state, key, stride=1, dilation=1, causal=False):
    """EnCodec ``SConv1d``: legacy weight norm, ``get_extra_padding_for_conv1d``, ``pad1d`` (reflect, short inputs
    zero-extended first), as the official code computes them."""
    v, g, bias = (state[f"{key}.conv.conv.{name}"] for name in ("weight_v", "weight_g", "bias"))
    weight = g * v / v.reshape(v.shape[0], -1).norm(dim=1).reshape(-1, 1, 1)
    kernel = (v.shape[-1] - 1) * dilation + 1
    padding_total = kernel - stride
    length = x.shape[-1]
    n_frames = (length - kernel + padding_total) / stride + 1
    extra = (math.ceil(n_frames) - 1) * stride + (kernel - padding_total) - length
    left, right = (padding_total, extra) if causal else (padding_total - padding_total // 2, padding_total // 2 + extra)
    zeros = max(left, right) - length + 1 if length <= max(left, right) else 0
    padded = F.pad(F.pad(x, (0, zeros)), (left, right), mode="reflect")
    padded = padded[..., : padded.shape[-1] - zeros]
    return F.conv1d(padded, weight, bias, stride=stride, dilation=dilation)


def reference_seanet(audio, state, prefix, yaml_ratios, lstm_layers=2, causal=False):
    """``[B, T]`` -> ``[B, latent, F]`` through the official SEANet encoder's layers, one by one."""
    x = _reference_sconv(audio[:, None], state, f"{prefix}model.0", causal=causal)
    index = 1
    for ratio in reversed(yaml_ratios):
        block = _reference_sconv(F.elu(x), state, f"{prefix}model.{index}.block.1", causal=causal)
        block = _reference_sconv(F.elu(block), state, f"{prefix}model.{index}.block.3", causal=causal)
        x = _reference_sconv(x, state, f"{prefix}model.{index}.shortcut", causal=causal) + block
        x = _reference_sconv(F.elu(x), state, f"{prefix}model.{index + 2}", stride=ratio, causal=causal)
        index += 3
    lstm = torch.nn.LSTM(x.shape[1], x.shape[1], lstm_layers)
    lstm.load_state_dict({key.split(".lstm.")[1]: value for key, value in state.items() if key.startswith(f"{prefix}model.{index}.lstm.")})
    y, _ = lstm(x.permute(2, 0, 1))
    x = y.permute(1, 2, 0) + x
    return _reference_sconv(F.elu(x), state, f"{prefix}model.{index + 2}", causal=causal)


def reference_nearest(latents, codebook):
    """Official ``EuclideanCodebook.quantize``: argmax of ``-(|x|^2 - 2 x.e + |e|^2)``."""
    x = latents.transpose(1, 2).reshape(-1, latents.shape[1])
    distance = -(x.pow(2).sum(1, keepdim=True) - 2 * x @ codebook.t() + codebook.t().pow(2).sum(0, keepdim=True))
    return distance.max(dim=-1).indices.reshape(latents.shape[0], -1)


def _group_norm(x, state, key):
    return F.group_norm(x, 32, state[key + ".weight"], state[key + ".bias"], eps=1e-6)


def _resnet(x, state, key):
    h = F.conv1d(F.silu(_group_norm(x, state, key + ".norm1")), state[key + ".conv1.weight"], state[key + ".conv1.bias"], padding=1)
    h = F.conv1d(F.silu(_group_norm(h, state, key + ".norm2")), state[key + ".conv2.weight"], state[key + ".conv2.bias"], padding=1)
    return x + h


def _attention(x, state, key):
    h = _group_norm(x, state, key + ".norm")
    q, k, v = (F.conv1d(h, state[f"{key}.{n}.weight"], state[f"{key}.{n}.bias"]) for n in ("q", "k", "v"))
    weights = torch.softmax(torch.bmm(q.permute(0, 2, 1), k) * x.shape[1] ** -0.5, dim=2)
    out = torch.bmm(v, weights.permute(0, 2, 1))
    return x + F.conv1d(out, state[key + ".proj_out.weight"], state[key + ".proj_out.bias"])


def _norm(x, state, key, bandwidth_id):
    if key + ".scale.weight" in state:
        normed = F.layer_norm(x, x.shape[-1:], eps=1e-6)
        return normed * state[key + ".scale.weight"][bandwidth_id] + state[key + ".shift.weight"][bandwidth_id]
    return F.layer_norm(x, x.shape[-1:], state[key + ".weight"], state[key + ".bias"], eps=1e-6)


def reference_vocos(features, state, hop_length, bandwidth_id=0):
    """``[B, C, F]`` -> ``[B, F * hop]``: backbone (embed, pos_net, norm, ConvNeXt, final LayerNorm) and the ISTFT
    head with "same" padding, overlap-added frame by frame."""
    x = F.conv1d(features, state["backbone.embed.weight"], state["backbone.embed.bias"], padding=3)
    x = _resnet(_resnet(x, state, "backbone.pos_net.0"), state, "backbone.pos_net.1")
    x = _attention(x, state, "backbone.pos_net.2")
    x = _resnet(_resnet(x, state, "backbone.pos_net.3"), state, "backbone.pos_net.4")
    x = _group_norm(x, state, "backbone.pos_net.5")
    x = _norm(x.transpose(1, 2), state, "backbone.norm", bandwidth_id).transpose(1, 2)
    layers = sorted({int(k.split(".")[2]) for k in state if k.startswith("backbone.convnext.")})
    for layer in layers:
        key = f"backbone.convnext.{layer}"
        h = F.conv1d(x, state[key + ".dwconv.weight"], state[key + ".dwconv.bias"], padding=3, groups=x.shape[1]).transpose(1, 2)
        h = _norm(h, state, key + ".norm", bandwidth_id)
        h = F.linear(F.gelu(F.linear(h, state[key + ".pwconv1.weight"], state[key + ".pwconv1.bias"])), state[key + ".pwconv2.weight"], state[key + ".pwconv2.bias"])
        x = x + (state[key + ".gamma"] * h).transpose(1, 2)
    x = F.layer_norm(x.transpose(1, 2), x.shape[1:2], state["backbone.final_layer_norm.weight"], state["backbone.final_layer_norm.bias"], eps=1e-6)
    spectrum = F.linear(x, state["head.out.weight"], state["head.out.bias"]).transpose(1, 2)
    magnitude, phase = spectrum.chunk(2, dim=1)
    magnitude = torch.clip(torch.exp(magnitude), max=1e2)
    spec = magnitude * (torch.cos(phase) + 1j * torch.sin(phase))
    window = state["head.istft.window"]
    n_fft, frames = window.numel(), spec.shape[-1]
    segments = torch.fft.irfft(spec, n_fft, dim=1) * window[None, :, None]
    total = (frames - 1) * hop_length + n_fft
    audio, envelope = torch.zeros(spec.shape[0], total), torch.zeros(total)
    for frame in range(frames):
        audio[:, frame * hop_length : frame * hop_length + n_fft] += segments[:, :, frame]
        envelope[frame * hop_length : frame * hop_length + n_fft] += window.square()
    pad = (n_fft - hop_length) // 2
    return audio[:, pad:-pad] / envelope[pad:-pad]
