"""Token files: the indices of several items plus what is needed to decode them, as safetensors (no pickle).

One int tensor per item (``tokens.0000``, ...), stored in the smallest integer type that holds the codebook,
and a JSON header in the safetensors metadata: the model name and the revision of its weights, the
fingerprint of its codebook (so tokens are never decoded with codes they were not made with), modality,
index layout, codebook size, groups, input spec and, per item, its name and input shape. The header only
describes: what gets loaded to decode is the user's choice (see ``tokenizers-zoo decode``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .atomic import atomic_write

FORMAT = "tokenizers_zoo.tokens"
VERSION = 2
READABLE_VERSIONS = ("1", "2")  # version 1 had no codebook fingerprint


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
    codebook_fingerprint: str | None = None

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
    atomic_write(path, lambda temporary: save_file(tensors, temporary, metadata=metadata))


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
    if metadata.get("version") not in READABLE_VERSIONS:
        raise TokenFileError(f"{path} has token-file version {metadata.get('version')}; this reader knows {list(READABLE_VERSIONS)}")
    try:
        header = json.loads(metadata["header"])
        tokens = TokenFile(**header, tokens=[tensors.pop(f"tokens.{i:04d}").to(torch.int64) for i in range(len(header["items"]))])
    except (KeyError, TypeError, json.JSONDecodeError) as error:
        raise TokenFileError(f"{path} has a damaged header or is missing token tensors: {error}") from error
    if tensors:
        raise TokenFileError(f"{path} holds {len(tensors)} tensors its header does not list")
    _check_items(tokens, path)
    return tokens


def _check_items(tokens: TokenFile, path: Path) -> None:
    for item, indices in zip(tokens.items, tokens.tokens):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise TokenFileError(f"{path}: every item needs a 'name' string, got {item!r}"[:300])
        name = PurePosixPath(item["name"])
        if not item["name"] or name.is_absolute() or ".." in name.parts or "\\" in item["name"]:
            raise TokenFileError(f"{path}: item name {item['name']!r} is not a relative path inside the output folder")
        if indices.numel() == 0:
            raise TokenFileError(f"{path}: the tokens of {item['name']} are empty (shape {list(indices.shape)})")
        if int(indices.min()) < 0 or int(indices.max()) >= tokens.codebook_size:
            raise TokenFileError(f"{path}: tokens of {item['name']} fall outside [0, {tokens.codebook_size})")
