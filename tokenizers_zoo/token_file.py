"""Token files: the indices of several items plus what is needed to decode them, as safetensors (no pickle).

One int tensor per item (``tokens.0000``, ...), stored in the smallest integer type that holds the codebook,
and a JSON header in the safetensors metadata: the model source and revision, modality, index layout,
codebook size, groups, input spec and, per item, its name and input shape.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

FORMAT = "tokenizers_zoo.tokens"
VERSION = 1


class TokenFileError(ValueError):
    """A token file that is not one, is corrupt, or does not fit the tokenizer it is decoded with."""


@dataclass
class TokenFile:
    """Indices of ``len(items)`` items (each in the modality's layout without the batch axis), int64."""

    model: str
    modality: str
    index_layout: str
    codebook_size: int
    num_groups: int
    input_spec: dict[str, Any]
    items: list[dict[str, Any]]
    tokens: list[torch.Tensor] = field(repr=False)
    revision: str | None = None

    def header(self) -> dict[str, Any]:
        values = asdict(self)
        values.pop("tokens")
        return values


def storage_dtype(codebook_size: int) -> torch.dtype:
    """Smallest integer dtype holding indices in ``[0, codebook_size)``."""
    for dtype, limit in ((torch.uint8, 2**8), (torch.uint16, 2**16), (torch.int32, 2**31)):
        if codebook_size <= limit:
            return dtype
    return torch.int64


def save_tokens(path: str | os.PathLike, tokens: TokenFile) -> None:
    """Write ``tokens`` to ``path`` (atomically: a temporary file is moved into place)."""
    if len(tokens.tokens) != len(tokens.items):
        raise ValueError(f"{len(tokens.tokens)} token tensors for {len(tokens.items)} items")
    dtype = storage_dtype(tokens.codebook_size)
    tensors = {f"tokens.{i:04d}": t.detach().cpu().to(dtype).contiguous() for i, t in enumerate(tokens.tokens)}
    metadata = {"format": FORMAT, "version": str(VERSION), "header": json.dumps(tokens.header(), sort_keys=True)}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=path.parent)
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata=metadata)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def load_tokens(path: str | os.PathLike) -> TokenFile:
    """Read and check a token file; indices come back as int64."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no token file {path}")
    try:
        with safe_open(path, framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError) as error:
        raise TokenFileError(f"{path} is not a readable safetensors file: {error}") from error
    if metadata.get("format") != FORMAT:
        raise TokenFileError(f"{path} is not a tokenizers_zoo token file (no '{FORMAT}' metadata)")
    if metadata.get("version") != str(VERSION):
        raise TokenFileError(f"{path} has token-file version {metadata.get('version')}; this reader knows {VERSION}")
    try:
        header = json.loads(metadata["header"])
        tokens = TokenFile(**header, tokens=[tensors[f"tokens.{i:04d}"].to(torch.int64) for i in range(len(header["items"]))])
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise TokenFileError(f"{path} has a damaged header or is missing token tensors: {error}") from error
    for item, indices in zip(tokens.items, tokens.tokens):
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= tokens.codebook_size):
            raise TokenFileError(f"{path}: tokens of {item.get('name')} fall outside [0, {tokens.codebook_size})")
    return tokens
