"""Writing files and folders so that no reader ever sees them half-written.

Everything the package writes (model folders, trainer checkpoints, token files, images, audio) goes through
these two helpers: the content is written beside its destination under a hidden temporary name, then
renamed into place. A failure or a kill leaves the old content intact, and no temporary is left behind
after an error.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary)`` on a sibling of ``path``, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.tmp-", suffix=path.suffix, dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; give it a new file's usual mode
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return path


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder beside ``path``; when the block succeeds it replaces ``path`` as a whole.

    An existing folder at ``path`` is swapped out in one step where the system allows it (Linux
    ``renameat2(RENAME_EXCHANGE)``), otherwise by two renames; either way a reader finds the old folder
    or the new one, never a mix. On error the staging folder is removed and ``path`` is untouched.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        yield staging
        _usual_modes(staging)
        _swap_in(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _usual_modes(folder: Path) -> None:
    """Give ``folder`` and what it holds the modes a plain mkdir / write would (mkdtemp makes the folder
    private, and some writers, safetensors among them, create their files private)."""
    mask = _umask()
    for root, folders, files in os.walk(folder):
        os.chmod(root, 0o777 & ~mask)
        for name in files:
            os.chmod(os.path.join(root, name), 0o666 & ~mask)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _swap_in(staging: Path, target: Path) -> None:
    """Put ``staging`` at ``target``; the previous ``target`` (if any) ends up at ``staging``, to be removed."""
    if not target.exists():
        os.rename(staging, target)
        return
    if _exchange(staging, target):
        return
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.rename(target, retired / "content")
    os.rename(staging, target)
    os.rename(retired, staging)  # removed by the caller with the rest of the staging folder


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically with ``renameat2(RENAME_EXCHANGE)``; False where that is unavailable."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))
