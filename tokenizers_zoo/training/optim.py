"""Optimizers over explicit parameter groups, and freezing parts of a model by name."""

from __future__ import annotations

import contextlib
import fnmatch
from dataclasses import dataclass
from typing import Iterator, Literal, Sequence

import torch
from torch import nn

from ..config import Config, ConfigError, check_positive


@dataclass
class ParamGroup(Config):
    """Parameters whose names match any of ``params`` (wildcards, e.g. ``"decoder.*"``), with their own
    settings; ``None`` keeps the optimizer's."""

    params: tuple[str, ...] = ()
    lr: float | None = None
    betas: tuple[float, float] | None = None
    weight_decay: float | None = None

    def validate(self) -> None:
        if not self.params:
            raise ConfigError("a parameter group needs at least one name pattern in 'params'")
        check_positive(self, "lr")
        super().validate()


@dataclass
class OptimizerConfig(Config):
    """Adam or AdamW settings; ``groups`` carve parameter groups out of the model (first match wins is not
    allowed: a parameter matched by two groups is an error); the rest forms the default group."""

    name: Literal["adam", "adamw"] = "adamw"
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.9)
    eps: float = 1e-8
    weight_decay: float = 0.0
    groups: tuple[ParamGroup, ...] = ()

    def validate(self) -> None:
        check_positive(self, "lr", "eps")
        if self.weight_decay < 0 or not all(0 <= b < 1 for b in self.betas):
            raise ConfigError(f"weight_decay must be >= 0 and betas in [0, 1), got {self.weight_decay} and {self.betas}")
        super().validate()


def build_optimizer(
    module: nn.Module, config: OptimizerConfig, extra: Sequence[tuple[str, nn.Parameter]] = ()
) -> torch.optim.Optimizer:
    """An optimizer over ``module``'s trainable parameters and the named ``extra`` ones (an objective's heads,
    named ``objective.<name>`` for the group patterns), grouped as ``config.groups`` say."""
    trainable = [(name, p) for name, p in module.named_parameters() if p.requires_grad]
    trainable += [(f"objective.{name}", p) for name, p in extra]
    if not trainable:
        raise ConfigError(f"{type(module).__name__} has no trainable parameters (is everything frozen?)")
    owner: dict[str, int] = {}
    for index, group in enumerate(config.groups):
        matched = [name for name, _ in trainable if any(fnmatch.fnmatchcase(name, p) for p in group.params)]
        if not matched:
            raise ConfigError(f"parameter group {list(group.params)} matches no trainable parameter of {type(module).__name__}")
        for name in matched:
            if name in owner:
                raise ConfigError(f"parameter {name} is matched by parameter groups {owner[name]} and {index}")
            owner[name] = index
    groups = []
    for index, group in enumerate(config.groups):
        settings = {key: getattr(group, key) for key in ("lr", "betas", "weight_decay") if getattr(group, key) is not None}
        groups.append({"params": [p for name, p in trainable if owner.get(name) == index], **settings})
    rest = [p for name, p in trainable if name not in owner]
    if rest:
        groups.append({"params": rest})
    optimizer = torch.optim.AdamW if config.name == "adamw" else torch.optim.Adam
    return optimizer(groups, lr=config.lr, betas=config.betas, eps=config.eps, weight_decay=config.weight_decay)


def freeze(model: nn.Module, patterns: tuple[str, ...]) -> list[nn.Module]:
    """Switch off gradients for the submodules and parameters named by ``patterns`` (wildcards allowed).

    Returns the frozen submodules, which the trainer keeps in eval mode: a frozen quantizer then neither
    updates its EMA statistics nor re-initialises or restarts codes. A pattern that names nothing, or
    names a buffer that training updates (an EMA codebook), raises :class:`ConfigError`.
    """
    modules = dict(model.named_modules())
    parameters = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    frozen = []
    for pattern in patterns:
        module_names = [name for name in modules if name and fnmatch.fnmatchcase(name, pattern)]
        parameter_names = [name for name in parameters if fnmatch.fnmatchcase(name, pattern)]
        if not module_names and not parameter_names:
            buffer = next((name for name in buffers if fnmatch.fnmatchcase(name, pattern)), None)
            if buffer is not None:
                raise ConfigError(f"freeze: {buffer} is a buffer updated during training; freeze its module '{buffer.rpartition('.')[0]}'")
            raise ConfigError(f"freeze: {pattern!r} names no submodule or parameter of {type(model).__name__}")
        for name in module_names:
            modules[name].requires_grad_(False)
            frozen.append(modules[name])
        for name in parameter_names:
            parameters[name].requires_grad_(False)
    return frozen


@contextlib.contextmanager
def gradients_off(module: nn.Module | None) -> Iterator[None]:
    """Temporarily stop ``module``'s parameters from receiving gradients (the discriminator in the generator step)."""
    if module is None:
        yield
        return
    states = [(p, p.requires_grad) for p in module.parameters()]
    for p, _ in states:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, state in states:
            p.requires_grad_(state)
