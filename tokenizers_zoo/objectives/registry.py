"""Objective registry: ``@register_objective("name")``, and ``build_objective`` from a recipe entry."""

from __future__ import annotations

from ..plugins import Registry
from .base import Objective

OBJECTIVES: Registry[Objective] = Registry("objective")
register_objective = OBJECTIVES.register
register_objective("reconstruction")(Objective)


def build_objective(spec: dict | None) -> Objective:
    """The objective a recipe's ``objective`` entry describes (default: the model's own losses)."""
    return OBJECTIVES.build(spec or {"type": "reconstruction"})
