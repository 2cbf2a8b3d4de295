"""Data that defeats fixed-depth reduced-precision nearest-code searches: the self-check's and the tests' inputs."""

from __future__ import annotations

import torch

ADVERSARIAL_KINDS = (
    "near_codes", "random", "offset", "dense_low_dim", "low_rank", "duplicates", "ties", "tiny", "huge"
)


def adversarial_case(
    kind: str, n: int, k_codes: int, dim: int, generator: torch.Generator, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``[n, D]`` and codes ``[K, D]`` of one data kind that defeats fixed-depth bf16 searches.

    near_codes: rows within 1e-2 of a code. random: independent N(0, 1). offset: N(0, 1) + 50 for codes and rows
    (the cosine killer). dense_low_dim: uniform codes in [0, 1]^D, meant for D = 1..3 and large K. low_rank: codes
    and rows in a rank-3 subspace. duplicates: every code twice (plus a triple), rows exactly on codes. ties: all
    codes equal except a few, rows on codes (every row ambiguous). tiny / huge: near_codes at scale 1e-3 / 1e3.
    """

    def randn(*shape):
        return torch.randn(*shape, generator=generator)

    def near(codes, noise):
        return codes[torch.randint(len(codes), (n,), generator=generator)] + noise * randn(n, codes.shape[1])

    if kind == "near_codes":
        codebook = randn(k_codes, dim)
        x = near(codebook, 1e-2)
    elif kind == "random":
        x, codebook = randn(n, dim), randn(k_codes, dim)
    elif kind == "offset":
        x, codebook = randn(n, dim) + 50, randn(k_codes, dim) + 50
    elif kind == "dense_low_dim":
        codebook = torch.rand(k_codes, dim, generator=generator)
        x = torch.rand(n, dim, generator=generator)
    elif kind == "low_rank":
        basis = randn(min(3, dim), dim)
        codebook = randn(k_codes, len(basis)) @ basis
        x = near(codebook, 0.0) + 0.1 * randn(n, len(basis)) @ basis
    elif kind == "duplicates":
        half = randn((k_codes + 1) // 2, dim)
        codebook = torch.cat([half, half])[:k_codes]
        codebook[0] = codebook[-1]
        x = near(codebook, 0.0)
    elif kind == "ties":
        codebook = randn(1, dim).expand(k_codes, dim).clone()
        codebook[:: max(1, k_codes // 3)] += randn(len(codebook[:: max(1, k_codes // 3)]), dim)
        x = near(codebook, 0.0)
    elif kind in ("tiny", "huge"):
        scale = 1e-3 if kind == "tiny" else 1e3
        codebook = scale * randn(k_codes, dim)
        x = near(codebook, 1e-2 * scale)
    else:
        raise ValueError(f"unknown data kind {kind!r}")
    return x.to(dtype), codebook.to(dtype)
