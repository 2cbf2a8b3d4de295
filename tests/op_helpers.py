"""Helpers of the op tests: float64 reference distances, and a recorder of what torch allocates."""

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor created while the mode is active."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(tensor, torch.Tensor):
                self.largest = max(self.largest, tensor.numel())
        return out


def dense_distances(x, codebook, metric):
    """``[N, K]`` float64 distances by explicit pairwise differences / products (no cdist, no centring)."""
    x, codebook = x.double(), codebook.double()
    if metric == "l2":
        return (x[:, None, :] - codebook[None]).square().sum(-1)
    dot = (x[:, None, :] * codebook[None]).sum(-1)
    return 1 - dot / (x.norm(dim=1).clamp_min(1e-12)[:, None] * codebook.norm(dim=1).clamp_min(1e-12)[None])
