"""The one trainer every recipe uses: a generator step and, when the objective has a discriminator, a
discriminator step with its own optimizer; bf16 autocast (quantizers stay fp32), weight EMA, parameter
groups, frozen stages, validation with best-checkpoint selection, bit-exact resume, and DDP under
``torchrun`` (gloo on CPU, NCCL on GPU)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from .. import distributed, hub
from ..config import Config, ConfigError, check_positive
from ..objectives import Objective, ObjectiveOutput
from .batches import evaluation_loader, split_batch, training_batches
from .checkpoint import has_checkpoint, load_checkpoint, save_checkpoint
from .ema import WeightEMA
from .optim import OptimizerConfig, build_optimizer, freeze, gradients_off
from .validation import DIRECTIONS, evaluate, is_better

CHECKPOINT_DIR = "checkpoint"
FINAL_DIR = "final"
BEST_DIR = "best"


@dataclass
class TrainConfig(Config):
    """Optimisation settings. ``batch_size`` is per process; ``steps`` counts generator steps.

    ``optimizer`` trains the model, ``disc_optimizer`` the objective's discriminator (if any); both follow
    the same warm-up and schedule. ``freeze`` names submodules or parameters of the model to keep fixed
    (wildcards allowed). With a validation split, every ``val_every`` steps (and at the end) the weights
    that would be exported are evaluated and the best by ``val_metric`` are kept in ``best/``;
    ``val_mode`` says whether lower or higher is better (known metrics know it).
    """

    steps: int = 1000
    batch_size: int = 32
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    disc_optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    warmup_steps: int = 0
    schedule: Literal["constant", "cosine"] = "constant"
    grad_clip: float = 1.0
    mixed_precision: Literal["no", "bf16"] = "no"
    ema_decay: float = 0.0
    freeze: tuple[str, ...] = ()
    find_unused_parameters: bool = False
    log_every: int = 50
    checkpoint_every: int = 0
    val_every: int = 0
    val_metric: str = "loss"
    val_mode: Literal["min", "max"] | None = None
    seed: int = 0
    num_workers: int = 0

    def validate(self) -> None:
        check_positive(self, "steps", "batch_size", "log_every")
        if min(self.warmup_steps, self.checkpoint_every, self.val_every, self.num_workers, self.grad_clip) < 0:
            raise ConfigError("warmup_steps, checkpoint_every, val_every, num_workers and grad_clip must be >= 0")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"ema_decay must be in [0, 1), got {self.ema_decay}")
        if self.val_mode is None and self.val_metric not in DIRECTIONS:
            raise ConfigError(f"say whether a larger {self.val_metric!r} is better: set val_mode to 'min' or 'max'")
        super().validate()

    @property
    def selection_mode(self) -> str:
        return self.val_mode or DIRECTIONS[self.val_metric]


class Trainer:
    """Trains ``model`` on ``dataset`` with ``objective`` (default: the model's own losses).

    Each step runs the generator (model) step, in which the discriminator's parameters receive no gradient,
    then, when the objective's discriminator is active, the discriminator step on the real batch and that
    step's reconstructions (detached), with its own optimizer and schedule.

    Dataset items are signal tensors, or dicts with the signal under ``"x"`` and the model's training
    keywords (``lengths``, ``edge_index``, ...); a dataset's ``collate`` is used when it has one. Writes
    ``output_dir/checkpoint`` (resumed automatically when present), ``log.jsonl``, ``best/`` (with a
    validation split) and, at the end, ``final/``: ``from_pretrained`` folders holding the EMA weights when
    the EMA is on. Nothing of the objective is ever written into a model folder.
    """

    def __init__(
        self,
        model: Any,
        dataset: torch.utils.data.Dataset,
        config: TrainConfig,
        output_dir: str | os.PathLike,
        objective: Objective | None = None,
        val_dataset: torch.utils.data.Dataset | None = None,
    ):
        self.config, self.dataset, self.val_dataset = config, dataset, val_dataset
        self.output_dir = Path(output_dir)
        self.device = _init_process_group()
        torch.manual_seed(config.seed)
        self.model = model.to(self.device)
        self.objective = objective or Objective()
        self.objective.prepare(self.model)
        self.objective = self.objective.to(self.device).train()
        self.frozen = freeze(self.model, config.freeze)
        self._train_mode()
        self.network = self._parallel(self.model, broadcast_buffers=False)  # quantizers keep their own buffers in sync
        self.discriminator = self.objective.discriminator
        # Each rank keeps its discriminator's BatchNorm statistics (never used: D always runs in train mode); a
        # buffer broadcast between the real and the fake forward would invalidate the first one's graph.
        self.disc_network = self._parallel(self.discriminator, broadcast_buffers=False) if self.discriminator is not None else None
        # The generator's optimizer also trains the objective's own parameters (e.g. feature-prediction heads);
        # they live outside DDP, so their gradients are averaged over the ranks by hand.
        objective_parameters = self.objective.generator_parameters()
        self.objective_parameters = [p for _, p in objective_parameters]
        self.optimizer = build_optimizer(self.model, config.optimizer, objective_parameters)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.disc_optimizer = self.disc_scheduler = None
        if self.discriminator is not None:
            self.disc_optimizer = build_optimizer(self.discriminator, config.disc_optimizer)
            self.disc_scheduler = torch.optim.lr_scheduler.LambdaLR(self.disc_optimizer, self._lr_factor)
        self.ema = WeightEMA(self.model, config.ema_decay) if config.ema_decay > 0 else None
        self.step, self.best = 0, None
        if has_checkpoint(self.output_dir / CHECKPOINT_DIR):
            self._resume()

    # ---------------------------------------------------------------- loop

    def fit(self) -> list[dict[str, float]]:
        """Train until ``config.steps``; returns the logged metrics (also appended to ``log.jsonl``)."""
        history, started, batches = [], time.perf_counter(), self._batches()
        while self.step < self.config.steps:
            logs = self.train_step(next(batches))  # fetch only what is trained on: augmentation draws from the RNG
            self.step += 1
            if self.step % self.config.log_every == 0 or self.step == self.config.steps:
                history.append(self._log({"step": self.step, **logs, "seconds": round(time.perf_counter() - started, 2)}))
            if self.val_dataset is not None and (self.step == self.config.steps or self.config.val_every and self.step % self.config.val_every == 0):
                history.append(self._log(self.validate()))
            if self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
                self.save_checkpoint()
        self.save_checkpoint()
        self.export(self.output_dir / FINAL_DIR)
        return history

    def train_step(self, batch: Any) -> dict[str, float]:
        """One generator step and, when the discriminator is active, one discriminator step; returns logs."""
        x, context = split_batch(batch, self.device)
        with gradients_off(self.discriminator), self._autocast():
            out = self.network(x, **context)
            generator = self.objective.generator_loss(out, x, step=self.step, last_layer=self.model.last_layer)
        generator.loss.backward()
        _average_gradients(self.objective_parameters)
        self._step([*self.model.parameters(), *self.objective_parameters], self.optimizer, self.scheduler)
        logs = {**_scalars(generator, prefix=""), **_codebook_logs(out.stats)}
        if self.discriminator is not None and self.objective.discriminator_active(self.step):
            with self._autocast():
                judged = self.objective.discriminator_loss(x, out.reconstruction, step=self.step, discriminator=self.disc_network)
            judged.loss.backward()
            self._step(list(self.discriminator.parameters()), self.disc_optimizer, self.disc_scheduler)
            logs.update(_scalars(judged, prefix="disc_"))
        if self.ema is not None:
            self.ema.update(self.model)
        return logs

    def validate(self) -> dict[str, float]:
        """Evaluate the weights that would be exported on the validation split; keep them if the best so far."""
        metrics: dict[str, float] = {}
        if distributed.rank() == 0:
            with self._exported_weights():
                self.model.eval()
                metrics = evaluate(self.model, evaluation_loader(self.val_dataset, self.config.batch_size), self.device)
                self._train_mode()
                if self.config.val_metric not in metrics:
                    raise ConfigError(f"val_metric {self.config.val_metric!r} is not measured; available: {sorted(metrics)}")
                value = metrics[self.config.val_metric]
                if math.isfinite(value) and is_better(value, self.best, self.config.selection_mode):
                    self.best = value
                    hub.save_pretrained(self.model, self.output_dir / BEST_DIR)
        if distributed.is_distributed():
            dist.barrier()
        return {"step": self.step, **{f"val_{name}": value for name, value in metrics.items()}}

    def _step(self, parameters: list[torch.nn.Parameter], optimizer, scheduler) -> None:
        """Clip the gradients of ``parameters`` together, step, clear them, advance the schedule."""
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_([p for p in parameters if p.grad is not None], self.config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        scheduler.step()

    def _lr_factor(self, step: int) -> float:
        warmup = self.config.warmup_steps
        if step < warmup:
            return (step + 1) / warmup
        if self.config.schedule == "cosine":
            progress = (step - warmup) / max(1, self.config.steps - warmup)
            return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
        return 1.0

    def _batches(self):
        return training_batches(self.dataset, self.config.batch_size, self.config.seed, self.step, self.config.num_workers)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.mixed_precision == "bf16")

    def _train_mode(self) -> None:
        """Everything trains except the frozen stages, which stay in eval mode (no statistics updates)."""
        self.model.train()
        for module in self.frozen:
            module.eval()

    def _parallel(self, module: torch.nn.Module, **options) -> torch.nn.Module:
        if not distributed.is_distributed():
            return module
        return DistributedDataParallel(module, find_unused_parameters=self.config.find_unused_parameters, **options)

    def _log(self, metrics: dict[str, float]) -> dict[str, float]:
        if distributed.rank() == 0:
            line = json.dumps(metrics)
            print(line, flush=True)
            self.output_dir.mkdir(parents=True, exist_ok=True)
            with open(self.output_dir / "log.jsonl", "a", encoding="utf-8") as log:
                log.write(line + "\n")
        return metrics

    # ---------------------------------------------------------------- checkpoints and export

    def save_checkpoint(self) -> None:
        """Model, objective, EMA, both optimizers and schedulers, step, best result and RNG (rank 0 writes)."""
        if distributed.rank() == 0:
            state = {
                "step": self.step,
                "best": self.best,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "disc_optimizer": self.disc_optimizer.state_dict() if self.disc_optimizer else None,
                "disc_scheduler": self.disc_scheduler.state_dict() if self.disc_scheduler else None,
                "train_config": self.config.to_dict(),
            }
            ema_state = self.ema.state_dict() if self.ema is not None else None
            save_checkpoint(self.output_dir / CHECKPOINT_DIR, self.model, self.objective, ema_state, state)
        if distributed.is_distributed():
            dist.barrier()

    def _resume(self) -> None:
        ema_state, state = load_checkpoint(self.output_dir / CHECKPOINT_DIR, self.model, self.objective, self.device)
        if (ema_state is None) != (self.ema is None):
            raise ConfigError("the checkpoint and this run disagree on the weight EMA (ema_decay): resume with the same settings")
        if self.ema is not None:
            self.ema.load_state_dict(ema_state)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if self.disc_optimizer is not None:
            if state["disc_optimizer"] is None:
                raise ConfigError("the checkpoint has no discriminator optimizer but this run's objective has a discriminator")
            self.disc_optimizer.load_state_dict(state["disc_optimizer"])
            self.disc_scheduler.load_state_dict(state["disc_scheduler"])
        self.step, self.best = state["step"], state["best"]

    def export(self, directory: Path) -> None:
        """``save_pretrained`` the trained model (with the EMA weights when enabled) into ``directory``."""
        if distributed.rank() == 0:
            with self._exported_weights():
                hub.save_pretrained(self.model, directory)

    def _exported_weights(self):
        return self.ema.swapped_in(self.model) if self.ema is not None else contextlib.nullcontext()


def _average_gradients(parameters: list[torch.nn.Parameter]) -> None:
    """Average over the ranks the gradients of parameters that DDP does not wrap (a missing gradient counts as 0)."""
    if not distributed.is_distributed():
        return
    for parameter in parameters:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        distributed.all_reduce_sum(parameter.grad).div_(distributed.world_size())


def _codebook_logs(stats) -> dict[str, float]:
    """Codebook statistics, averaged over groups, and per group (``codebook_usage/1``) when there are several."""
    logs = {}
    for name, value in zip(stats.keys(), stats):
        logs[f"codebook_{name}"] = float(value.float().mean())
        if value.numel() > 1:
            logs.update({f"codebook_{name}/{group}": float(v) for group, v in enumerate(value.float())})
    return logs


def _scalars(output: ObjectiveOutput, prefix: str) -> dict[str, float]:
    values = {"loss": output.loss, **output.losses, **output.logs}
    return {f"{prefix}{name}": float(value.detach()) for name, value in values.items()}


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
