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
) -> torch.Tensor:
    """Centroids ``[num_clusters, D]`` of ``vectors`` ``[M, D]`` (float32).

    Starts from randomly chosen vectors (with replacement when M < num_clusters); a cluster that loses
    all its members keeps its centroid. ``metric="cosine"`` runs spherical k-means (unit centroids).
    """
    vectors = vectors.detach().float()
    if metric == "cosine":
        vectors = F.normalize(vectors, dim=1)
    count = vectors.shape[0]
    if count == 0:
        raise ValueError("k-means needs at least one vector")
    if count >= num_clusters:
        start = torch.randperm(count, generator=generator, device="cpu")[:num_clusters]
    else:
        start = torch.randint(count, (num_clusters,), generator=generator, device="cpu")
    centroids = vectors[start.to(vectors.device)].clone()
    for _ in range(iters):
        assignment = nearest_codeword(vectors, centroids, metric=metric).indices
        sums = torch.zeros_like(centroids).index_add_(0, assignment, vectors)
        sizes = torch.bincount(assignment, minlength=num_clusters)
        filled = sizes > 0
        centroids[filled] = sums[filled] / sizes[filled, None].to(sums.dtype)
        if metric == "cosine":
            centroids = F.normalize(centroids, dim=1)
    return centroids
