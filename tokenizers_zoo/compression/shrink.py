"""k-means codebook shrinking for a variable bitrate (Mao et al., "Extreme Image Compression Using Fine-tuned
VQGANs", arXiv 2307.08265): cluster a trained codebook into fewer codes, so each token costs fewer bits.

The clustered codes are the *effective* ones the lookup searches (``get_codebook()``: ``projection(table)`` for
SimVQ and VQGAN-LC, the same table :func:`~tokenizers_zoo.training.codebook.fold_projected` stores; unit rows,
clustered by spherical k-means, for the cosine metric). The shrunk model is a copy whose quantizer is a plain
``vq`` table of the centroids, one per group for grouped quantizers, each group with its own size if asked.

Tokens made by the original model translate with the index map: ``new = index_map[old]`` (``[K_old]``), or per
group ``new[:, g] = index_map[g][old[:, g]]`` (``[G, K_old]``; see :func:`remap_indices`). The shrunk model's own
encoder re-assigns each latent to its nearest centroid, which is not always ``index_map[old]``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from ..atomic import atomic_folder
from ..config import read_json
from ..hub import CARD_NAME, CONFIG_NAME, WEIGHTS_NAME, load_state_dict_checked, save_pretrained
from ..metrics import CodebookUsage
from ..ops import nearest_codeword
from ..quantizers import GroupedQuantizer, VectorQuantizer, kmeans

INDEX_MAP_NAME = "index_map.json"
WEIGHTINGS = ("usage", "uniform")
CARRIED_OPTIONS = ("metric", "beta", "codebook_weight", "entropy_weight", "entropy_temperature")
"""Options of the original codebook that the shrunk plain table keeps (how codes are searched, the loss weights)."""


def shrink_codebook(
    model: nn.Module,
    codebook_size: int | Sequence[int],
    *,
    weighting: str | None = None,
    data: torch.Tensor | Iterable[torch.Tensor] | None = None,
    iters: int = 20,
    seed: int = 0,
) -> tuple[nn.Module, torch.Tensor]:
    """A copy of ``model`` with its codebook clustered into ``codebook_size`` codes, and the old -> new index map.

    Args:
        codebook_size: the new size, or one per codebook (per group for grouped quantizers with a codebook
            each); a group may keep its size (its codes stay as they are) as long as one shrinks.
        weighting: ``"usage"``: each code counts in the k-means as often as the model chooses it on ``data``
            (unused codes do not pull the centroids, but still map to the nearest one); ``"uniform"``: every
            code counts once. Default: ``"usage"`` when ``data`` is given, else ``"uniform"``.
        data: signals the model encodes to count the usage: a batch ``[B, ...]`` or an iterable of batches.
        iters, seed: Lloyd iterations and the seed of the k-means start.

    Returns ``(shrunk, index_map)``: ``index_map`` is int64 ``[K_old]`` for one codebook, ``[G, K_old]`` for one
    per group (rows padded with -1 where groups had fewer codes). Refused: sizes below 1 or above the current
    ones, nothing to shrink, and quantizers without a stored codebook (lookup-free ones).
    """
    tables = codebook_tables(model.quantizer)
    sizes = _new_sizes(codebook_size, [table.codebook_size for table in tables])
    weighting = resolve_weighting(weighting, data)
    weights = usage_counts(model, data) if weighting == "usage" else [None] * len(tables)
    generator = torch.Generator().manual_seed(seed)
    centroids, maps = [], []
    with torch.no_grad():
        for table, size, counts in zip(tables, sizes, weights):
            codes = table.get_codebook()
            if size == table.codebook_size:
                centroids.append(codes)
                maps.append(torch.arange(size, device=codes.device))
                continue
            centroids.append(kmeans(codes, size, iters, table.metric, generator, counts))
            maps.append(nearest_codeword(codes, centroids[-1], metric=table.metric).indices)
    shrunk = _rebuild(model, tables, centroids)
    index_map = torch.nn.utils.rnn.pad_sequence([m.cpu() for m in maps], batch_first=True, padding_value=-1)
    return shrunk, (index_map[0] if len(maps) == 1 else index_map)


def codebook_tables(quantizer: nn.Module) -> list[VectorQuantizer]:
    """The quantizers that hold the codebooks: the quantizer itself, or one per group (one for a shared codebook)."""
    members = list(quantizer.quantizers) if isinstance(quantizer, GroupedQuantizer) else [quantizer]
    if not all(isinstance(member, VectorQuantizer) for member in members):
        kinds = sorted({type(member).__name__ for member in members})
        raise ValueError(
            f"the model's quantizer ({', '.join(kinds)}) has no stored codebook to cluster (lookup-free quantization derives "
            "its codes from signs): shrinking needs a codebook quantizer (vq, projected, lc, or groups of them)"
        )
    return members


@torch.no_grad()
def usage_counts(model: nn.Module, data: torch.Tensor | Iterable[torch.Tensor], batch_size: int = 64) -> list[torch.Tensor]:
    """How often ``model`` chooses each code on ``data`` (a batch or an iterable of batches): one ``[K]``
    float32 histogram per codebook table, the groups that share a table pooled."""
    tables = codebook_tables(model.quantizer)
    usage = CodebookUsage(model.quantizer.codebook_size, model.quantizer.num_groups)
    batches = data.split(batch_size) if isinstance(data, torch.Tensor) else data
    for batch in batches:
        usage.update(model.encode(batch.to(model.device)).indices)
    if usage.counts.sum() == 0:
        raise ValueError("the data gave no tokens to count the codes' usage on")
    rows = usage.counts.sum(0, keepdim=True) if len(tables) == 1 else usage.counts
    return [row[: table.codebook_size].float() for row, table in zip(rows, tables)]


def remap_indices(indices: torch.Tensor, index_map: torch.Tensor) -> torch.Tensor:
    """Indices of the original model -> those of the shrunk one: ``index_map[indices]`` for one map ``[K_old]``;
    with maps per group ``[G, K_old]``, group g (dim 1 of the indices) goes through map g."""
    index_map = index_map.to(indices.device)
    if index_map.ndim == 1:
        return index_map[indices]
    if indices.ndim < 2 or indices.shape[1] != index_map.shape[0]:
        raise ValueError(f"{index_map.shape[0]} per-group maps need indices with that many groups on dim 1, got {tuple(indices.shape)}")
    groups = torch.arange(index_map.shape[0], device=indices.device).view(1, -1, *[1] * (indices.ndim - 2))
    return index_map[groups, indices]


def save_shrunk(model: nn.Module, index_map: torch.Tensor, directory: str | os.PathLike, **provenance: Any) -> Path:
    """Write the folder ``directory`` as a whole: what ``save_pretrained`` writes plus ``index_map.json``
    (``{"index_map": [...], "codebook_sizes": [...], **provenance}``: one list ``[K_old]`` or one per group).

    An existing folder must hold only such files: anything else would be lost when the folder is replaced.
    """
    directory = Path(directory)
    ours = (CONFIG_NAME, WEIGHTS_NAME, CARD_NAME, INDEX_MAP_NAME)
    foreign = sorted(p.name for p in directory.iterdir() if p.name not in ours) if directory.is_dir() else []
    if foreign:
        raise FileExistsError(f"{directory} holds files that are not part of a shrunk model ({', '.join(foreign[:5])}): choose a new folder")
    sizes = [table.codebook_size for table in codebook_tables(model.quantizer)]
    with atomic_folder(directory) as staging:
        save_pretrained(model, staging)
        record = {"index_map": index_map.tolist(), "codebook_sizes": sizes, **provenance}
        (staging / INDEX_MAP_NAME).write_text(json.dumps(record) + "\n", encoding="utf-8")
    return directory


def read_index_map(directory: str | os.PathLike) -> torch.Tensor:
    """The index map :func:`save_shrunk` wrote into ``directory``."""
    return torch.tensor(read_json(Path(directory) / INDEX_MAP_NAME)["index_map"], dtype=torch.int64)


def _new_sizes(requested: int | Sequence[int], current: list[int]) -> list[int]:
    sizes = [requested] * len(current) if isinstance(requested, int) else list(requested)
    if len(sizes) != len(current):
        raise ValueError(f"{len(sizes)} codebook sizes given for the model's {len(current)} codebook(s) of {current} codes")
    for table, (size, before) in enumerate(zip(sizes, current)):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"a codebook size must be a positive integer, got {size!r}")
        if size > before:
            raise ValueError(f"codebook {table} has {before} codes: it cannot grow to {size} by shrinking")
    if sizes == current:
        raise ValueError(f"the codebook(s) already have {current} codes: give a smaller size to shrink to")
    return sizes


def resolve_weighting(weighting: str | None, data: Any) -> str:
    """The weighting :func:`shrink_codebook` uses: ``weighting``, checked, or the default for ``data``."""
    weighting = weighting or ("usage" if data is not None else "uniform")
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if weighting == "usage" and data is None:
        raise ValueError("usage weighting counts the codes the model chooses on data: pass data, or weighting='uniform'")
    return weighting


def _plain_spec(table: VectorQuantizer, size: int) -> dict[str, Any]:
    """A gradient-trained ``vq`` table of ``size`` codes with ``table``'s metric and loss weights."""
    return {"type": "vq", "codebook_size": size, **{name: getattr(table, name) for name in CARRIED_OPTIONS}}


def _shrunk_spec(quantizer: nn.Module, tables: list[VectorQuantizer], sizes: list[int]) -> dict[str, Any]:
    if quantizer.num_groups == 1:
        return _plain_spec(tables[0], sizes[0])
    grouping = {"groups": quantizer.num_groups, "group_loss": quantizer.loss_reduction}
    if len(tables) == 1:
        return {**_plain_spec(tables[0], sizes[0]), **grouping, "shared_codebook": True}
    if len(set(sizes)) == 1:
        return {**_plain_spec(tables[0], sizes[0]), **grouping}
    return {"type": "per_group", "quantizers": [_plain_spec(t, s) for t, s in zip(tables, sizes)], "group_loss": quantizer.loss_reduction}


def _rebuild(model: nn.Module, tables: list[VectorQuantizer], centroids: list[torch.Tensor]) -> nn.Module:
    """``model`` with its quantizer rebuilt from the shrunk spec and holding ``centroids``; every other weight kept."""
    spec = _shrunk_spec(model.quantizer, tables, [codes.shape[0] for codes in centroids])
    shrunk = type(model)(model.config.replace(quantizer=spec)).to(dtype=model.dtype)
    new_tables = codebook_tables(shrunk.quantizer)
    if [tuple(t.codebook.shape) for t in new_tables] != [tuple(c.shape) for c in centroids]:
        raise ValueError(f"{type(model).__name__} does not build its quantizer from config.quantizer: its codebook cannot be replaced")
    with torch.no_grad():
        for table, codes in zip(new_tables, centroids):
            table.codebook.copy_(codes)
    prefix = next(name for name, module in model.named_modules() if module is model.quantizer)
    state = {key: value for key, value in model.state_dict().items() if not key.startswith(f"{prefix}.")}
    state.update({f"{prefix}.{key}": value for key, value in shrunk.quantizer.state_dict().items()})
    load_state_dict_checked(shrunk, {key: value.cpu() for key, value in state.items()}, "the shrunk model")
    return shrunk.to(model.device).train(model.training)
