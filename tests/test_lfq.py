"""Lookup-free quantization: sign codes, little-endian indices per group, the official entropy and commitment
losses (checked against a dense computation of the official formula), per-group statistics, no state."""

import math

import pytest
import torch

from tokenizers_zoo.config import ConfigError
from tokenizers_zoo.quantizers import GroupedQuantizer, LookupFreeQuantizer, build_quantizer


def lfq(groups=2, bits=8, **options):
    return build_quantizer({"type": "lfq", "codebook_size": 2**bits, "groups": groups, **options}, groups * bits)


def official_entropy_loss(z, groups, bits, temperature=0.01, eps=1e-5):
    """lookup_free_quantize.py, densely: logits 2 <z, c> over the 2^bits +-1 codes of each group, softmax at the
    temperature, the sample entropy averaged and the entropy of the probabilities averaged over (b, n, g)."""
    vectors = z.double().movedim(1, -1).reshape(-1, groups, bits)
    codes = torch.tensor([[1.0 if (j >> k) & 1 else -1.0 for k in range(bits)] for j in range(2**bits)], dtype=torch.float64)
    logits = 2 * torch.einsum("ngd,jd->ngj", vectors, codes) / temperature
    probs, log_probs = logits.softmax(-1), logits.log_softmax(-1)
    sample = -(probs * log_probs).sum(-1).mean()
    mean = probs.reshape(-1, 2**bits).mean(0)
    return sample - (-(mean * (mean + eps).log()).sum())


def test_indices_are_little_endian_bits_of_contiguous_groups():
    q = lfq(groups=2, bits=8).eval()
    z = -torch.ones(1, 16, 1, 2)
    z[0, [0, 3, 7], 0, 0] = 0.5  # group 0, bits 0, 3, 7 at the first position
    z[0, [8 + 1, 8 + 2], 0, 0] = 2.0  # group 1, bits 1, 2
    z[0, 8 + 4, 0, 1] = 1e-3  # group 1, bit 4 at the second position
    out = q(z)
    assert out.indices.shape == (1, 2, 1, 2) and out.indices.dtype == torch.int64
    assert out.indices[0, :, 0, 0].tolist() == [1 + 8 + 128, 2 + 4]
    assert out.indices[0, :, 0, 1].tolist() == [0, 16]


def test_zero_and_negative_features_give_minus_one_and_codes_invert_exactly():
    q = lfq(groups=2, bits=8).eval()
    z = torch.randn(3, 16, 4, 5)
    z[:, :, 0, 0] = 0.0
    out = q(z)
    signs = torch.where(z > 0, 1.0, -1.0)
    assert torch.equal(out.quantized, signs) and (out.indices[:, :, 0, 0] == 0).all()
    assert torch.equal(q.indices_to_codes(out.indices), signs)
    every = torch.arange(256).reshape(1, 1, 16, 16).expand(2, 2, 16, 16)
    assert torch.equal(q(q.indices_to_codes(every)).indices, every)  # all 256 codes of every group round-trip


def test_groups_of_8_bits_are_one_16_bit_code_split_little_endian():
    z = torch.randn(4, 16, 3, 3)
    grouped, plain = lfq(groups=2, bits=8).eval()(z), lfq(groups=1, bits=16).eval()(z)
    assert plain.indices.shape == (4, 3, 3) and plain.indices.max() < 2**16
    assert torch.equal(plain.indices, grouped.indices[:, 0] + 256 * grouped.indices[:, 1])
    assert torch.equal(plain.quantized, grouped.quantized)


def test_no_parameters_no_state_and_the_interface():
    q = lfq(groups=4, bits=8)
    assert isinstance(q, GroupedQuantizer) and q.shared and q.loss_reduction == "mean"  # the defaults LFQ declares
    assert q.state_dict() == {} and not list(q.parameters())
    assert (q.num_groups, q.codebook_size, q.code_dim, q.dim) == (4, 256, 8, 32)
    assert build_quantizer({"type": "lfq", "groups": 4}, 32).codebook_size == 256  # 2^bits unless given
    assert q.index_layout(4) == "[B, G, h, w]" and lfq(groups=1, bits=8).index_layout(4) == "[B, h, w]"
    assert q.codebook_fingerprint() == lfq(groups=4, bits=8).codebook_fingerprint() != lfq(groups=2, bits=8).codebook_fingerprint()
    codebook = q.get_codebook()
    assert codebook.shape == (256, 8) and torch.equal(codebook[5], torch.tensor([1.0, -1, 1, -1, -1, -1, -1, -1]))
    with pytest.raises(ValueError, match=r"indices must be in \[0, 256\)"):
        q.check_indices(torch.full((1, 4, 2, 2), 256), 4)
    with pytest.raises(ValueError, match="indices have 3 groups"):
        q.check_indices(torch.zeros(1, 3, 2, 2, dtype=torch.long), 4)


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="2\\^8 = 256 codes, but codebook_size is 512"):
        build_quantizer({"type": "lfq", "codebook_size": 512, "groups": 4}, 32)
    with pytest.raises(ValueError, match="1 to 16 bits, got 32: split wider latents into groups"):
        build_quantizer({"type": "lfq", "codebook_size": 2**32}, 32)
    with pytest.raises(ConfigError, match="cannot be split into 3 equal groups"):
        build_quantizer({"type": "lfq", "codebook_size": 256, "groups": 3}, 32)
    with pytest.raises(ValueError, match="temperature must be a positive"):
        LookupFreeQuantizer(8, 256, temperature=0.0)
    with pytest.raises(ConfigError, match="no option"):
        build_quantizer({"type": "lfq", "codebook_size": 256, "codebook_enlarge_ratio": 3}, 8)


@pytest.mark.parametrize("groups, bits", [(4, 8), (2, 8), (1, 8), (1, 10), (3, 5), (2, 1)])
def test_losses_match_the_official_formulas(groups, bits):
    torch.manual_seed(groups * bits)
    z = (torch.randn(3, groups * bits, 5, 6) * 0.05).requires_grad_()  # small latents: soft assignments spread out
    out = lfq(groups, bits).train()(z)
    assert sorted(out.losses) == ["commitment", "entropy"]
    torch.testing.assert_close(out.losses["entropy"].double(), 0.1 * official_entropy_loss(z.detach(), groups, bits), rtol=1e-5, atol=1e-6)
    signs = torch.where(z > 0, 1.0, -1.0)
    torch.testing.assert_close(out.losses["commitment"], 0.25 * (z - signs).square().mean())
    dense = z.detach().double().requires_grad_()
    (expected,) = torch.autograd.grad(0.1 * official_entropy_loss(dense, groups, bits), dense)
    (grad,) = torch.autograd.grad(out.losses["entropy"], z)
    assert (grad.double() - expected).abs().max() < 1e-4 * expected.abs().max()


def test_entropy_of_16_bit_codes_equals_the_dense_softmax_over_65536_codes():
    torch.manual_seed(16)
    z = (torch.randn(2, 16, 4, 4) * 0.02).requires_grad_()
    entropy = lfq(groups=1, bits=16).train()(z).losses["entropy"]
    torch.testing.assert_close(entropy.double(), 0.1 * official_entropy_loss(z.detach(), 1, 16), rtol=1e-5, atol=1e-6)
    dense = z.detach().double().requires_grad_()
    (expected,) = torch.autograd.grad(0.1 * official_entropy_loss(dense, 1, 16), dense)
    (grad,) = torch.autograd.grad(entropy, z)
    assert (grad.double() - expected).abs().max() < 2e-4 * expected.abs().max()  # float32; the dense official softmax: 4e-4


def test_straight_through_values_and_gradients_and_eval_losses():
    q = lfq(groups=2, bits=8)
    z = torch.randn(2, 16, 3, 3, requires_grad=True)
    out = q.eval()(z)
    assert out.losses["entropy"] == 0  # training only, as the official code
    (out.quantized * torch.arange(16.0).view(1, 16, 1, 1)).sum().backward()
    assert torch.equal(z.grad, torch.arange(16.0).view(1, 16, 1, 1).expand_as(z))
    assert lfq(groups=2, bits=8, entropy_weight=0.0).train()(z).losses["entropy"] == 0


def test_usage_is_per_group_and_the_mask_excludes_padding():
    q = lfq(groups=2, bits=8).train()
    z = -torch.ones(1, 16, 2, 3)
    z[0, 0, 0, :] = 1.0  # group 0: codes 1 (first row) and 0 (second row); group 1: always 0
    out = q(z)
    assert torch.equal(out.stats.usage, torch.tensor([2 / 256, 1 / 256]))
    torch.testing.assert_close(out.stats.perplexity, torch.tensor([2.0, 1.0]))
    assert out.stats.dead_codes.tolist() == [0, 0]
    mask = torch.tensor([[[True, True, True], [False, False, False]]])
    masked = q(z, mask)
    assert torch.equal(masked.stats.usage, torch.tensor([1 / 256, 1 / 256]))
    z[0, :, 1, :] = 100.0  # padding far from its code: must not count in the commitment loss
    assert q(z, mask).losses["commitment"] == 0
    assert math.isclose(float(q(z).losses["commitment"]), 0.25 * 99**2 / 2, rel_tol=1e-6)
