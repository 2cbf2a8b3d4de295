"""The plain VQ quantizer and the grouped wrapper: values, gradients, updates, statistics, learning."""

import math

import pytest
import torch
import torch.nn.functional as F

from tokenizers_zoo.quantizers import GroupedQuantizer, VectorQuantizer, build_quantizer, kmeans


def latent(batch=4, dim=8, h=5, w=5):
    return torch.randn(batch, dim, h, w)


def test_straight_through_values_and_gradient():
    q = VectorQuantizer(8, 32)
    z = latent().requires_grad_()
    out = q(z)
    assert out.indices.shape == (4, 5, 5) and out.indices.dtype == torch.int64
    torch.testing.assert_close(out.quantized, q.codebook[out.indices].permute(0, 3, 1, 2), rtol=0, atol=0)
    (out.quantized * 3).sum().backward()
    torch.testing.assert_close(z.grad, torch.full_like(z, 3.0))


def test_losses_and_which_side_they_train():
    q = VectorQuantizer(8, 32, beta=0.25, codebook_weight=1.0)
    z = latent().requires_grad_()
    out = q(z)
    codes = q.codebook[out.indices].permute(0, 3, 1, 2)
    mse = (z - codes).square().mean()
    torch.testing.assert_close(out.losses["commitment"], 0.25 * mse)
    torch.testing.assert_close(out.losses["codebook"], mse)
    out.losses["codebook"].backward()
    assert z.grad is None and q.codebook.grad.abs().sum() > 0
    q.codebook.grad = None
    out = q(z)
    out.losses["commitment"].backward()
    assert q.codebook.grad is None and z.grad.abs().sum() > 0


def test_ema_update_matches_the_formula():
    q = VectorQuantizer(4, 6, ema=True, decay=0.9).train()
    before_sum, before_size = q.embed_sum.clone(), q.cluster_size.clone()
    z = torch.randn(2, 4, 3, 3)
    out = q(z)
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 4)
    counts = torch.bincount(out.indices.flatten(), minlength=6).float()
    sums = torch.zeros(6, 4).index_add_(0, out.indices.flatten(), vectors)
    expected_size = 0.9 * before_size + 0.1 * counts
    expected_sum = 0.9 * before_sum + 0.1 * sums
    torch.testing.assert_close(q.cluster_size, expected_size)
    torch.testing.assert_close(q.embed_sum, expected_sum)
    torch.testing.assert_close(q.codebook, expected_sum / expected_size[:, None])
    assert "codebook" not in out.losses and not q.codebook.requires_grad


def test_eval_mode_changes_nothing():
    q = VectorQuantizer(4, 16, ema=True, kmeans_init=True, dead_code_threshold=1.0).eval()
    state = {k: v.clone() for k, v in q.state_dict().items()}
    q(torch.randn(2, 4, 3, 3))
    assert all(torch.equal(state[k], v) for k, v in q.state_dict().items())


def test_kmeans_init_on_first_training_batch():
    q = VectorQuantizer(4, 8, kmeans_init=True, kmeans_iters=5).train()
    assert not bool(q.initialized)
    z = torch.randn(2, 4, 6, 6)
    q(z)
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 4)
    expected = kmeans(vectors, 8, 5, generator=torch.Generator().manual_seed(0))
    assert bool(q.initialized)
    torch.testing.assert_close(q.codebook.data, expected)


def test_kmeans_init_starts_each_code_at_its_cluster_size_so_restarts_keep_filled_clusters():
    torch.manual_seed(0)
    z = torch.randn(2, 4, 6, 6)
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 4)
    centroids = kmeans(vectors, 8, 20, generator=torch.Generator().manual_seed(0))
    sizes = torch.bincount(torch.cdist(vectors, centroids).argmin(1), minlength=8).float()
    filled = sizes >= 2
    assert filled.sum() >= 6  # the test needs clusters on both sides of the threshold or at least most filled
    q = VectorQuantizer(4, 8, kmeans_init=True, kmeans_iters=20, ema=True, dead_code_threshold=2.0).train()
    q(z)
    torch.testing.assert_close(q.codebook.data[filled], centroids[filled], atol=1e-4, rtol=0)  # not restarted
    torch.testing.assert_close(q.cluster_size[filled], sizes[filled], atol=1e-4, rtol=0)


def test_kmeans_reduces_quantization_error():
    centers = torch.randn(16, 4) * 5
    data = centers[torch.randint(16, (2000,))] + 0.1 * torch.randn(2000, 4)
    centroids = kmeans(data, 16, iters=20, generator=torch.Generator().manual_seed(1))
    start = data[torch.randperm(2000, generator=torch.Generator().manual_seed(1))[:16]]
    error = lambda codes: torch.cdist(data, codes).min(1).values.square().mean()  # noqa: E731
    assert error(centroids) < 0.5 * error(start)


def test_dead_codes_are_restarted_from_the_batch():
    q = VectorQuantizer(4, 16, ema=True, dead_code_threshold=0.5, decay=0.5).train()
    q.codebook.data += 100.0  # every code far from the data: all but one go unused
    q.embed_sum.data = q.codebook.data.clone()
    z = torch.randn(2, 4, 8, 8)
    for _ in range(3):
        out = q(z)
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 4)
    distance_to_data = torch.cdist(q.codebook, vectors).min(1).values
    assert distance_to_data.max() < 3.0  # every code moved from ~200 away into the data
    assert out.stats.usage > 0.5


def test_codebook_usage_rises_with_restarts_and_not_without():
    """On 32 well-separated clusters, restarts reach near-full use; a far-away codebook without them collapses."""

    def train(threshold):
        torch.manual_seed(0)
        q = VectorQuantizer(2, 32, ema=True, decay=0.8, dead_code_threshold=threshold).train()
        q.codebook.data = q.codebook.data * 0.01 + 50.0
        q.embed_sum.data = q.codebook.data.clone()
        centers = torch.randn(32, 2, generator=torch.Generator().manual_seed(3)) * 10
        usages = []
        for _ in range(40):
            z = (centers[torch.randint(32, (512,))] + 0.05 * torch.randn(512, 2))[:, :, None]
            out = q(z)
            usages.append(float(out.stats.usage))
        return usages, float(out.losses["commitment"])

    with_restarts, loss_with = train(1.0)
    without, loss_without = train(0.0)
    assert with_restarts[-1] > 0.9 and with_restarts[-1] > with_restarts[0] + 0.5
    assert without[-1] < 0.2
    assert loss_with < 0.1 * loss_without


def test_statistics_of_a_known_assignment():
    q = VectorQuantizer(2, 4).eval()
    q.codebook.data = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    z = torch.tensor([[0.0, 0.0], [0.1, 0.0], [10.0, 0.1], [9.9, 0.0]])[:, :, None]  # codes 0, 0, 1, 1
    stats = q(z).stats
    assert float(stats.usage) == 0.5
    assert math.isclose(float(stats.perplexity), 2.0, rel_tol=1e-6)


def test_cosine_metric_uses_unit_codes():
    q = VectorQuantizer(8, 32, metric="cosine")
    out = q(latent())
    norms = out.quantized.norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))
    assert torch.equal(q.indices_to_codes(out.indices), out.quantized)


def test_math_stays_float32_under_bf16_autocast():
    q = VectorQuantizer(8, 64)
    conv = torch.nn.Conv2d(8, 8, 1)
    x = latent()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        z = conv(x)
        assert z.dtype == torch.bfloat16
        out = q(z)
    assert out.loss.dtype == torch.float32 and out.quantized.dtype == torch.bfloat16
    reference = q(z.float())
    assert torch.equal(out.indices, reference.indices)
    torch.testing.assert_close(out.loss, reference.loss, rtol=0, atol=0)


def test_mask_excludes_padding_from_losses_and_updates():
    torch.manual_seed(0)
    z = torch.randn(2, 4, 10)
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[0, :7], mask[1, :4] = True, True
    masked = VectorQuantizer(4, 8, ema=True).train()
    valid_only = VectorQuantizer(4, 8, ema=True).train()
    valid_only.load_state_dict(masked.state_dict())
    out = masked(z, mask)
    vectors = z.permute(0, 2, 1)[mask]  # [11, 4]
    reference = valid_only(vectors)
    torch.testing.assert_close(out.loss, reference.loss)
    torch.testing.assert_close(masked.codebook, valid_only.codebook)
    with pytest.raises(ValueError, match="mask"):
        masked(z, mask[:, :5])


def test_grouped_quantizer_layout_and_independence():
    q = build_quantizer({"type": "vq", "codebook_size": 16, "groups": 3}, 12)
    assert isinstance(q, GroupedQuantizer) and q.num_groups == 3 and q.dim == 12
    z = latent(dim=12)
    out = q(z)
    assert out.indices.shape == (4, 3, 5, 5)
    assert out.stats.usage.shape == (3,)
    for g in range(3):
        assert torch.equal(out.indices[:, g], q.quantizers[g](z[:, 4 * g : 4 * g + 4]).indices)
    assert torch.equal(q.indices_to_codes(out.indices), out.quantized)
    assert set(out.losses) == {"commitment", "codebook"}  # each summed over the groups
    per_group = [q.quantizers[g](z[:, 4 * g : 4 * g + 4]) for g in range(3)]
    torch.testing.assert_close(out.loss, sum(o.loss for o in per_group))
    torch.testing.assert_close(out.losses["commitment"], sum(o.losses["commitment"] for o in per_group))


@pytest.mark.parametrize(
    "indices, match",
    [
        (torch.zeros(2, 5, 5), "integer"),
        (torch.full((2, 5, 5), 16), r"\[0, 16\)"),
        (torch.zeros(2, 5, dtype=torch.int64), "3 dims"),
    ],
)
def test_check_indices_rejects_bad_indices(indices, match):
    with pytest.raises((TypeError, ValueError), match=match):
        VectorQuantizer(8, 16).check_indices(indices, latent_ndim=4)


def test_factory_and_constructor_errors():
    with pytest.raises(ValueError, match="unknown quantizer type"):
        build_quantizer({"type": "no_such_quantizer"}, 8)
    with pytest.raises(ValueError, match=r"no option\(s\) \['temperature'\]"):
        build_quantizer({"type": "vq", "codebook_size": 8, "temperature": 1.0}, 8)
    with pytest.raises(ValueError, match="equal groups"):
        build_quantizer({"type": "vq", "codebook_size": 8, "groups": 3}, 8)
    with pytest.raises(ValueError, match="metric"):
        VectorQuantizer(8, 8, metric="dot")
    with pytest.raises(ValueError, match="features on dim 1"):
        VectorQuantizer(8, 8)(torch.randn(2, 7, 3))


def test_vq_matches_a_float64_argmin():
    q = VectorQuantizer(16, 300)
    q.codebook.data = torch.randn(300, 16)
    z = torch.randn(3, 16, 7, 7)
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 16).double()
    expected = (vectors[:, None] - q.codebook.double()[None]).square().sum(-1).argmin(1)
    assert torch.equal(q(z).indices.flatten(), expected)
    unit = F.normalize(q.codebook.double(), dim=1)
    q_cos = VectorQuantizer(16, 300, metric="cosine")
    q_cos.codebook.data = q.codebook.data.clone()
    assert torch.equal(q_cos(z).indices.flatten(), (F.normalize(vectors, dim=1) @ unit.T).argmax(1))
