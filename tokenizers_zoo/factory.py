"""``create_model``: a registered name (plus config overrides) -> a tokenizer, optionally with its weights."""

from __future__ import annotations

from typing import Any

from . import hub, registry


def create_model(name: str, *, pretrained: bool = False, **overrides: Any) -> Any:
    """Build the registered model ``name`` with config fields overridden by keyword.

    ``pretrained=True`` loads its released weights (strictly, so overrides that change shapes fail there).
    """
    info, config = registry.model_info(name), registry.model_config(name)
    model = registry.architecture_class(info.architecture)(config.replace(**overrides))
    model.model_name = name
    if pretrained:
        hub.load_weights(model, name)
    return model
