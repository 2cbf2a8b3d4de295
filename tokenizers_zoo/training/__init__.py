"""The shared training loop and the recipe runner."""

from .ema import WeightEMA
from .recipe import run_recipe
from .trainer import TrainConfig, Trainer

__all__ = ["TrainConfig", "Trainer", "WeightEMA", "run_recipe"]
