"""The shared trainer, its optimizers and checkpoints, and the recipe runner."""

from .ema import WeightEMA
from .optim import OptimizerConfig, ParamGroup, build_optimizer, freeze
from .recipe import build_trainer, run_recipe
from .trainer import TrainConfig, Trainer

__all__ = ["OptimizerConfig", "ParamGroup", "TrainConfig", "Trainer", "WeightEMA", "build_optimizer", "build_trainer", "freeze", "run_recipe"]
