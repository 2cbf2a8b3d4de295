"""Quantizer registry: ``@register_quantizer("name")`` on a class, ``build_quantizer`` from a config entry."""

from __future__ import annotations

from ..config import ConfigError, check_options
from ..interfaces import Quantizer
from ..plugins import Registry
from .grouped import GROUP_LOSS_REDUCTIONS, GroupedQuantizer

QUANTIZERS: Registry[Quantizer] = Registry("quantizer")
register_quantizer = QUANTIZERS.register


def build_quantizer(spec: dict, dim: int) -> Quantizer:
    """The quantizer a config entry describes, for latents with ``dim`` features.

    ``spec["type"]`` names a registered class; its other keys are the class's keyword options, checked by
    name and type. Three keys split the features into groups: ``"groups": G`` quantizes G contiguous
    slices of ``dim / G`` features, with one codebook each or, with ``"shared_codebook": true``, one
    codebook for all; ``"group_loss": "sum" | "mean"`` combines the groups' losses. A class may change the
    last two's defaults (``False``, ``"sum"``) with a ``group_defaults`` dict.
    """
    cls, options = QUANTIZERS.split(spec)
    defaults = getattr(cls, "group_defaults", {})
    groups = options.pop("groups", 1)
    shared = options.pop("shared_codebook", defaults.get("shared_codebook", False))
    reduction = options.pop("group_loss", defaults.get("group_loss", "sum"))
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
        raise ConfigError(f"quantizer 'groups' must be a positive integer, got {groups!r}")
    if dim % groups:
        raise ConfigError(f"{dim} latent features cannot be split into {groups} equal groups")
    if not isinstance(shared, bool) or reduction not in GROUP_LOSS_REDUCTIONS:
        raise ConfigError(f"'shared_codebook' must be true/false and 'group_loss' one of {GROUP_LOSS_REDUCTIONS}")
    options = check_options(cls, options, skip=("dim",))
    if groups == 1:
        return cls(dim, **options)
    return GroupedQuantizer(lambda: cls(dim // groups, **options), groups, shared=shared, loss_reduction=reduction)
