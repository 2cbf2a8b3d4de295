"""Compression after training: k-means codebook shrinking, Gaussian post-training quantization, bits per pixel."""

import json
import math

import pytest
import torch

import tokenizers_zoo
from tokenizers_zoo.cli import main
from tokenizers_zoo.compression import (
    INDEX_MAP_NAME, GaussianPTQ, codebook_tables, continuous_latents, entropy_bits, entropy_bpp, gaussian_levels, plain_bpp,
    ptq_reconstruct, read_index_map, remap_indices, save_shrunk, shrink_codebook, usage_counts,
)
from tokenizers_zoo.metrics import CodebookUsage, bits_per_pixel, psnr
from tokenizers_zoo.models.vqgan import TAMING_VQ
from tokenizers_zoo.ops import nearest_codeword
from tokenizers_zoo.quantizers import PerGroupQuantizer, kmeans

from conftest import CIFAR


@pytest.fixture
def images(cifar_images):
    return cifar_images[:32]


def grouped_vqgan(groups=2, codebook_size=64, **options):
    """``vqgan_tiny`` (random init, latents of 8) with ``groups`` codebooks of 8 / groups dims."""
    return tokenizers_zoo.create_model("vqgan_tiny", quantizer={**TAMING_VQ, "codebook_size": codebook_size, "groups": groups, **options})


def weights_outside(model, prefix="quantizer."):
    return {key: value for key, value in model.state_dict().items() if not key.startswith(prefix)}


# ---------------------------------------------------------------- shrinking


def test_weighted_kmeans():
    vectors = torch.randn(40, 3)
    weights = torch.rand(40)
    weights[:10] = 0
    mean = (weights[:, None] * vectors).sum(0) / weights.sum()
    assert torch.allclose(kmeans(vectors, 1, 3, weights=weights)[0], mean, atol=1e-6)  # one cluster: the weighted mean
    starts = kmeans(vectors, 30, 0, generator=torch.Generator().manual_seed(0), weights=weights)
    assert not any(bool((starts == v).all(1).any()) for v in vectors[:10])  # weight-0 vectors start no cluster
    for bad in (torch.zeros(40), -weights, torch.ones(3)):
        with pytest.raises(ValueError, match="weights"):
            kmeans(vectors, 4, weights=bad)


@pytest.mark.parametrize("name", ["vqvae_tiny", "simvq_tiny"])
def test_shrunk_codebook_is_the_kmeans_of_the_effective_codes(name, images):
    model = tokenizers_zoo.from_pretrained(name)
    before = model.quantizer.get_codebook().detach().clone()
    shrunk, index_map = shrink_codebook(model, 32, data=images)
    new_codes = shrunk.quantizer.get_codebook().detach()
    assert shrunk.config.quantizer["type"] == "vq" and shrunk.quantizer.codebook_size == 32 and new_codes.shape == (32, before.shape[1])
    assert index_map.shape == (model.quantizer.codebook_size,) and index_map.dtype == torch.int64
    assert torch.equal(index_map, nearest_codeword(before, new_codes).indices)  # every old code -> its nearest centroid
    assert set(index_map.tolist()) <= set(range(32))
    counts = usage_counts(model, images)[0]
    expected = kmeans(before, 32, 20, "l2", torch.Generator().manual_seed(0), counts)
    assert torch.equal(new_codes, expected)
    for key, value in weights_outside(model).items():  # encoder and decoder untouched, the original model too
        assert torch.equal(shrunk.state_dict()[key], value)
    assert torch.equal(model.quantizer.get_codebook(), before) and shrunk.model_name is None
    with torch.no_grad():
        out = shrunk.encode(images)
        assert int(out.indices.max()) < 32
        assert torch.equal(out.quantized, new_codes[out.indices].movedim(-1, 1))
        remapped = shrunk.decode(remap_indices(model.encode(images).indices, index_map))
        assert float(psnr(shrunk.decode(out.indices), images).mean()) > 18 and float(psnr(remapped, images).mean()) > 18


def test_usage_weighting_differs_from_uniform_and_fits_the_data_better(images):
    model = tokenizers_zoo.from_pretrained("vqvae_tiny")
    codes = model.quantizer.get_codebook().detach()
    counts = usage_counts(model, images)[0]
    assert counts.sum() == images.shape[0] * 8 * 8 and counts.shape == (512,)
    distortion = {}
    for weighting in ("usage", "uniform"):
        shrunk, index_map = shrink_codebook(model, 16, weighting=weighting, data=images)
        centroids = shrunk.quantizer.get_codebook().detach()
        distortion[weighting] = float((counts * (codes - centroids[index_map]).square().sum(1)).sum())
        assert torch.equal(index_map, nearest_codeword(codes, centroids).indices)
    assert distortion["usage"] < distortion["uniform"]
    assert not torch.equal(*(shrink_codebook(model, 16, weighting=w, data=images)[0].quantizer.codebook for w in ("usage", "uniform")))


def test_projected_and_cosine_codebooks():
    lc = tokenizers_zoo.create_model("vqgan_lc_tiny")
    shrunk, index_map = shrink_codebook(lc, 64)
    assert torch.equal(index_map, nearest_codeword(lc.quantizer.get_codebook().detach(), shrunk.quantizer.get_codebook()).indices)
    assert "projection.weight" not in dict(shrunk.quantizer.named_parameters()) and shrunk.quantizer.codebook.shape == (64, 8)

    cosine = tokenizers_zoo.create_model("vqgan_tiny", quantizer={**TAMING_VQ, "codebook_size": 128, "metric": "cosine"})
    shrunk, index_map = shrink_codebook(cosine, 16)
    centroids = shrunk.quantizer.codebook.detach()
    assert shrunk.quantizer.metric == "cosine" and torch.allclose(centroids.norm(dim=1), torch.ones(16))  # spherical k-means
    assert torch.equal(index_map, nearest_codeword(cosine.quantizer.get_codebook().detach(), centroids, metric="cosine").indices)


def test_save_and_load_give_the_same_indices_and_images(tmp_path, images):
    shrunk, index_map = shrink_codebook(tokenizers_zoo.from_pretrained("simvq_tiny"), 64, data=images)
    save_shrunk(shrunk, index_map, tmp_path / "shrunk", source="simvq_tiny")
    record = json.loads((tmp_path / "shrunk" / INDEX_MAP_NAME).read_text())
    assert record["source"] == "simvq_tiny" and record["codebook_sizes"] == [64]
    assert torch.equal(read_index_map(tmp_path / "shrunk"), index_map)
    loaded = tokenizers_zoo.from_pretrained(tmp_path / "shrunk")
    assert loaded.config == shrunk.config
    with torch.no_grad():
        expected = shrunk.encode(images).indices
        assert torch.equal(loaded.encode(images).indices, expected)
        assert torch.equal(loaded.decode(expected), shrunk.decode(expected))
    (tmp_path / "shrunk" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        save_shrunk(shrunk, index_map, tmp_path / "shrunk")


def test_grouped_codebooks_shrink_per_group(tmp_path, images):
    model = grouped_vqgan()
    codes = model.quantizer.get_codebook().detach()  # [2, 64, 4]
    shrunk, index_map = shrink_codebook(model, [16, 64])  # shrink group 0, keep group 1
    assert isinstance(shrunk.quantizer, PerGroupQuantizer) and shrunk.quantizer.codebook_sizes == (16, 64)
    assert index_map.shape == (2, 64) and torch.equal(index_map[1], torch.arange(64))
    new_tables = [t.get_codebook().detach() for t in codebook_tables(shrunk.quantizer)]
    assert torch.equal(new_tables[1], codes[1]) and torch.equal(index_map[0], nearest_codeword(codes[0], new_tables[0]).indices)
    with torch.no_grad():
        old, new = model.encode(images).indices, shrunk.encode(images).indices
        assert new.shape == old.shape and int(new[:, 0].max()) < 16
        assert torch.equal(new[:, 1], old[:, 1])  # the kept group gives the same tokens
        assert torch.equal(remap_indices(old, index_map)[:, 1], old[:, 1])
        assert torch.equal(remap_indices(old, index_map)[:, 0], index_map[0][old[:, 0]])
        out = shrunk(images)
        assert out.stats.usage.shape == (2,) and float(out.stats.usage[0]) <= 1.0
    bad = new.clone()
    bad[0, 0, 0, 0] = 20
    with pytest.raises(ValueError, match=r"group 0 must be in \[0, 16\)"):
        shrunk.decode(bad)
    shrunk.save_pretrained(tmp_path / "per_group")
    loaded = tokenizers_zoo.from_pretrained(tmp_path / "per_group")
    with torch.no_grad():
        assert torch.equal(loaded.encode(images).indices, new)

    same, _ = shrink_codebook(model, 16)
    assert same.config.quantizer["groups"] == 2 and same.config.quantizer["type"] == "vq" and same.quantizer.codebook_size == 16
    shared, shared_map = shrink_codebook(grouped_vqgan(shared_codebook=True), 8)
    assert shared.quantizer.shared and shared_map.shape == (64,)


def test_fqgan_factors_get_their_own_bitrate(tmp_path, images):
    """Shrink FQGAN's semantic factor and keep the visual one: spherical k-means, the loss options carried over."""
    model = tokenizers_zoo.create_model("fqgan_tiny")
    codes = model.quantizer.get_codebook().detach()  # [2, 256, 8], unit rows
    shrunk, index_map = shrink_codebook(model, [256, 16], data=images)
    spec = shrunk.config.quantizer
    assert spec["type"] == "per_group" and [q["codebook_size"] for q in spec["quantizers"]] == [256, 16]
    assert all(q["metric"] == "cosine" and q["entropy_weight"] == 0.03 for q in spec["quantizers"])
    semantic = shrunk.quantizer.quantizers[1].get_codebook().detach()
    assert torch.allclose(semantic.norm(dim=1), torch.ones(16))
    assert torch.equal(index_map[1], nearest_codeword(codes[1], semantic, metric="cosine").indices)
    assert torch.equal(index_map[0], torch.arange(256))
    with torch.no_grad():
        old, new = model.encode(images).indices, shrunk.encode(images).indices
        assert torch.equal(new[:, 0], old[:, 0]) and int(new[:, 1].max()) < 16
        assert plain_bpp(new, (32, 32), shrunk.quantizer.codebook_sizes) == 64 * (8 + 4) / 1024
    shrunk.save_pretrained(tmp_path / "fqgan")
    with torch.no_grad():
        assert torch.equal(tokenizers_zoo.from_pretrained(tmp_path / "fqgan").encode(images).indices, new)


def test_refusals(images):
    model = tokenizers_zoo.create_model("vqgan_tiny")
    for size, message in [(1024, "already have"), (2048, "cannot grow"), (0, "positive integer"), ([8, 8], "2 codebook sizes")]:
        with pytest.raises(ValueError, match=message):
            shrink_codebook(model, size)
    with pytest.raises(ValueError, match="pass data"):
        shrink_codebook(model, 8, weighting="usage")
    with pytest.raises(ValueError, match="weighting must be one of"):
        shrink_codebook(model, 8, weighting="often")
    lookup_free = tokenizers_zoo.create_model("vqgan_tiny", quantizer={"type": "lfq", "codebook_size": 256})
    with pytest.raises(ValueError, match="no stored codebook"):
        shrink_codebook(lookup_free, 16, data=images)


def test_shrink_command_writes_a_loadable_folder_and_refuses_bad_sizes(tmp_path, capsys):
    output = tmp_path / "small"
    assert main(["shrink", "vqvae_tiny", "-o", str(output), "--codebook-size", "64", "--data", str(CIFAR), "--limit", "20"]) == 0
    assert sorted(p.name for p in output.iterdir()) == ["README.md", "config.json", INDEX_MAP_NAME, "model.safetensors"]
    record = json.loads((output / INDEX_MAP_NAME).read_text())
    assert record["weighting"] == "usage" and len(record["index_map"]) == 512 and max(record["index_map"]) < 64
    loaded = tokenizers_zoo.from_pretrained(output)
    assert loaded.quantizer.codebook_size == 64
    with torch.no_grad():
        assert loaded.decode(loaded.encode(torch.zeros(1, 3, 32, 32)).indices).shape == (1, 3, 32, 32)
    capsys.readouterr()
    for target, args, message in [
        ("new", ["--codebook-size", "600"], "cannot grow"),
        ("new", ["--codebook-size", "0"], "positive integer"),
        ("new", ["--codebook-size", "32", "--weighting", "usage"], "pass data"),
        ("small", ["--codebook-size", "32"], "exists; pass --force"),
    ]:
        assert main(["shrink", "vqvae_tiny", "-o", str(tmp_path / target), *args]) == 1
        assert message in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    assert main(["shrink", "vqvae_tiny", "-o", str(output), "--codebook-size", "32", "--force"]) == 0
    assert tokenizers_zoo.from_pretrained(output).quantizer.codebook_size == 32


# ---------------------------------------------------------------- post-training quantization


@pytest.mark.parametrize("bits", [1, 2, 3, 6, 9])
def test_gaussian_levels_are_quantile_bins_and_their_truncated_means(bits):
    edges, values = gaussian_levels(bits)
    assert edges.shape == (2**bits + 1,) and values.shape == (2**bits,)
    assert edges[0] == -3 and edges[-1] == 3 and bool((edges.diff() > 0).all()) and bool((values.diff() > 0).all())
    assert bool(((values > edges[:-1]) & (values < edges[1:])).all())  # each value lies inside its bin
    assert torch.allclose(values, -values.flip(0), atol=1e-12)
    inner = torch.special.ndtr(edges[1:-1])
    assert torch.allclose(inner, torch.arange(1, 2**bits, dtype=torch.float64) / 2**bits)  # quantiles i / 2^b
    if bits == 1:  # E[X | 0 < X < 3] for a standard normal
        pdf = lambda t: math.exp(-t * t / 2) / math.sqrt(2 * math.pi)  # noqa: E731
        assert values[1].item() == pytest.approx((pdf(0) - pdf(3)) / (torch.special.ndtr(torch.tensor(3.0)).item() - 0.5), rel=1e-6)
    for wrong in (0, 10, 2.0):
        with pytest.raises(ValueError, match="from 1 to 9"):
            gaussian_levels(wrong)


def test_ptq_indices_are_the_nearest_reconstruction_value_and_invert_exactly():
    latents = torch.randn(4, 3, 5, 5) * torch.tensor([1.0, 4.0, 0.5]).view(1, 3, 1, 1) + torch.tensor([0.0, 2.0, -1.0]).view(1, 3, 1, 1)
    ptq = GaussianPTQ.calibrate(latents, 3)
    indices = ptq.quantize(latents)
    assert indices.shape == latents.shape and indices.dtype == torch.int64 and int(indices.max()) < 8
    mean, std = (torch.tensor(values, dtype=torch.float64).view(1, 3, 1, 1) for values in (ptq.mean, ptq.std))
    normalised = ((latents.double() - mean) / std).clamp(-3, 3)
    values = gaussian_levels(3)[1]
    assert torch.equal(indices, (normalised[..., None] - values).abs().argmin(-1))
    every_level = torch.arange(8).view(1, 1, 8).expand(2, 3, 8)
    assert torch.equal(ptq.quantize(ptq.dequantize(every_level)), every_level)
    assert torch.allclose(ptq.dequantize(every_level, torch.float64)[0, 1], ptq.mean[1] + ptq.std[1] * values, atol=1e-12)


def test_ptq_error_falls_as_bits_rise_and_calibration_round_trips(tmp_path):
    latents = torch.randn(64, 4, 8, 8) * 3 + 1
    errors = []
    for bits in range(1, 10):
        ptq = GaussianPTQ.calibrate([latents[:32], latents[32:]], bits)
        errors.append(float((ptq.dequantize(ptq.quantize(latents)) - latents).square().mean()))
    assert all(later < earlier for earlier, later in zip(errors, errors[1:]))
    assert errors[0] / 9 == pytest.approx(1 - 2 / math.pi, abs=0.03)  # 1 bit: the sign, error 1 - 2/pi of the variance
    assert ptq.bits == 9 and torch.allclose(torch.tensor(ptq.mean), torch.ones(4), atol=0.1)
    assert torch.allclose(torch.tensor(ptq.std), torch.full((4,), 3.0), atol=0.1)
    ptq.save(tmp_path / "ptq.json")
    loaded = GaussianPTQ.load(tmp_path / "ptq.json")
    assert loaded == ptq and torch.equal(loaded.quantize(latents), ptq.quantize(latents))
    (tmp_path / "bad.json").write_text(json.dumps({**ptq.to_dict(), "bits": 12}))
    with pytest.raises(ValueError, match="from 1 to 9"):
        GaussianPTQ.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="expected 4 channels"):
        ptq.quantize(torch.zeros(1, 3, 2, 2))


def test_fixed_range_is_tokenbridges_linear_map():
    """TokenBridge maps [low, high] onto [-3, 3] by (x - low) / (high - low) * 6 - 3 and back by the inverse."""
    x = torch.randn(2, 16, 4, 4) * 2
    ptq = GaussianPTQ.from_range(6, -5.0, 5.0, 16)
    values = gaussian_levels(6)[1]
    mapped = ((x.double() + 5) / 10 * 6 - 3).clamp(-3, 3)
    assert torch.equal(ptq.quantize(x), (mapped[..., None] - values).abs().argmin(-1))
    expected = (values[ptq.quantize(x)] + 3) / 6 * 10 - 5
    assert torch.allclose(ptq.dequantize(ptq.quantize(x), torch.float64), expected, atol=1e-12)


def test_ptq_on_a_tokenizer_latent(images):
    model = tokenizers_zoo.from_pretrained("vqvae_tiny")
    with torch.no_grad():
        latents = continuous_latents(model, images)
        assert torch.equal(latents, model.encode(images).latents)
    quality = {}
    for bits in (1, 8):
        indices, reconstruction = ptq_reconstruct(model, GaussianPTQ.calibrate(latents, bits), images)
        assert indices.shape == (32, 16, 8, 8) and reconstruction.shape == images.shape
        assert plain_bpp(indices, (32, 32), 2**bits) == 16 * 8 * 8 * bits / 1024
        quality[bits] = float(psnr(reconstruction.clamp(-1, 1), images).mean())
    assert quality[8] > quality[1] + 3


# ---------------------------------------------------------------- bits per pixel


def test_plain_and_entropy_coded_bits_per_pixel():
    indices = torch.arange(4 * 64).view(4, 8, 8) % 1024
    assert plain_bpp(indices, (32, 32), 1024) == bits_per_pixel(indices, (32, 32), 1024) == 64 * 10 / 1024
    grouped = torch.stack([indices % 16, indices % 64], dim=1)
    assert plain_bpp(grouped, (32, 32), [16, 64]) == 64 * (4 + 6) / 1024
    with pytest.raises(ValueError, match="2 codebook sizes"):
        plain_bpp(indices, (32, 32), [16, 64])

    usage = CodebookUsage(16, 2)
    usage.update(torch.stack([indices % 16, torch.zeros_like(indices)], dim=1))  # group 0 uniform over 16, group 1 constant
    assert torch.allclose(entropy_bits(usage), torch.tensor([4.0, 0.0], dtype=torch.float64))
    assert entropy_bpp(usage, 4 * 32 * 32) == pytest.approx(64 * 4 / 1024)
    skewed = CodebookUsage(4)
    skewed.update(torch.tensor([[[0, 0], [1, 2]]]))  # p = 1/2, 1/4, 1/4: 1.5 bits per token
    assert entropy_bpp(skewed, 8) == pytest.approx(4 * 1.5 / 8)
