"""FQGAN: the registered entries, the LlamaGen / adapter official layout, factor indices and decoding, the
entropy and disentanglement losses against the official formulas, learning, representation alignment with a
frozen timm teacher (also through the trainer), and conversion of synthetic checkpoints in the official layout."""

import argparse
import logging
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

import tokenizers_zoo
from tokenizers_zoo.converters import CONVERTERS
from tokenizers_zoo.data import ImageFolder
from tokenizers_zoo.models.fqgan import disentanglement_loss
from tokenizers_zoo.objectives import AlignmentObjective, GANObjective, Teacher, build_objective
from tokenizers_zoo.objectives.alignment import info_nce, load_teacher, teacher_features
from tokenizers_zoo.quantizers import VectorQuantizer
from tokenizers_zoo.training import OptimizerConfig, TrainConfig, Trainer

from conftest import CIFAR
from image_helpers import images, parameter_count

RELEASED = {  # name: (factors, downsampling, tokens per image, rFID, PSNR)
    "fqgan_dual_ds16": (("vis", "sem"), 16, 256, 0.94, 22.02),
    "fqgan_triple_ds16": (("vis", "sem_mid", "sem_high"), 16, 256, 0.76, 22.73),
    "fqgan_dual_ds8": (("vis", "sem"), 8, 1024, 0.32, 26.27),
    "fqgan_triple_ds8": (("vis", "sem_mid", "sem_high"), 8, 1024, 0.24, 27.58),
}
OFFICIAL_DUAL_DS16_KEYS = 552  # len(VQ_16(with_clip_supervision=True).state_dict()) of tokenizer/vq_model_dual.py
TINY_TEACHER = {  # a random timm ViT: 4x4 patches of 8 px at 32 px, width 32
    "model": "vit_tiny_patch16_224", "image_size": 32, "head_layers": 1, "head_heads": 2,
    "options": {"img_size": 32, "patch_size": 8, "depth": 1, "embed_dim": 32, "num_heads": 2},
}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_released_entries_build_at_full_size(name):
    factors, factor, tokens, rfid, psnr = RELEASED[name]
    with torch.device("meta"):
        model = tokenizers_zoo.create_model(name)
    info = tokenizers_zoo.model_info(name)
    assert model.config.factors == factors and model.quantizer.num_groups == info.num_groups == len(factors)
    assert info.codebook_size == 16_384 and all(tuple(q.codebook.shape) == (16_384, 8) for q in model.quantizer.quantizers)
    assert info.tokens_per_item == tokens and info.input_spec.image_size == 256 and info.input_spec.size_multiple == factor
    assert info.license == "cc-by-nc-4.0" and "CC BY-NC 4.0" in info.description and "2411.16681" in info.paper_url
    assert f"ZechenBai/FQGAN/resolve/main/{name}.pt" in info.official_weights and info.weights is None
    assert info.metrics == {"rfid_imagenet256_val50k": rfid, "psnr_db_imagenet256_val50k": psnr}
    width, grid = 512, 256 // factor
    for head in ("visual_head", "semantic_head", "semantic_head_mid", "semantic_head_high"):
        if hasattr(model.encoder, head):  # 6 blocks of 12 w^2 + 13 w, the positional embedding and two LayerNorms
            assert parameter_count(getattr(model.encoder, head)) == 6 * (12 * width**2 + 13 * width) + grid**2 * width + 4 * width
    assert model.config.loss_weights == {"disentanglement": 0.1} and model.config.reconstruction_loss == "mse"
    assert model.quantizer.quantizers[0].entropy_weight == 0.03 and model.quantizer.quantizers[0].metric == "cosine"
    if name == "fqgan_dual_ds16":  # research notes: trunk 28.1 M + 2 x adapter 19.0 M + 2 x head 1.2 M + decoder 42.4 M ~ 111 M
        trunk = sum(parameter_count(getattr(model.encoder, part)) for part in ("conv_in", "conv_blocks", "mid"))
        assert 28.0e6 < trunk < 28.2e6 and 42.4e6 < parameter_count(model.decoder) < 42.5e6
        assert 111.2e6 < parameter_count(model) < 111.4e6
        # the official state dict less 46 feat_pred_head and 2 codebook_used tensors, plus 2 x 2 zoo usage statistics
        assert len(model.state_dict()) == OFFICIAL_DUAL_DS16_KEYS - 48 + 4


def test_network_keys_follow_the_official_layout():
    state = tokenizers_zoo.create_model("fqgan_tiny").state_dict()  # ch 32, ch_mult (1, 2, 2), 1 res block, z 64
    expected_shapes = {
        "encoder.conv_in.weight": [32, 3, 3, 3],
        "encoder.conv_blocks.0.res.0.conv1.weight": [32, 32, 3, 3],
        "encoder.conv_blocks.0.downsample.conv.weight": [32, 32, 3, 3],
        "encoder.conv_blocks.1.res.0.nin_shortcut.weight": [64, 32, 1, 1],
        "encoder.conv_blocks.2.attn.0.q.weight": [64, 64, 1, 1],
        "encoder.mid.0.conv1.weight": [64, 64, 3, 3],
        "encoder.mid.1.proj_out.weight": [64, 64, 1, 1],
        "encoder.mid.2.norm2.weight": [64],
        "encoder.visual_head.0.positional_embedding": [64, 64],
        "encoder.visual_head.0.ln_pre.weight": [64],
        "encoder.semantic_head.0.transformer.0.ln_1.weight": [64],
        "encoder.semantic_head.0.transformer.0.attn.in_proj_weight": [192, 64],
        "encoder.semantic_head.0.transformer.0.attn.in_proj_bias": [192],
        "encoder.semantic_head.0.transformer.0.attn.out_proj.weight": [64, 64],
        "encoder.semantic_head.0.transformer.0.mlp.c_fc.weight": [256, 64],
        "encoder.semantic_head.0.transformer.0.mlp.c_proj.weight": [64, 256],
        "encoder.semantic_head.0.ln_post.bias": [64],
        "encoder.norm_out_vis.weight": [64],
        "encoder.conv_out_sem.weight": [64, 64, 3, 3],
        "quant_conv_vis.weight": [8, 64, 1, 1],
        "quant_conv_sem.bias": [8],
        "quantizer.quantizers.0.codebook": [256, 8],
        "quantizer.quantizers.1.codebook": [256, 8],
        "post_quant_conv.weight": [64, 16, 1, 1],
        "decoder.conv_in.weight": [64, 64, 3, 3],
        "decoder.mid.1.k.weight": [64, 64, 1, 1],
        "decoder.conv_blocks.0.res.1.conv1.weight": [64, 64, 3, 3],
        "decoder.conv_blocks.0.attn.1.v.weight": [64, 64, 1, 1],
        "decoder.conv_blocks.0.upsample.conv.weight": [64, 64, 3, 3],
        "decoder.conv_blocks.2.res.0.nin_shortcut.weight": [32, 64, 1, 1],
        "decoder.norm_out.weight": [32],
        "decoder.conv_out.weight": [3, 32, 3, 3],
    }
    assert {key: list(state[key].shape) for key in expected_shapes if key in state} == expected_shapes
    absent = [  # attention at the lowest resolution only, no resampling after the last level, no trunk conv_out
        "encoder.conv_blocks.1.attn.0.q.weight", "decoder.conv_blocks.1.attn.0.q.weight", "encoder.conv_blocks.2.downsample.conv.weight",
        "decoder.conv_blocks.2.upsample.conv.weight", "decoder.conv_blocks.0.res.0.nin_shortcut.weight", "encoder.conv_out.weight",
        "encoder.norm_out.weight", "decoder.conv_blocks.0.res.2.conv1.weight",
    ]
    assert not [key for key in absent if key in state]


def test_encode_layout_and_decoding_indices():
    torch.manual_seed(0)
    model = tokenizers_zoo.create_model("fqgan_tiny").eval()
    with torch.no_grad():
        out = model.encode(images())
        assert out.indices.shape == (2, 2, 8, 8) and out.indices.dtype == torch.int64 and model.index_layout == "[B, G, h, w]"
        assert out.latents.shape == (2, 16, 8, 8) and out.quantized.shape == (2, 16, 8, 8)
        vis_latent = model.quant_conv_vis(model.encoder(images())[:, :64])  # factor latents stacked in factor order
        torch.testing.assert_close(out.latents[:, :8], vis_latent)
        codes = [F.normalize(q.codebook, dim=1) for q in model.quantizer.quantizers]
        for factor in range(2):  # visual first, each factor's own cosine codebook
            expected = (F.normalize(out.latents[:, 8 * factor : 8 * factor + 8], dim=1).permute(0, 2, 3, 1) @ codes[factor].T).argmax(-1)
            assert torch.equal(out.indices[:, factor], expected)
        assert torch.equal(model.decode(out.indices), model(images()).reconstruction)
        assert torch.equal(model.decode(out.indices), model.decode_latents(out.quantized))
    with pytest.raises(ValueError, match="images must be 32x32, got 64x64"):
        model.encode(images(size=64))


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"adapter_heads": 3}, "cannot be split into 3 heads"),
        ({"factors": ("vis",)}, "at least two distinct factors"),
        ({"factors": ("vis", "texture")}, r"'vis' or 'sem'.*\['texture'\]"),
        ({"quantizer": {"type": "vq", "codebook_size": 8, "groups": 4}}, r"one group per factor \(2\), it has 4"),
    ],
)
def test_config_refusals(overrides, match):
    with pytest.raises(ValueError, match=match):
        tokenizers_zoo.create_model("fqgan_tiny", **overrides)


def official_entropy(z, codebook, temperature, unit):
    """LlamaGen / FQGAN ``compute_entropy_loss(-d)`` written out densely: d the squared distance (of unit vectors
    for l2_norm), p = softmax(-d / T), mean_i H(p_i) - H(mean p) with their + 1e-5 inside the logs."""
    if unit:
        z, codebook = F.normalize(z, dim=1), F.normalize(codebook, dim=1)
    d = z.square().sum(1, keepdim=True) + codebook.square().sum(1) - 2 * z @ codebook.T
    logits = -d / temperature
    probs, log_probs = logits.softmax(-1), (logits + 1e-5).log_softmax(-1)
    average = probs.mean(0)
    return -(probs * log_probs).sum(-1).mean() + (average * (average + 1e-5).log()).sum()


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_entropy_loss_matches_the_official_formula(metric):
    torch.manual_seed(0)
    q = VectorQuantizer(8, 64, metric=metric, entropy_weight=1.0, entropy_temperature=0.01 if metric == "cosine" else 0.5).train()
    q.codebook.data = torch.randn(64, 8) * 0.5
    z = torch.randn(3, 8, 5, 5, requires_grad=True)
    loss = q(z).losses["entropy"]
    reference = official_entropy(z.permute(0, 2, 3, 1).reshape(-1, 8), q.codebook, q.entropy_temperature, unit=metric == "cosine")
    torch.testing.assert_close(loss, reference, rtol=1e-5, atol=1e-5)
    ours, theirs = (torch.autograd.grad(value, [z, q.codebook]) for value in (loss, reference))
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)  # float32 logits of up to 2 / 0.01
    assert "entropy" not in q.eval()(z).losses and "entropy" not in VectorQuantizer(8, 64).train()(z).losses


def test_cosine_codebooks_start_as_unit_rows_of_the_official_init():
    torch.manual_seed(0)
    rows = VectorQuantizer(8, 16384, metric="cosine").codebook
    torch.testing.assert_close(rows.norm(dim=1), torch.ones(16384))
    plain = VectorQuantizer(8, 16384).codebook
    assert plain.abs().max() <= 1 / 16384  # the l2 metric keeps taming's init


def test_disentanglement_on_hand_built_factors():
    e1, e2 = torch.eye(8)[0], torch.eye(8)[1]
    grid = lambda *vectors: torch.stack(vectors).T.reshape(1, 8, 1, len(vectors))  # noqa: E731
    vis = grid(e1, e1, 3 * e1, e1)
    sem = grid(e1, e2, -e1, e1 + e2)  # cos^2: 1, 0, 1, 1/2
    assert disentanglement_loss([vis, sem]).item() == pytest.approx(2.5 / 4)
    diagonal = grid(*[(e1 + e2)] * 4)
    triple = disentanglement_loss([grid(*[e1] * 4), diagonal, grid(*[e2] * 4)])  # pairs: 1/2, 0, 1/2
    assert triple.item() == pytest.approx(1 / 3)
    model = tokenizers_zoo.create_model("fqgan_tiny").train()
    out = model(images())
    factors = out.extras["factors"]
    assert list(factors) == ["vis", "sem"] and torch.equal(torch.cat(list(factors.values()), 1), out.extras["quantized"])
    torch.testing.assert_close(out.losses["disentanglement"], 0.1 * disentanglement_loss(list(factors.values())))
    assert sorted(out.losses) == ["codebook", "commitment", "disentanglement", "entropy", "reconstruction"]


def test_a_few_steps_lower_the_reconstruction_loss():
    torch.manual_seed(0)
    model = tokenizers_zoo.create_model("fqgan_tiny").train()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3, betas=(0.9, 0.95))
    batch, losses = images(4), []
    for _ in range(6):
        out = model(batch)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.losses["reconstruction"].item())
    assert losses[-1] < 0.8 * losses[0], losses
    assert all(q.codebook.grad is not None for q in model.quantizer.quantizers)


def test_teacher_loads_a_local_file_and_follows_the_official_preprocessing(tmp_path):
    import timm

    torch.manual_seed(1)
    source = timm.create_model(TINY_TEACHER["model"], pretrained=False, **TINY_TEACHER["options"])
    save_file(source.state_dict(), tmp_path / "teacher.safetensors")
    teacher = load_teacher(Teacher(**TINY_TEACHER, weights=str(tmp_path / "teacher.safetensors")))
    assert all(torch.equal(a, b) for a, b in zip(teacher.state_dict().values(), source.state_dict().values()))
    assert not any(p.requires_grad for p in teacher.parameters()) and not teacher.training
    x = images(3, size=64)
    mean, std = torch.tensor(teacher.pretrained_cfg["mean"]).view(1, 3, 1, 1), torch.tensor(teacher.pretrained_cfg["std"]).view(1, 3, 1, 1)
    resized = ((x + 1) / 2)[:, :, ::2, ::2]  # nearest from 64 to 32 px keeps every other pixel
    with torch.no_grad():
        torch.testing.assert_close(teacher_features(teacher, x, 32, final_norm=True), teacher.forward_features((resized - mean) / std)[:, 0])
        tokens = teacher.norm_pre(teacher._pos_embed(teacher.patch_embed((resized - mean) / std)))
        torch.testing.assert_close(teacher_features(teacher, x, 32, final_norm=False), teacher.blocks(tokens)[:, 0])
    with pytest.raises(FileNotFoundError, match="no teacher weights file"):
        load_teacher(Teacher(**TINY_TEACHER, weights=str(tmp_path / "missing.pth")))


def test_info_nce_is_the_official_batch_contrast():
    predicted, target = torch.randn(5, 16), torch.randn(5, 16)
    p, t = predicted / predicted.norm(dim=-1, keepdim=True), target / target.norm(dim=-1, keepdim=True)
    matrix = (p @ t.T).exp()
    torch.testing.assert_close(info_nce(predicted, target), -(matrix.diag() / matrix.sum(1)).log().mean())


def test_alignment_trains_the_head_and_the_semantic_factor_only():
    torch.manual_seed(0)
    model = tokenizers_zoo.create_model("fqgan_tiny").train()
    objective = build_objective({"type": "alignment", "teachers": [{**TINY_TEACHER, "factor": "sem"}]})
    objective.prepare(model)
    assert isinstance(objective, AlignmentObjective) and objective.discriminator is None
    assert {name.split(".")[0] for name, _ in objective.generator_parameters()} == {"heads"}
    x = images(4)
    out = model(x)
    loss = objective.generator_loss(out, x, step=0, last_layer=model.last_layer)
    alignment = loss.losses["alignment_sem"]
    assert torch.isfinite(alignment) and loss.loss.item() == pytest.approx(out.loss.item() + alignment.item(), rel=1e-6)
    model.zero_grad()
    alignment.backward()
    assert objective.heads["sem"].upscale[0].weight.grad.abs().sum() > 0
    assert model.encoder.semantic_head[0].ln_pre.weight.grad.abs().sum() > 0  # the issue-#1 bug gave no gradient here
    untouched = model.encoder.visual_head[0].ln_pre.weight.grad  # zeros through the concatenation of the factors
    assert (untouched is None or not untouched.any()) and model.decoder.conv_out.weight.grad is None
    teacher = objective.teachers[0]
    assert all(p.grad is None and not p.requires_grad for p in teacher.parameters())
    assert not any("teacher" in key or key.startswith("blocks.") for key in [*model.state_dict(), *objective.state_dict()])
    with pytest.raises(ValueError, match="the model's factors are"):
        build_objective({"type": "alignment", "teachers": [{**TINY_TEACHER, "factor": "sem_high"}]}).prepare(model)


def test_trainer_trains_and_checkpoints_the_heads_outside_the_model(tmp_path):
    gan = GANObjective({"type": "patchgan", "channels": 8, "n_layers": 2}, disc_start=1)
    objective = AlignmentObjective((Teacher(**TINY_TEACHER),), base=gan)
    assert objective.discriminator is gan.discriminator and not any(k.startswith("discriminator.") for k in objective.state_dict())
    config = TrainConfig(steps=2, batch_size=4, log_every=1, optimizer=OptimizerConfig(lr=1e-3))
    trainer = Trainer(tokenizers_zoo.create_model("fqgan_tiny"), ImageFolder(CIFAR), config, tmp_path, objective=objective)
    head = objective.heads["sem"].positional_embedding
    assert any(p is head for group in trainer.optimizer.param_groups for p in group["params"])
    assert not any(p is gan.discriminator.main[0].weight for group in trainer.optimizer.param_groups for p in group["params"])
    before = head.detach().clone()
    history = trainer.fit()
    assert "alignment_sem" in history[-1] and "disc_loss" in history[-1] and not torch.equal(before, head.detach())
    saved = tokenizers_zoo.from_pretrained(tmp_path / "final")
    assert saved.state_dict().keys() == trainer.model.state_dict().keys()
    kept = load_file(tmp_path / "checkpoint" / "objective.safetensors")
    assert torch.equal(kept["heads.sem.positional_embedding"], head.detach()) and "base.discriminator.main.0.weight" in kept
    resumed_objective = AlignmentObjective((Teacher(**TINY_TEACHER),), base=GANObjective({"type": "patchgan", "channels": 8, "n_layers": 2}))
    resumed = Trainer(tokenizers_zoo.create_model("fqgan_tiny"), ImageFolder(CIFAR), config.replace(steps=3), tmp_path, objective=resumed_objective)
    assert resumed.step == 2 and torch.equal(resumed_objective.heads["sem"].positional_embedding, head.detach())


def _alignment_worker(rank: int, out_dir: str) -> None:
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo", init_method=f"file://{out_dir}/rendezvous", rank=rank, world_size=2)
    torch.manual_seed(0)  # the same model and teacher everywhere; the trainer seeds the heads
    objective = AlignmentObjective((Teacher(**TINY_TEACHER),))
    config = TrainConfig(steps=2, batch_size=4, log_every=100, optimizer=OptimizerConfig(lr=1e-3))
    Trainer(tokenizers_zoo.create_model("fqgan_tiny"), ImageFolder(CIFAR), config, Path(out_dir) / "run", objective=objective).fit()
    torch.save(objective.state_dict(), Path(out_dir) / f"heads{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_heads_stay_identical_on_every_rank(tmp_path):
    """Two gloo processes on different batches: the heads (outside DDP) get the averaged gradient everywhere."""
    mp.spawn(_alignment_worker, args=(str(tmp_path),), nprocs=2, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"heads{r}.pt", weights_only=True) for r in range(2))
    initial, model = AlignmentObjective((Teacher(**TINY_TEACHER),)), tokenizers_zoo.create_model("fqgan_tiny")
    torch.manual_seed(0)  # as the trainer seeds before it prepares the objective
    initial.prepare(model)
    assert rank0.keys() == rank1.keys() and all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    assert not torch.equal(rank0["heads.sem.upscale.0.weight"], initial.state_dict()["heads.sem.upscale.0.weight"])


OFFICIAL_HEADS = {("vis", "sem"): ("feat_pred_head",), ("vis", "sem_mid", "sem_high"): ("mid_sem_feat_pred", "high_sem_feat_pred")}


def official_fqgan_checkpoint(path, factors=("vis", "sem"), ema=True, **args):
    """What showlab/FQGAN's vq_train_{dual,triple}.py saves: official names (quantize_<f>.embedding.weight, not unit
    rows), codebook_used windows, feature-prediction heads, optimizer states, the args Namespace; with ``ema``, an
    EMA copy that differs from the live weights. Returns the models holding the live and the EMA weights."""
    def build(seed):
        torch.manual_seed(seed)
        model = tokenizers_zoo.create_model("fqgan_tiny", factors=factors, adapter_heads=8, quantizer={
            "type": "vq", "groups": len(factors), "codebook_size": 32, "metric": "cosine", "entropy_weight": 0.03})
        for q in model.quantizer.quantizers:
            q.codebook.data = torch.randn(32, 8) * 0.3
        return model.eval()

    def official(model):
        names = {f"quantizer.quantizers.{i}.codebook": f"quantize_{f}.embedding.weight" for i, f in enumerate(factors)}
        state = {names.get(k, k): v.clone() for k, v in model.state_dict().items() if "cluster_size" not in k and "initialized" not in k}
        for factor in factors:
            state[f"quantize_{factor}.codebook_used"] = torch.randint(32, (65536,)).float()
        for head in OFFICIAL_HEADS[factors]:
            state[f"{head}.upscale.0.weight"] = torch.randn(16, 8)
            state[f"{head}.class_embedding"] = torch.randn(1, 16)
        return state

    live, averaged = build(0), build(1)
    namespace = argparse.Namespace(codebook_size=32, codebook_embed_dim=8, image_size=32, ema=ema,
                                   entropy_loss_ratio=0.03, commit_loss_beta=0.25, with_disentanglement=True, disentanglement_ratio=0.1)
    for name, value in args.items():
        setattr(namespace, name, value)
    checkpoint = {"model": official(live), "optimizer": {"state": {}, "param_groups": []}, "steps": 200000, "args": namespace,
                  "discriminator": {"main.0.weight": torch.randn(4, 3, 4, 4)}, "optimizer_disc": {"state": {}, "param_groups": []}}
    if ema:
        checkpoint["ema"] = official(averaged)
    torch.save(checkpoint, path)
    return live, averaged


def assert_same_outputs(model, reference):
    with torch.no_grad():
        expected, out = reference.encode(images()), model.encode(images())
        assert torch.equal(out.latents, expected.latents) and torch.equal(out.indices, expected.indices)
        assert torch.equal(model.decode(out.indices), reference.decode(expected.indices))


@pytest.mark.parametrize("factors", [("vis", "sem"), ("vis", "sem_mid", "sem_high")])
def test_official_checkpoint_converts_with_ema_or_live_weights(tmp_path, caplog, factors):
    live, averaged = official_fqgan_checkpoint(tmp_path / "fqgan.pt", factors)
    with pytest.raises(tokenizers_zoo.CheckpointError, match="trust_pickle"):
        tokenizers_zoo.convert_official(tmp_path / "fqgan.pt")
    with caplog.at_level(logging.INFO, logger="tokenizers_zoo.converters.fqgan"), pytest.warns(UserWarning, match="unpickling"):
        model = tokenizers_zoo.convert_official(tmp_path / "fqgan.pt", trust_pickle=True)
    heads = ", ".join(f"{head}.* (2)" for head in sorted(OFFICIAL_HEADS[factors]))
    assert f"*.codebook_used ({len(factors)})" in caplog.text and heads in caplog.text and "'ema' weights" in caplog.text
    assert not model.training and model.config == averaged.config.replace(quantizer=model.config.quantizer)
    assert model.config.quantizer["codebook_size"] == 32 and model.config.loss_weights == {"disentanglement": 0.1}
    assert torch.equal(model.quantizer.quantizers[-1].codebook, averaged.quantizer.quantizers[-1].codebook)  # rows as stored
    assert_same_outputs(model, averaged)
    with pytest.warns(UserWarning, match="unpickling"):
        model = tokenizers_zoo.convert_official(tmp_path / "fqgan.pt", family="fqgan", ema=False, trust_pickle=True)
    assert torch.equal(model.decoder.conv_out.weight, live.decoder.conv_out.weight)
    assert_same_outputs(model, live)


def test_detection_args_and_refusals(tmp_path):
    live, _ = official_fqgan_checkpoint(tmp_path / "plain.pt", ema=False, entropy_loss_ratio=0.05, disentanglement_ratio=0.2)
    checkpoint = torch.load(tmp_path / "plain.pt", weights_only=False)
    assert CONVERTERS["fqgan"].detect(checkpoint)
    assert [family for family, converter in CONVERTERS.items() if converter.detect(checkpoint)] == ["fqgan"]
    assert not CONVERTERS["fqgan"].detect({"state_dict": {"quantize.embedding.weight": torch.zeros(4, 2), "encoder.conv_in.weight": torch.zeros(1)}})
    model = CONVERTERS["fqgan"].convert(checkpoint, None, None)  # no 'ema': the live weights, as the official evaluation
    assert model.config.quantizer["entropy_weight"] == 0.05 and model.config.loss_weights == {"disentanglement": 0.2}
    assert_same_outputs(model, live)
    with pytest.raises(tokenizers_zoo.CheckpointError, match="no 'ema' weights"):
        CONVERTERS["fqgan"].convert(checkpoint, None, True)
    with pytest.raises(tokenizers_zoo.CheckpointError, match=r"codebook_size=16384 \(tensors: 32\)"):
        CONVERTERS["fqgan"].convert({**checkpoint, "args": argparse.Namespace(codebook_size=16384)}, None, None)
    with pytest.raises(tokenizers_zoo.CheckpointError, match="vq_model='VQ-16'"):
        CONVERTERS["fqgan"].convert({**checkpoint, "args": argparse.Namespace(vq_model="VQ-16")}, None, None)
    damaged = {key: value for key, value in checkpoint["model"].items() if key != "quant_conv_sem.bias"}
    with pytest.raises(tokenizers_zoo.CheckpointError, match=r"missing keys.*quant_conv_sem\.bias"):
        CONVERTERS["fqgan"].convert({"model": damaged}, None, None)
