"""Codebook statistics from a histogram of code counts."""

from __future__ import annotations

import torch

from ..outputs import CodebookStats


def stats_from_counts(counts: torch.Tensor, dead_codes: torch.Tensor) -> CodebookStats:
    """Usage and perplexity of a batch from its code histogram ``counts`` ``[K]`` (float)."""
    total = counts.sum()
    probs = counts / total.clamp_min(1)
    entropy = -(probs * probs.clamp_min(1e-30).log()).sum()
    usage = (counts > 0).float().mean()
    return CodebookStats(usage=usage, perplexity=entropy.exp(), dead_codes=dead_codes)


def stack_stats(stats: list[CodebookStats]) -> CodebookStats:
    """Per-group statistics ``[G]`` from one :class:`CodebookStats` per group."""
    return CodebookStats(*(torch.stack(values) for values in zip(*(s.to_tuple() for s in stats))))
