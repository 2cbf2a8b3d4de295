"""Frozen code tables the VQGAN-LC way, and folding a projected table into a plain codebook.

VQGAN-LC (``codebook_generation/``) runs CLIP ViT-L/14 on 224 px images, keeps the 16x16 grid of 768-d patch
tokens, average-pools it 4x4 and clusters the pooled vectors with k-means, 100 centroids per ImageNet class.
:func:`build_codebook` does the same with any timm model (``per_class=True`` for one k-means per sub-folder);
``vit_large_patch14_clip_quickgelu_224.openai`` with ``project=True`` gives the official 768-d features.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..converters.checkpoint import load_official_checkpoint
from ..data.images import ImageFolder, list_images
from ..hub import load_state_dict_checked
from ..quantizers import ProjectedQuantizer, kmeans

log = logging.getLogger(__name__)

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
VQ_OPTIONS = ("codebook_size", "groups", "shared_codebook", "group_loss", "decay", "sync")


def load_encoder(name: str, weights: str | os.PathLike | None = None, trust_pickle: bool = False) -> nn.Module:
    """The timm model ``name`` in eval mode, built with ``pretrained=False`` (nothing is downloaded); its weights
    come only from ``weights`` (a timm state dict: safetensors or ``.pth``; one that needs full unpickling only
    with ``trust_pickle=True``), else stay random."""
    try:
        import timm
    except ImportError as error:
        raise ImportError("a feature encoder needs timm: pip install 'tokenizers-zoo[vision]'") from error
    try:
        encoder = timm.create_model(name, pretrained=False)
    except RuntimeError as error:
        raise ValueError(f"{name!r} is not a timm model name ({error})") from error
    if weights is None:
        log.warning("no weights for the encoder %s: its features are random (pass --encoder-weights)", name)
    else:
        state = load_official_checkpoint(weights, trust_pickle)
        state = next((state[key] for key in ("state_dict", "model") if isinstance(state.get(key), dict)), state)
        load_state_dict_checked(encoder, state, str(weights))
    return encoder.eval()


def patch_features(
    images: torch.Tensor | Sequence[torch.Tensor], encoder: nn.Module, pool: int = 4, batch_size: int = 64, project: bool = False
) -> torch.Tensor:
    """Patch tokens of ``encoder`` average-pooled in ``pool`` x ``pool`` cells: ``[M, D]`` float32 on the CPU.

    ``images``: ``[B, 3, H, W]`` or a dataset of ``[3, H, W]``, in [-1, 1]; they are normalised with the encoder's
    ``pretrained_cfg`` mean and std. A ViT's tokens are ``forward_features`` without its prefix (class, register)
    tokens, laid out on the patch grid; a CNN's are its last feature map. ``project=True`` first maps each ViT token
    through the model's ``head`` (timm's CLIP ViTs keep CLIP's image projection there). Rows: image by image, cells
    in raster order. The encoder runs in eval mode without gradients.
    """
    if pool < 1 or batch_size < 1:
        raise ValueError(f"pool and batch_size must be positive, got {pool} and {batch_size}")
    config = getattr(encoder, "pretrained_cfg", None) or {}
    device = next(encoder.parameters()).device
    mean = torch.tensor(config.get("mean", IMAGENET_MEAN), device=device).view(1, 3, 1, 1)
    std = torch.tensor(config.get("std", IMAGENET_STD), device=device).view(1, 3, 1, 1)
    training, rows = encoder.training, []
    encoder.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                batch = torch.stack([images[i] for i in range(start, min(start + batch_size, len(images)))]).to(device)
                grid = _token_grid(encoder, ((batch + 1) / 2 - mean) / std, project).float()
                if grid.shape[-2] % pool or grid.shape[-1] % pool:
                    raise ValueError(f"the {grid.shape[-2]}x{grid.shape[-1]} token grid does not split into {pool}x{pool} cells")
                pooled = F.avg_pool2d(grid, pool)
                rows.append(pooled.flatten(2).transpose(1, 2).reshape(-1, pooled.shape[1]).cpu())
    finally:
        encoder.train(training)
    return torch.cat(rows)


def _token_grid(encoder: nn.Module, x: torch.Tensor, project: bool) -> torch.Tensor:
    """``[B, D, h, w]`` tokens of a timm model."""
    try:
        tokens = encoder.forward_features(x)
    except AssertionError as error:  # timm checks input sizes with assertions
        raise ValueError(f"{type(encoder).__name__} cannot take {x.shape[-2]}x{x.shape[-1]} images: {error}") from error
    if tokens.ndim == 4:
        if project:
            raise ValueError(f"project=True maps ViT tokens through the head; {type(encoder).__name__} gives a feature map")
        return tokens.permute(0, 3, 1, 2) if getattr(encoder, "output_fmt", "NCHW") == "NHWC" else tokens
    if tokens.ndim != 3:
        raise ValueError(f"{type(encoder).__name__}.forward_features gave shape {tuple(tokens.shape)}, not tokens or a feature map")
    tokens = tokens[:, getattr(encoder, "num_prefix_tokens", 0):]
    if project:
        tokens = encoder.head(tokens)
    patch = encoder.patch_embed.patch_size
    height, width = x.shape[-2] // patch[0], x.shape[-1] // patch[1]
    if height * width != tokens.shape[1]:
        raise ValueError(f"{tokens.shape[1]} patch tokens do not fill the {height}x{width} grid of a {x.shape[-2]}x{x.shape[-1]} image")
    return tokens.transpose(1, 2).reshape(x.shape[0], -1, height, width)


def build_codebook(
    folder: str | os.PathLike,
    encoder: nn.Module,
    num_codes: int,
    *,
    size: int | None = None,
    pool: int = 4,
    batch_size: int = 64,
    iters: int = 10,
    seed: int = 0,
    project: bool = False,
    per_class: bool = False,
    feature_dim: int | None = None,
) -> torch.Tensor:
    """k-means centroids ``[num_codes, D]`` of the pooled patch features (:func:`patch_features`) of the images
    under ``folder``, resized and centre-cropped to ``size`` when given (needed when their sizes differ).

    ``per_class=True`` clusters each sub-folder on its own into ``num_codes / classes`` centroids, concatenated in
    sorted order (VQGAN-LC: 100 per ImageNet class); it also bounds memory to one class's features. k-means runs
    ``iters`` Lloyd steps through the nearest-codeword op, seeded by ``seed``. ``feature_dim`` refuses, after one
    image, an encoder whose features have another width (before the long extraction).
    """
    files = list_images(folder)
    groups = _classes(Path(folder), files) if per_class else [files]
    if num_codes < 1 or num_codes % len(groups):
        raise ValueError(f"{num_codes} codes cannot be split evenly over {len(groups)} class folder(s)")
    if feature_dim is not None:
        width = patch_features(ImageFolder(files[:1], size=size), encoder, 1, 1, project).shape[1]
        if width != feature_dim:
            raise ValueError(f"the encoder's features have {width} dims but the table has {feature_dim}: pick an encoder (or --project) to match")
    generator = torch.Generator().manual_seed(seed)
    centroids = []
    for group in groups:
        features = patch_features(ImageFolder(group, size=size), encoder, pool, batch_size, project)
        centroids.append(kmeans(features, num_codes // len(groups), iters, generator=generator))
    return torch.cat(centroids)


def _classes(folder: Path, files: list[Path]) -> list[list[Path]]:
    """The image files grouped by their sub-folder of ``folder``, in sorted order."""
    classes: dict[str, list[Path]] = defaultdict(list)
    for path in files:
        parts = path.relative_to(folder).parts
        if len(parts) < 2:
            raise ValueError(f"per-class k-means needs one sub-folder per class, but {path} lies directly in {folder}")
        classes[parts[0]].append(path)
    return [classes[name] for name in sorted(classes)]


def projected_table(model: nn.Module) -> torch.Tensor:
    """The frozen ``[K, table_dim]`` table of ``model``'s projected (LC) quantizer."""
    if not isinstance(model.quantizer, ProjectedQuantizer):
        raise ValueError(f"the model's quantizer is a {type(model.quantizer).__name__}, not one projected table (type 'lc' or 'projected')")
    return model.quantizer.codebook


def fill_table(model: nn.Module, codebook: torch.Tensor) -> None:
    """Write ``codebook`` ``[K, table_dim]`` into the frozen table of ``model``'s projected quantizer."""
    table = projected_table(model)
    if codebook.shape != table.shape:
        raise ValueError(f"the codebook is {list(codebook.shape)} but the model's table is {list(table.shape)} (codes x features)")
    with torch.no_grad():
        table.copy_(codebook)


def fold_projected(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose projected quantizer(s) become plain ``vq`` ones holding the projected codes
    ``projection(table)``: ``[K, dim]`` instead of the table and the projection (VQGAN-LC: 3.2 MB instead of 307 MB).

    Same indices and decodes. Groups are kept; the loss weights carry over, and the folded codebook is a
    trainable parameter. Token files record the codebook's fingerprint, which folding changes.
    """
    projected = {name: module for name, module in model.named_modules() if isinstance(module, ProjectedQuantizer)}
    if not projected:
        raise ValueError(f"the model's quantizer is a {type(model.quantizer).__name__}: there is no projected table to fold")
    first = next(iter(projected.values()))
    spec = {key: value for key, value in model.config.quantizer.items() if key in VQ_OPTIONS}
    spec.update(type="vq", metric=first.metric, beta=first.beta, codebook_weight=first.codebook_weight)
    folded = type(model)(model.config.replace(quantizer=spec))
    state = dict(model.state_dict())
    for name, quantizer in projected.items():
        state = {key: value for key, value in state.items() if not key.startswith(f"{name}.projection.")}
        with torch.no_grad():
            state[f"{name}.codebook"] = quantizer.project(quantizer.codebook.float())
    load_state_dict_checked(folded, {key: value.cpu() for key, value in state.items()}, "the folded model")
    folded.model_name, folded.revision = model.model_name, model.revision
    return folded.to(model.device).train(model.training)
