"""Recipes: a JSON file naming the model, the objective, the data and the optimisation, run by the trainer.

```json
{"model": "vqvae_tiny", "overrides": {}, "init_from": null,
 "objective": {"type": "gan", "discriminator": {"type": "patchgan", "n_layers": 3}, "disc_start": 1000},
 "data": {"type": "images", "size": 32, "hflip": true, "val": {"include": ["*/000?.jpg"]}},
 "train": {"steps": 3000, "batch_size": 64, "optimizer": {"lr": 5e-4}, "freeze": []}}
```
``model`` is a registered name (its config, with ``overrides``); ``init_from`` fine-tunes from a pretrained
source instead (folder, registered name, Hub id); the data folders are given when running, not stored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..config import ConfigError, read_json
from ..factory import create_model
from ..hub import load_pretrained
from ..objectives import build_objective
from .datasets import build_datasets
from .trainer import TrainConfig, Trainer

RECIPE_KEYS = {"model", "overrides", "init_from", "objective", "data", "train", "description"}


def run_recipe(
    recipe: str | os.PathLike | dict[str, Any],
    data: str | os.PathLike,
    output_dir: str | os.PathLike,
    train_overrides: dict[str, Any] | None = None,
    val_data: str | os.PathLike | None = None,
) -> list[dict[str, float]]:
    """Train as ``recipe`` says on the data under ``data`` (validation: the recipe's split, or ``val_data``)."""
    trainer = build_trainer(recipe, data, output_dir, train_overrides, val_data)
    return trainer.fit()


def build_trainer(recipe, data, output_dir, train_overrides=None, val_data=None) -> Trainer:
    """The trainer a recipe describes (model, objective, datasets, optimisation), ready to ``fit``."""
    recipe = recipe if isinstance(recipe, dict) else read_json(recipe)
    unknown = set(recipe) - RECIPE_KEYS
    if unknown or "model" not in recipe:
        raise ConfigError(f"a recipe needs 'model' and may hold {sorted(RECIPE_KEYS)}; got {sorted(recipe)}")
    if recipe.get("init_from"):
        if recipe.get("overrides"):
            raise ConfigError("a recipe with 'init_from' takes the pretrained config as it is: remove 'overrides'")
        model = load_pretrained(recipe["init_from"])
    else:
        model = create_model(recipe["model"], **recipe.get("overrides", {}))
    config = TrainConfig.from_dict({**recipe.get("train", {}), **(train_overrides or {})})
    train_set, val_set = build_datasets(recipe.get("data", {}), Path(data), model, val_data)
    return Trainer(model, train_set, config, output_dir, objective=build_objective(recipe.get("objective")), val_dataset=val_set)
