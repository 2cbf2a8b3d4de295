"""Lloyd's k-means on top of the nearest-codeword op (no N x K distance matrix)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..ops import nearest_codeword


def kmeans(
    vectors: torch.Tensor,
    num_clusters: int,
    iters: int = 10,
    metric: str = "l2",
    generator: torch.Generator | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Centroids ``[num_clusters, D]`` of ``vectors`` ``[M, D]`` (float32).

    Starts from randomly chosen vectors (with replacement when M < num_clusters); a cluster that loses
    all its members keeps its centroid. ``metric="cosine"`` runs spherical k-means (unit centroids).
    ``weights`` ``[M]`` (>= 0, e.g. usage counts) weights each vector in the means, and the starting vectors
    are drawn without replacement in proportion to them (those of weight 0 last); a cluster whose members
    all weigh 0 keeps its centroid.
    """
    vectors = vectors.detach().float()
    if metric == "cosine":
        vectors = F.normalize(vectors, dim=1)
    count = vectors.shape[0]
    if count == 0:
        raise ValueError("k-means needs at least one vector")
    if weights is None:
        start = _uniform_start(count, num_clusters, generator)
        weights = torch.ones(count, device=vectors.device)
    else:
        weights = _checked_weights(weights, count).to(vectors.device)
        start = _weighted_start(weights.cpu(), num_clusters, generator)
    centroids = vectors[start.to(vectors.device)].clone()
    for _ in range(iters):
        assignment = nearest_codeword(vectors, centroids, metric=metric).indices
        sums = torch.zeros_like(centroids).index_add_(0, assignment, vectors * weights[:, None])
        sizes = torch.zeros(num_clusters, device=vectors.device).index_add_(0, assignment, weights)
        filled = sizes > 0
        centroids[filled] = sums[filled] / sizes[filled, None]
        if metric == "cosine":
            centroids = F.normalize(centroids, dim=1)
    return centroids


def _uniform_start(count: int, num_clusters: int, generator: torch.Generator | None) -> torch.Tensor:
    if count >= num_clusters:
        return torch.randperm(count, generator=generator, device="cpu")[:num_clusters]
    return torch.randint(count, (num_clusters,), generator=generator, device="cpu")


def _weighted_start(weights: torch.Tensor, num_clusters: int, generator: torch.Generator | None) -> torch.Tensor:
    """Weighted sampling without replacement (Efraimidis-Spirakis: smallest ``Exp(1) / weight`` first)."""
    if weights.shape[0] < num_clusters:
        return torch.multinomial(weights, num_clusters, replacement=True, generator=generator)
    draws = torch.empty(weights.shape[0]).exponential_(generator=generator)
    keys = torch.where(weights > 0, draws / weights, torch.inf)
    return keys.argsort(stable=True)[:num_clusters]


def _checked_weights(weights: torch.Tensor, count: int) -> torch.Tensor:
    weights = weights.detach().float()
    if tuple(weights.shape) != (count,):
        raise ValueError(f"k-means weights must have shape ({count},), one per vector, got {tuple(weights.shape)}")
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()) or not bool(weights.sum() > 0):
        raise ValueError("k-means weights must be finite, >= 0 and not all 0")
    return weights
