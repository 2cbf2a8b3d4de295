"""Turning datasets into batches: seeded, resumable, sharded by rank; and batches into model arguments."""

from __future__ import annotations

from typing import Any, Iterator

import torch

from .. import distributed


def training_batches(dataset: torch.utils.data.Dataset, batch_size: int, seed: int, start_step: int, num_workers: int) -> Iterator[Any]:
    """Batches from step ``start_step`` on: epoch e is a seeded permutation, sharded by rank (drop-last), so a
    resumed run sees exactly the batches an uninterrupted one would. Uses ``dataset.collate`` when defined."""
    rank, world = distributed.rank(), distributed.world_size()
    per_rank = len(dataset) // world
    per_epoch = per_rank // batch_size
    if per_epoch == 0:
        raise ValueError(f"{len(dataset)} items are fewer than one batch of {batch_size} per process")
    epoch, skip = divmod(start_step, per_epoch)
    while True:
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed * 100003 + epoch))
        shard = order[rank : per_rank * world : world].tolist()
        batches = [shard[i : i + batch_size] for i in range(0, per_epoch * batch_size, batch_size)]
        loader = torch.utils.data.DataLoader(  # own generator: creating the loader must not draw from the global RNG
            dataset, batch_sampler=batches[skip:], num_workers=num_workers, collate_fn=getattr(dataset, "collate", None),
            generator=torch.Generator(),
        )
        yield from loader
        epoch, skip = epoch + 1, 0


def evaluation_loader(dataset: torch.utils.data.Dataset, batch_size: int) -> torch.utils.data.DataLoader:
    """Every item once, in order."""
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=getattr(dataset, "collate", None))


def split_batch(batch: Any, device: torch.device) -> tuple[torch.Tensor, dict[str, Any]]:
    """A batch -> (signal, keyword arguments): dicts carry the signal under ``"x"`` and the rest as keywords."""
    if isinstance(batch, dict):
        batch = {key: value.to(device) if isinstance(value, torch.Tensor) else value for key, value in batch.items()}
        return batch.pop("x"), batch
    return batch.to(device), {}
