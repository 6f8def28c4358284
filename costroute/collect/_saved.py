"""Saved image files that a store records, checked before a run reads any: :class:`SavedImages`.

A store records the path of every saved PNG, and a later run opens those files to score them
with a new scorer. A path is only opened when, resolved (symbolic links included), it lies
inside the run's ``save_images`` folder: a store edited by hand or shared by someone else
cannot make costroute open ``/etc/passwd`` or any other file with an image parser. Paths
outside the folder are reported and skipped; files that are gone are reported, with the flag
that makes them again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = ["SavedImages"]

_SHOWN = 5


def _shown(items: list[str]) -> str:
    more = f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


@dataclass
class SavedImages:
    """Where a run may read saved images, and what it found wrong with the stored paths.

    Parameters
    ----------
    folder : str or None
        The run's ``save_images`` folder (``None``: no stored file is opened).
    """

    folder: str | None
    outside: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    gone_unscored: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    never: int = 0

    def __post_init__(self) -> None:
        self.root = None if self.folder is None else os.path.realpath(self.folder)

    def check(self, path: str | None) -> tuple[str, str | None]:
        """``(state, resolved path)`` of a stored path, without opening it.

        States: ``"none"`` (no file recorded), ``"unchecked"`` (no folder to check it
        against), ``"outside"`` (resolves outside the folder), ``"gone"`` (no such file in the
        folder), ``"ok"`` (a file inside the folder: the resolved path is the one to open).
        """
        if path is None:
            return "none", None
        if self.root is None:
            return "unchecked", None
        resolved = os.path.realpath(os.path.join(self.root, path))  # a relative path is taken inside the folder
        if os.path.commonpath([self.root, resolved]) != self.root or resolved == self.root:
            return "outside", None
        if not os.path.isfile(resolved):
            return "gone", None
        return "ok", resolved

    def outside_message(self, store: str) -> str:
        """The warning about paths outside the folder (``outside`` holds row descriptions)."""
        return (
            f"the store {store!r} records {len(self.outside)} saved image path(s) outside the save_images folder "
            f"{self.folder!r}: {_shown(self.outside)}. They were not opened, and those cells were skipped (the "
            "store was edited by hand, or the images were saved in another folder): pass that folder as "
            "save_images (`--save-images FOLDER`) if you trust it"
        )

    def gone_message(self, store: str) -> str:
        """The warning about scored images whose files are gone."""
        return (
            f"{len(self.gone)} saved image file(s) recorded in the store {store!r} are missing: "
            f"{_shown(self.gone)}. Their scores are kept, but a scorer added later cannot score them; pass "
            "regenerate=True (`--regenerate`) to make them again with the same seeds and save them"
        )
