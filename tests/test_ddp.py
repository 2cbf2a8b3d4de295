"""Under DDP the codebook stays identical on every rank (two CPU processes, gloo)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tokenizers_zoo.quantizers import VectorQuantizer

from conftest import CIFAR, small_image_model

WORLD = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _batches(rank: int, steps: int) -> list[torch.Tensor]:
    """Different data on each rank (different seed and mean)."""
    generator = torch.Generator().manual_seed(100 + rank)
    return [torch.randn(3, 8, 6, 6, generator=generator) + rank for _ in range(steps)]


def _make_quantizer(**options) -> VectorQuantizer:
    torch.manual_seed(7)  # same initial codebook everywhere
    return VectorQuantizer(8, 64, **options).train()


def _worker(rank: int, out_dir: str, options: dict, steps: int) -> None:
    os.environ["GLOO_SOCKET_IFNAME"] = "lo"  # loopback only: no interface guessing from the hostname
    dist.init_process_group("gloo", init_method=f"file://{out_dir}/rendezvous", rank=rank, world_size=WORLD)
    torch.manual_seed(1000 + rank)  # ranks would sample different restart vectors if not synchronised
    quantizer = _make_quantizer(**options)
    for z in _batches(rank, steps):
        out = quantizer(z)
    torch.save({"state": quantizer.state_dict(), "usage": float(out.stats.usage)}, Path(out_dir) / f"rank{rank}.pt")
    dist.barrier()  # neither rank tears down while the other is still talking
    dist.destroy_process_group()


def _run(tmp_path, options, steps=6):
    mp.spawn(_worker, args=(str(tmp_path), options, steps), nprocs=WORLD, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        {"ema": True, "kmeans_init": True, "dead_code_threshold": 2.0},
        {"ema": False, "kmeans_init": True, "dead_code_threshold": 2.0},
    ],
    ids=["ema", "gradient-codebook"],
)
def test_codebook_identical_on_every_rank(tmp_path, options):
    rank0, rank1 = _run(tmp_path, options)
    initial = _make_quantizer(**options).state_dict()
    for key, value in rank0["state"].items():
        assert torch.equal(value, rank1["state"][key]), f"{key} differs between ranks"
    assert not torch.equal(rank0["state"]["codebook"], initial["codebook"])
    assert bool(rank0["state"]["initialized"])
    assert rank0["usage"] == rank1["usage"]  # statistics use the all-reduced histogram too


@pytest.mark.slow
def test_ddp_ema_equals_one_process_on_the_union_of_the_batches(tmp_path):
    """All-reduced EMA statistics are exactly the statistics of the combined batch."""
    distributed = _run(tmp_path, {"ema": True})[0]["state"]
    single = _make_quantizer(ema=True)
    for parts in zip(*(_batches(rank, 6) for rank in range(WORLD))):
        single(torch.cat(parts))
    for key in ("codebook", "embed_sum", "cluster_size"):
        torch.testing.assert_close(distributed[key], single.state_dict()[key], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_torchrun_training_recipe(tmp_path):
    """The shared trainer runs under torchrun with two gloo processes and writes a loadable model."""
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"model": "vqvae_tiny", "data": {"size": 32}, "train": {"batch_size": 8, "log_every": 10}}))
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
        "-m", "tokenizers_zoo", "train", str(recipe), "--data", str(CIFAR), "--output", str(tmp_path), "--steps", "3",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    import tokenizers_zoo

    model = tokenizers_zoo.from_pretrained(tmp_path / "final")
    assert model.quantizer.codebook_size == 512
    assert (tmp_path / "log.jsonl").read_text().count("\n") == 1


@pytest.mark.slow
def test_without_sync_the_ranks_diverge(tmp_path):
    """Control for the test above: the same run with sync=False leaves different codebooks."""
    rank0, rank1 = _run(tmp_path, {"ema": True, "kmeans_init": True, "dead_code_threshold": 2.0, "sync": False})
    assert not torch.equal(rank0["state"]["codebook"], rank1["state"]["codebook"])


def _gan_worker(rank: int, out_dir: str) -> None:
    from tokenizers_zoo.data import ImageFolder
    from tokenizers_zoo.objectives import GANObjective
    from tokenizers_zoo.training import OptimizerConfig, TrainConfig, Trainer

    os.environ["GLOO_SOCKET_IFNAME"] = "lo"
    dist.init_process_group("gloo", init_method=f"file://{out_dir}/rendezvous", rank=rank, world_size=WORLD)
    torch.manual_seed(0)  # the same initial weights everywhere, as a launcher's seeding gives
    model = small_image_model(kmeans_init=True, dead_code_threshold=1.0)
    objective = GANObjective({"type": "patchgan", "channels": 8, "n_layers": 2}, adaptive_weight=True, lecam_weight=0.1)
    initial = {k: v.clone() for k, v in objective.discriminator.state_dict().items()}
    config = TrainConfig(steps=3, batch_size=4, log_every=100, find_unused_parameters=True, optimizer=OptimizerConfig(lr=1e-3))
    trainer = Trainer(model, ImageFolder(CIFAR, hflip=True), config, Path(out_dir) / "run", objective=objective)
    trainer.fit()
    torch.save(
        {"model": model.state_dict(), "objective": objective.state_dict(), "initial": initial, "wrapped": type(trainer.disc_network).__name__},
        Path(out_dir) / f"gan{rank}.pt",
    )
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_generator_and_discriminator_identical_on_every_rank(tmp_path):
    """Two gloo processes train a VQ-VAE against a PatchGAN: every weight of both ends up the same on each rank."""
    mp.spawn(_gan_worker, args=(str(tmp_path),), nprocs=WORLD, join=True)
    rank0, rank1 = (torch.load(tmp_path / f"gan{r}.pt", weights_only=True) for r in range(WORLD))
    assert rank0["wrapped"] == "DistributedDataParallel"
    for part in ("model", "objective"):
        for key, value in rank0[part].items():
            if key.endswith(("running_mean", "running_var")):
                continue  # BatchNorm statistics of each rank's own batches; the discriminator never runs in eval mode
            assert torch.equal(value, rank1[part][key]), f"{part}: {key} differs between ranks"
    assert not torch.equal(rank0["objective"]["discriminator.main.0.weight"], rank0["initial"]["main.0.weight"])
    assert float(rank0["objective"]["lecam.ema_real"]) != 0.0
