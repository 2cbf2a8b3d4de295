"""What the families build on: declared keywords, extras and named model losses, the quantizer registry, the
stored table vs the effective codebook, frozen tables, groups with shared or independent codebooks."""

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F

import tokenizers_zoo
from tokenizers_zoo import Keywords
from tokenizers_zoo.config import ConfigError
from tokenizers_zoo.models import VQVAE, VQVAEConfig
from tokenizers_zoo.quantizers import QUANTIZERS, GroupedQuantizer, ProjectedQuantizer, VectorQuantizer, build_quantizer, register_quantizer

from stand_ins import FrameAudioConfig, FrameAudioTokenizer, MeanGraphConfig, MeanGraphTokenizer

SMALL = dict(ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_resolutions=(), resolution=16, z_channels=32, embed_dim=8)


@dataclass
class ProbedConfig(VQVAEConfig):
    """A VQ-VAE with a decode-time ``noise`` keyword and a named loss of its own."""


class ProbedVQVAE(VQVAE):
    architecture = "test_probed_vqvae"
    config_class = ProbedConfig
    keywords = VQVAE.keywords | Keywords(decode=("noise",), train=("noise",))
    loss_names = ("latent_norm",)

    def decode_latents(self, quantized, noise=None, **context):
        images = super().decode_latents(quantized)
        return images if noise is None else images + noise

    def extra_losses(self, x, out, **context):
        out.extras["pooled"] = out.extras["latents"].mean(dim=(2, 3))
        return {"latent_norm": out.extras["latents"].square().mean()}


def probed(**overrides):
    return ProbedVQVAE(ProbedConfig(**SMALL, quantizer={"type": "vq", "codebook_size": 16}, **overrides))


def images(n=2, size=16):
    return torch.rand(n, 3, size, size) * 2 - 1


def test_keywords_are_declared_and_checked_everywhere():
    model = probed().eval()
    x = images()
    indices = model.encode(x).indices
    with pytest.raises(TypeError, match=r"ProbedVQVAE.encode\(\) got unexpected keyword argument\(s\) \['noise'\] \('noise' belongs to decode, train\)"):
        model.encode(x, noise=torch.zeros(1))
    with pytest.raises(TypeError, match=r"decode\(\) got unexpected keyword argument\(s\) \['nosie'\]; it takes: noise"):
        model.decode(indices, nosie=1.0)
    with pytest.raises(TypeError, match=r"VQVAE.decode\(\) .*\['noise'\]; it takes: no keyword arguments"):
        tokenizers_zoo.create_model("vqvae_tiny", **SMALL).decode(indices, noise=1.0)
    torch.testing.assert_close(model.decode(indices, noise=0.5), model.decode(indices) + 0.5)
    audio = FrameAudioTokenizer(FrameAudioConfig())
    with pytest.raises(TypeError, match=r"\['lenghts'\]; it takes: lengths, sample_rate, chunk_size"):
        audio.encode(torch.zeros(1, 80), lenghts=torch.tensor([80]))
    with pytest.raises(TypeError, match=r"forward\(\) got unexpected keyword argument\(s\) \['chunk_size'\] \('chunk_size' belongs to encode\)"):
        audio(torch.zeros(1, 80), chunk_size=8)
    graph = MeanGraphTokenizer(MeanGraphConfig())
    with pytest.raises(TypeError, match=r"\['labels'\]; it takes: edge_index"):
        graph(torch.rand(3, 6), edge_index=torch.tensor([[0], [1]]), labels=torch.zeros(3))


def test_models_add_named_losses_and_extras_through_one_hook():
    model = probed(loss_weights={"latent_norm": 0.5, "reconstruction": 2.0}).train()
    x = images()
    out = model(x, noise=0.0)
    assert set(out.losses) == {"reconstruction", "latent_norm", "commitment", "codebook"}
    latents = out.extras["latents"]
    torch.testing.assert_close(out.losses["latent_norm"], 0.5 * latents.square().mean())
    torch.testing.assert_close(out.losses["reconstruction"], 2.0 * F.l1_loss(out.reconstruction, x))
    torch.testing.assert_close(out.loss, sum(out.losses.values()))
    assert out.extras["pooled"].shape == (2, 8) and out.extras["quantized"].shape == latents.shape
    with pytest.raises(ConfigError, match=r"unknown loss\(es\) \['mel'\]"):
        probed(loss_weights={"mel": 1.0})

    class Undeclared(ProbedVQVAE):
        loss_names = ()

    with pytest.raises(RuntimeError, match=r"undeclared \['latent_norm'\]"):
        Undeclared(ProbedConfig(**SMALL, quantizer={"type": "vq", "codebook_size": 16}))(x)


def test_quantizers_register_by_decorator():
    @register_quantizer("test_scaled_vq")
    class ScaledVQ(VectorQuantizer):
        """Codes are twice the stored table."""

        def project(self, table):
            return 2 * table

    try:
        model = tokenizers_zoo.create_model("vqvae_tiny", **SMALL, quantizer={"type": "test_scaled_vq", "codebook_size": 16})
        assert isinstance(model.quantizer, ScaledVQ)
        torch.testing.assert_close(model.quantizer.get_codebook(), 2 * model.quantizer.codebook)
        with pytest.raises(ValueError, match="already registered"):
            register_quantizer("test_scaled_vq")(VectorQuantizer)
    finally:
        QUANTIZERS.unregister("test_scaled_vq")


def test_projected_quantizer_learns_the_projection_and_never_writes_its_table():
    q = build_quantizer({"type": "projected", "codebook_size": 32, "table_dim": 12}, 8)
    assert isinstance(q, ProjectedQuantizer) and q.table_frozen
    assert "codebook" in dict(q.named_buffers()) and "codebook" not in dict(q.named_parameters())
    table = q.codebook.clone()
    torch.testing.assert_close(q.get_codebook(), table @ q.projection.weight.T + q.projection.bias)
    optimizer = torch.optim.SGD(q.parameters(), lr=0.5)
    z = torch.randn(4, 8, 5, 5)
    out = q.train()(z)
    out.loss.backward()
    assert q.projection.weight.grad.abs().sum() > 0
    optimizer.step()
    assert torch.equal(q.codebook, table)
    torch.testing.assert_close(q.indices_to_codes(out.indices), F.embedding(out.indices, q.get_codebook()).movedim(-1, 1))
    for option in ({"ema": True}, {"kmeans_init": True}, {"dead_code_threshold": 1.0}):
        with pytest.raises(ValueError, match="frozen code table"):
            ProjectedQuantizer(8, 32, **option)


def test_a_frozen_table_is_never_overwritten_by_kmeans_or_restarts():
    q = VectorQuantizer(8, 16, kmeans_init=True).train()
    q.codebook.requires_grad_(False)
    table = q.codebook.clone()
    with pytest.raises(RuntimeError, match="frozen.*k-means init or dead-code restarts would overwrite it"):
        q(torch.randn(2, 8, 4, 4))
    assert torch.equal(q.codebook, table)
    out = q.eval()(torch.randn(2, 8, 4, 4))  # a frozen quantizer (eval mode) just looks codes up
    assert "codebook" not in out.losses


def test_groups_share_one_codebook_or_have_their_own():
    shared = build_quantizer({"type": "vq", "codebook_size": 16, "groups": 3, "shared_codebook": True}, 12)
    assert isinstance(shared, GroupedQuantizer) and len(shared.quantizers) == 1 and shared.get_codebook().shape == (16, 4)
    z = torch.randn(2, 12, 5, 5)
    z[:, :4] = shared.quantizers[0].codebook[0].view(1, 4, 1, 1)  # group 0 sits on code 0 everywhere
    out = shared.eval()(z)
    inner = shared.quantizers[0]
    for g in range(3):
        assert torch.equal(out.indices[:, g], inner(z[:, 4 * g : 4 * g + 4]).indices)
    assert torch.equal(shared.indices_to_codes(out.indices), out.quantized)
    assert float(out.stats.usage[0]) == 1 / 16 and float(out.stats.usage[1]) > 1 / 16  # per group, not pooled
    per_group = [inner(z[:, 4 * g : 4 * g + 4]).losses["commitment"] for g in range(3)]
    torch.testing.assert_close(out.losses["commitment"], sum(per_group))  # "sum" over groups, like the independent case
    mean = build_quantizer({"type": "vq", "codebook_size": 16, "groups": 3, "shared_codebook": True, "group_loss": "mean"}, 12)
    mean.load_state_dict(shared.state_dict())
    torch.testing.assert_close(mean.eval()(z).losses["commitment"], sum(per_group) / 3)
    independent = build_quantizer({"type": "vq", "codebook_size": 16, "groups": 3}, 12)
    assert len(independent.quantizers) == 3 and independent.get_codebook().shape == (3, 16, 4)
    out = independent.eval()(z)
    expected = [(torch.bincount(out.indices[:, g].flatten(), minlength=16) > 0).float().mean() for g in range(3)]
    torch.testing.assert_close(out.stats.usage, torch.stack(expected))


def test_codebook_fingerprint_follows_the_codes_not_the_statistics():
    q = VectorQuantizer(8, 16, ema=True)
    same = VectorQuantizer(8, 16, ema=True)
    same.load_state_dict(q.state_dict())
    assert q.codebook_fingerprint() == same.codebook_fingerprint() and q.codebook_fingerprint().startswith("sha256:")
    same.cluster_size.mul_(3)  # statistics only
    assert q.codebook_fingerprint() == same.codebook_fingerprint()
    same.codebook[0, 0] += 1e-6
    assert q.codebook_fingerprint() != same.codebook_fingerprint()
    projected = ProjectedQuantizer(8, 16)
    before = projected.codebook_fingerprint()
    with torch.no_grad():
        projected.projection.bias.add_(1.0)
    assert projected.codebook_fingerprint() != before


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"ch": 0}, "ch must be positive"),
        ({"num_res_blocks": 0}, "num_res_blocks must be positive"),
        ({"ch": "wide"}, "ch must be an integer, got str 'wide'"),
        ({"ch": True}, "ch must be an integer"),
        ({"ch_mult": ()}, "at least one level"),
        ({"dropout": float("nan")}, "dropout must be a finite number"),
        ({"norm_groups": 5}, "multiple of norm_groups=5"),
        ({"quantizer": {"type": "vq", "codebook_size": 16, "groups": 0}}, "'groups' must be a positive integer"),
        ({"quantizer": {"type": "vq", "codebook_size": 16, "beta": float("nan")}}, "'beta' must be a finite number"),
        ({"quantizer": {"type": "vq", "codebook_size": "many"}}, "'codebook_size' must be an integer"),
        ({"quantizer": {"type": "vq"}}, r"needs the option\(s\) \['codebook_size'\]"),
        ({"quantizer": {"codebook_size": 16}}, "quantizer must be a quantizer spec with a 'type'"),
    ],
)
def test_bad_configs_give_clear_errors(overrides, message):
    with pytest.raises(ConfigError, match=message):
        tokenizers_zoo.create_model("vqvae_tiny", **overrides)


def test_inputs_of_another_dtype_are_refused_not_cast():
    model = tokenizers_zoo.create_model("vqvae_tiny", **SMALL).eval()
    for dtype in (torch.float64, torch.float16, torch.bfloat16):
        with pytest.raises(TypeError, match=f"the input is {dtype} but the model's weights are torch.float32"):
            model.encode(images().to(dtype))
    with pytest.raises(ValueError, match=r"the token grid is empty \(shape \(1, 0, 0\)\)"):
        model.decode(torch.zeros(1, 0, 0, dtype=torch.int64))
    bf16 = tokenizers_zoo.create_model("vqvae_tiny", **SMALL).to(torch.bfloat16).eval()
    assert bf16.encode(images().bfloat16()).indices.shape == (2, 8, 8)
