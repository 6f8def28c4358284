"""Served images and scores into a collection store: :class:`StoreWriter`.

The rows are those of :func:`costroute.collect.collect` -- generators and scorers registered
under :func:`~costroute.collect.generator_key` and :func:`~costroute.collect.scorer_key` with
the same identities, one image row per image made (its seed, its cost per image in the
generators' unit, its generation seconds) and one score row per score -- so
:func:`costroute.datasets.load_collection` and ``costroute fit --dataset STORE`` read a served
store like a collected one. An image takes the next free seed index from 1,000,000 up of its (prompt,
generator) (:meth:`CollectionStore.append <costroute.collect.CollectionStore.append>`): it
never collides with a collected image or another served one, and ``collect`` (indices from 0)
never takes it for one of its own. Each batch of requests is
written in one transaction, so a stopped process leaves no partial row.

The store lives in the server's worker thread: SQLite connections stay in the thread that
opened them.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import Any

from ..collect import CollectionStore, generator_key, scorer_key
from ..collect._keys import generator_identity, scorer_cost, scorer_identity
from ..collect._store import AppendedImage

__all__ = ["ServedRow", "StoreWriter"]


@dataclasses.dataclass
class ServedRow:
    """One image made, to store: its prompt, generator, seed, cost (generators' unit), seconds and scores.

    ``scores`` maps a scorer's name to ``(value, seconds)``.
    """

    prompt: str
    generator: str
    seed: int
    cost: float
    seconds: float
    scores: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)


class StoreWriter:
    """Write what a server makes to the collection store at ``path``.

    Parameters
    ----------
    path : str or path-like
        The SQLite file (created when missing; its folder must exist).
    generators : GeneratorRegistry
        The generators served.
    scorers : dict of str to Scorer
        The scorers, by the names their scores are reported under.
    """

    def __init__(self, path: str | os.PathLike, generators: Any, scorers: dict[str, Any]):
        self.path = os.fspath(path)
        self.generators = generators
        self.scorers = dict(scorers)
        self._store: CollectionStore | None = None
        self._generator_ids: dict[str, int] = {}
        self._scorer_ids: dict[str, int] = {}

    def open(self) -> None:
        """Open the store and register the generators and scorers (as ``collect`` does)."""
        store = CollectionStore(self.path)
        try:
            for g in self.generators:
                self._generator_ids[g.name] = store.register_generator(
                    generator_key(g), generator_identity(g), float(g.cost)
                )
            for name, s in self.scorers.items():
                self._scorer_ids[name] = store.register_scorer(
                    scorer_key(s), s.name, scorer_identity(s), scorer_cost(s)
                )
        except BaseException:
            store.close()
            raise
        self._store = store

    def write(self, rows: Sequence[ServedRow]) -> list[tuple[int, int]]:
        """Store ``rows`` in one transaction; ``(image_id, seed_index)`` of each."""
        if self._store is None:
            raise RuntimeError("the store is not open; call open() first")
        if not rows:
            return []
        images = [
            AppendedImage(
                row.prompt,
                self._generator_ids[row.generator],
                int(row.seed),
                float(row.cost),
                float(row.seconds),
                [(self._scorer_ids[name], float(v), float(sec)) for name, (v, sec) in row.scores.items()],
            )
            for row in rows
        ]
        return self._store.append(images)

    def close(self) -> None:
        """Close the store (idempotent)."""
        if self._store is not None:
            self._store.close()
            self._store = None
