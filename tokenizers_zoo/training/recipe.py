"""Recipes: a JSON file naming the model, the data and the optimisation, run by the shared trainer.

```json
{"model": "vqvae_tiny", "overrides": {}, "init_from": null,
 "data": {"type": "images", "size": 32, "hflip": true, "exclude": ["*/000?.jpg"]},
 "train": {"steps": 3000, "batch_size": 64, "lr": 0.0005}}
```
``model`` is a registered name (its config, with ``overrides``); ``init_from`` fine-tunes from a pretrained
source (folder, registered name, Hub id); the data folder is given when running, not stored in the recipe.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Any

from .. import registry
from ..config import ConfigError, read_json
from ..data import ImageFolder, list_images
from ..hub import load_pretrained
from .trainer import TrainConfig, Trainer

RECIPE_KEYS = {"model", "overrides", "init_from", "data", "train", "description"}


def run_recipe(
    recipe: str | os.PathLike | dict[str, Any],
    data: str | os.PathLike,
    output_dir: str | os.PathLike,
    train_overrides: dict[str, Any] | None = None,
) -> list[dict[str, float]]:
    """Train as ``recipe`` says on the data under ``data``; returns the logged metrics."""
    recipe = read_json(recipe) if not isinstance(recipe, dict) else recipe
    unknown = set(recipe) - RECIPE_KEYS
    if unknown or "model" not in recipe:
        raise ConfigError(f"a recipe needs 'model' and may hold {sorted(RECIPE_KEYS)}; got {sorted(recipe)}")
    if recipe.get("init_from"):
        model = load_pretrained(recipe["init_from"]).train()
    else:
        model = registry.create_model(recipe["model"], **recipe.get("overrides", {}))
    config = TrainConfig.from_dict({**recipe.get("train", {}), **(train_overrides or {})})
    trainer = Trainer(model, build_dataset(recipe.get("data", {}), data), config, output_dir)
    return trainer.fit()


def build_dataset(spec: dict[str, Any], root: str | os.PathLike):
    """The dataset a recipe's ``data`` entry describes, over the files under ``root``."""
    options = dict(spec)
    kind = options.pop("type", "images")
    if kind != "images":
        raise ConfigError(f"unknown data type {kind!r}; known: ['images']")
    exclude = options.pop("exclude", [])
    files = [f for f in list_images(root) if not any(fnmatch.fnmatch(f.relative_to(root).as_posix(), p) for p in exclude)]
    if not files:
        raise FileNotFoundError(f"every image under {root} is excluded by {exclude}")
    return ImageFolder([Path(f) for f in files], **options)
