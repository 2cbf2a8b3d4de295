"""The keyword arguments a model takes besides its signal, declared per call and checked on every call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

STAGES = ("encode", "decode", "train")


@dataclass(frozen=True)
class Keywords:
    """Names accepted by ``encode``, ``decode`` and the training ``forward``.

    Modality bases declare theirs (audio ``lengths``, graphs ``edge_index``); a family adds its own with
    ``|`` (e.g. ``noise`` for a generative decoder, ``bandwidth_id``, labels and masks for training).
    """

    encode: tuple[str, ...] = ()
    decode: tuple[str, ...] = ()
    train: tuple[str, ...] = ()

    def __or__(self, other: "Keywords") -> "Keywords":
        return Keywords(*(tuple(dict.fromkeys(getattr(self, s) + getattr(other, s))) for s in STAGES))

    def check(self, stage: str, given: Iterable[str], caller: str) -> None:
        """Raise ``TypeError`` naming every keyword ``caller`` does not take (misspelt or meant for another call)."""
        accepted = getattr(self, stage)
        unknown = [name for name in given if name not in accepted]
        if unknown:
            takes = ", ".join(accepted) if accepted else "no keyword arguments"
            elsewhere = [f"{name!r} belongs to {', '.join(s for s in STAGES if name in getattr(self, s))}" for name in unknown
                         if any(name in getattr(self, s) for s in STAGES)]
            hint = f" ({'; '.join(elsewhere)})" if elsewhere else ""
            raise TypeError(f"{caller}() got unexpected keyword argument(s) {unknown}{hint}; it takes: {takes}")
