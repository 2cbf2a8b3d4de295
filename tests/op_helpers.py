"""Helpers of the op tests: float64 references, adversarial data (from the package), non-contiguous views, and a
recorder of what torch allocates."""

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tokenizers_zoo.ops.adversarial import ADVERSARIAL_KINDS, adversarial_case  # noqa: F401 (re-exported for the tests)


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


def reference_search(x, codebook, k, metric):
    """Float64 brute force: the k nearest codes by (distance, index) (stable sort over ascending indices)."""
    values, indices = dense_distances(x, codebook, metric).sort(dim=1, stable=True)
    return indices[:, :k], values[:, :k]


def non_contiguous(tensor):
    """The same values through a strided view (every other row of a wider, column-major buffer)."""
    wide = torch.zeros(tensor.shape[1] + 3, 2 * tensor.shape[0], dtype=tensor.dtype).T
    wide[::2, 1 : tensor.shape[1] + 1] = tensor
    view = wide[::2, 1 : tensor.shape[1] + 1]
    assert not view.is_contiguous() and torch.equal(view, tensor)
    return view
