"""The one small trainer every recipe uses: AdamW, warm-up, bf16 autocast (quantizers stay fp32), weight
EMA, checkpoint/resume and DDP under ``torchrun`` (gloo on CPU, NCCL on GPU)."""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch.nn.parallel import DistributedDataParallel

from .. import distributed, hub
from ..config import Config
from ..models.tokenizer import Tokenizer
from .ema import WeightEMA

CHECKPOINT_DIR = "checkpoint"
FINAL_DIR = "final"


@dataclass
class TrainConfig(Config):
    """Optimisation settings. ``batch_size`` is per process; ``steps`` counts optimizer steps."""

    steps: int = 1000
    batch_size: int = 32
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: str = "constant"
    grad_clip: float = 1.0
    mixed_precision: str = "no"
    ema_decay: float = 0.0
    log_every: int = 50
    checkpoint_every: int = 0
    seed: int = 0
    num_workers: int = 0

    def __post_init__(self) -> None:
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if self.mixed_precision not in ("no", "bf16"):
            raise ValueError(f"mixed_precision must be 'no' or 'bf16', got {self.mixed_precision!r}")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be positive")


class Trainer:
    """Trains ``model`` on ``dataset`` (items: signal tensors, or dicts with the signal under ``"x"`` plus
    context such as ``lengths``). Writes ``output_dir/checkpoint`` (resumed automatically when present)
    and, at the end, ``output_dir/final``: a ``from_pretrained`` folder with the EMA weights if enabled."""

    def __init__(self, model: Tokenizer, dataset: torch.utils.data.Dataset, config: TrainConfig, output_dir: str | os.PathLike):
        self.config, self.dataset = config, dataset
        self.output_dir = Path(output_dir)
        self.device = _init_process_group()
        torch.manual_seed(config.seed)
        self.model = model.to(self.device).train()
        self.network = (
            DistributedDataParallel(self.model, broadcast_buffers=False) if distributed.is_distributed() else self.model
        )
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.ema = WeightEMA(self.model, config.ema_decay) if config.ema_decay > 0 else None
        self.step = 0
        if (self.output_dir / CHECKPOINT_DIR / "trainer_state.pt").is_file():
            self._resume()

    # ---------------------------------------------------------------- loop

    def fit(self) -> list[dict[str, float]]:
        """Train until ``config.steps``; returns the logged metrics (also appended to ``log.jsonl``)."""
        history, started, batches = [], time.perf_counter(), self._batches()
        while self.step < self.config.steps:
            out = self._train_step(next(batches))  # fetch only what is trained on: augmentation draws from the RNG
            self.step += 1
            if self.step % self.config.log_every == 0 or self.step == self.config.steps:
                history.append(self._log(out, time.perf_counter() - started))
            if self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
                self.save_checkpoint()
        self.save_checkpoint()
        self.export(self.output_dir / FINAL_DIR)
        return history

    def _train_step(self, batch: Any):
        x, context = _split_batch(batch, self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.mixed_precision == "bf16"):
            out = self.network(x, **context)
        out.loss.backward()
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return out

    def _lr_factor(self, step: int) -> float:
        warmup = self.config.warmup_steps
        if step < warmup:
            return (step + 1) / warmup
        if self.config.schedule == "cosine":
            progress = (step - warmup) / max(1, self.config.steps - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return 1.0

    def _batches(self) -> Iterator[Any]:
        """Batches from ``self.step`` on: epoch e is a seeded permutation, sharded by rank (drop-last),
        so a resumed run sees exactly the batches an uninterrupted one would."""
        rank, world = distributed.rank(), distributed.world_size()
        per_rank = len(self.dataset) // world
        per_epoch = per_rank // self.config.batch_size
        if per_epoch == 0:
            raise ValueError(f"{len(self.dataset)} items are fewer than one batch of {self.config.batch_size} per process")
        epoch, skip = divmod(self.step, per_epoch)
        while True:
            order = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(self.config.seed * 100003 + epoch))
            shard = order[rank : per_rank * world : world].tolist()
            batches = [shard[i : i + self.config.batch_size] for i in range(0, per_epoch * self.config.batch_size, self.config.batch_size)]
            loader = torch.utils.data.DataLoader(  # own generator: creating the loader must not draw from the global RNG
                self.dataset, batch_sampler=batches[skip:], num_workers=self.config.num_workers, generator=torch.Generator()
            )
            yield from loader
            epoch, skip = epoch + 1, 0

    def _log(self, out, elapsed: float) -> dict[str, float]:
        metrics = {"step": self.step, "loss": float(out.loss.detach()), "lr": self.scheduler.get_last_lr()[0], "seconds": round(elapsed, 2)}
        metrics.update({name: float(value.detach()) for name, value in out.losses.items()})
        metrics.update({f"codebook_{name}": float(value.float().mean()) for name, value in zip(out.stats.keys(), out.stats)})
        if distributed.rank() == 0:
            line = json.dumps(metrics)
            print(line, flush=True)
            self.output_dir.mkdir(parents=True, exist_ok=True)
            with open(self.output_dir / "log.jsonl", "a", encoding="utf-8") as log:
                log.write(line + "\n")
        return metrics

    # ---------------------------------------------------------------- checkpoints

    def save_checkpoint(self) -> None:
        """Model, EMA, optimizer, scheduler, step and RNG state under ``output_dir/checkpoint`` (rank 0)."""
        if distributed.rank() == 0:
            folder = self.output_dir / CHECKPOINT_DIR
            hub.save_pretrained(self.model, folder / "model")
            if self.ema is not None:
                _atomic(folder / "ema.safetensors", lambda path: save_file(self.ema.state_dict(), path))
            state = {
                "step": self.step,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": torch.get_rng_state(),
                "train_config": self.config.to_dict(),
            }
            _atomic(folder / "trainer_state.pt", lambda path: torch.save(state, path))
        if distributed.is_distributed():
            dist.barrier()

    def _resume(self) -> None:
        folder = self.output_dir / CHECKPOINT_DIR
        weights = hub.read_checkpoint(folder / "model" / hub.WEIGHTS_NAME, self.device)
        hub.load_state_dict_checked(self.model, weights, str(folder / "model"))
        if self.ema is not None:
            self.ema.load_state_dict(load_file(folder / "ema.safetensors", device=str(self.device)))
        state = torch.load(folder / "trainer_state.pt", map_location=self.device, weights_only=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"].cpu())
        self.step = state["step"]

    def export(self, directory: Path) -> None:
        """``save_pretrained`` the trained model (with the EMA weights when enabled) into ``directory``."""
        if distributed.rank() != 0:
            return
        if self.ema is None:
            hub.save_pretrained(self.model, directory)
            return
        current = {key: value.clone() for key, value in self.model.state_dict().items()}
        self.model.load_state_dict(self.ema.state_dict())
        hub.save_pretrained(self.model, directory)
        self.model.load_state_dict(current)


def _init_process_group() -> torch.device:
    """Join the ``torchrun`` process group when launched by it; the device this process trains on."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def _split_batch(batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    if isinstance(batch, dict):
        batch = {key: value.to(device) for key, value in batch.items()}
        return batch.pop("x"), batch
    return batch.to(device), {}


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".tmp-{path.name}")
    write(temporary)
    os.replace(temporary, path)
