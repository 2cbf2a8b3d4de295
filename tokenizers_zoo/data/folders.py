"""Finding signal files under a folder."""

from __future__ import annotations

import os
from pathlib import Path


def list_files(folder: str | os.PathLike, suffixes: tuple[str, ...], what: str) -> list[Path]:
    """Files under ``folder`` (recursive) whose suffix is one of ``suffixes``, sorted; an error when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
    if not files:
        raise FileNotFoundError(f"no {what} ({', '.join(suffixes)}) under {folder}")
    return files
