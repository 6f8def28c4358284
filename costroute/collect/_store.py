"""The SQLite file a collection lives in: :class:`CollectionStore`.

Schema (version 1)::

    meta       (key TEXT PRIMARY KEY, value TEXT)            -- {"schema": "costroute.collect/1"}
    prompts    (id, text UNIQUE)
    generators (id, key UNIQUE, name, kind, cost, cost_unit, settings JSON)
    scorers    (id, key UNIQUE, name, kind, cost NULL, cost_unit, settings JSON)
    images     (id, prompt_id, generator_id, seed_index, seed, cost, seconds, path NULL,
                UNIQUE (prompt_id, generator_id, seed_index))
    scores     (image_id, scorer_id, value, seconds, PRIMARY KEY (image_id, scorer_id))

``generators.key``/``scorers.key`` are :func:`~costroute.collect.generator_key` and
:func:`~costroute.collect.scorer_key`; ``settings`` is the JSON that was hashed. An image's
``cost`` is its generator's cost per image (in ``cost_unit``), ``seconds`` the measured
generation wall time per image (a batch's time divided by its size), ``path`` the saved PNG
(or NULL). A score's ``seconds`` is the scoring wall time per image.

The file is in WAL mode with ``synchronous=NORMAL``; every batch is written in one
transaction (:meth:`CollectionStore.write`), so a process killed at any moment (``SIGKILL``
included) leaves the batches committed before it and nothing of the one in flight. A power
loss or an operating-system crash may also roll back the last few committed batches (they are
made again by the next run), never leave a half-written one: NORMAL skips the disk flush of
every commit, which on a slow disk costs tens of milliseconds per batch. The UNIQUE
constraints make a duplicate image or score impossible, even with two processes writing one
store.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

__all__ = ["SCHEMA", "AppendedImage", "CollectionStore", "NewImage", "NewScore", "check_store_file"]

#: Version tag stored in the ``meta`` table.
SCHEMA = "costroute.collect/1"

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS prompts (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS generators (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, name TEXT NOT NULL, kind TEXT NOT NULL,
    cost REAL NOT NULL, cost_unit TEXT NOT NULL, settings TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS scorers (
    id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, name TEXT NOT NULL, kind TEXT NOT NULL,
    cost REAL, cost_unit TEXT NOT NULL, settings TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    id INTEGER PRIMARY KEY,
    prompt_id INTEGER NOT NULL REFERENCES prompts(id),
    generator_id INTEGER NOT NULL REFERENCES generators(id),
    seed_index INTEGER NOT NULL CHECK (seed_index >= 0),
    seed INTEGER NOT NULL,
    cost REAL NOT NULL,
    seconds REAL NOT NULL,
    path TEXT,
    UNIQUE (prompt_id, generator_id, seed_index));
CREATE TABLE IF NOT EXISTS scores (
    image_id INTEGER NOT NULL REFERENCES images(id),
    scorer_id INTEGER NOT NULL REFERENCES scorers(id),
    value REAL NOT NULL,
    seconds REAL NOT NULL,
    PRIMARY KEY (image_id, scorer_id)) WITHOUT ROWID;
"""

_EXPECTED = {"meta", "prompts", "generators", "scorers", "images", "scores"}

#: First seed index of images appended outside ``collect`` (a server's): far above any
#: ``--seeds`` a collection uses, so the two never meet.
APPENDED_SEED_INDEX = 1_000_000


@dataclass
class NewImage:
    """An image to insert, with its scores: ``scores`` holds ``(scorer_id, value, seconds)``."""

    prompt_id: int
    generator_id: int
    seed_index: int
    seed: int
    cost: float
    seconds: float
    path: str | None
    scores: list[tuple[int, float, float]] = field(default_factory=list)


@dataclass
class NewScore:
    """A score of an image already in the store (``path``: set it when the image row has none)."""

    image_id: int
    scorer_id: int
    value: float
    seconds: float
    path: str | None = None


@dataclass
class AppendedImage:
    """An image to insert at the next free seed index of its (prompt, generator) (:meth:`CollectionStore.append`).

    ``scores`` holds ``(scorer_id, value, seconds)``; the prompt is given by its text and
    registered with the image.
    """

    prompt: str
    generator_id: int
    seed: int
    cost: float
    seconds: float
    scores: list[tuple[int, float, float]] = field(default_factory=list)
    path: str | None = None


def _check_tables(conn: sqlite3.Connection, path: str, create: bool) -> set[str]:
    """The tables of the database behind ``conn``; ValueError unless it is (or may become) a collection store."""
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise ValueError(
            f"{path!r} is not a costroute collection store: {exc}; pass a new file name "
            "or a store written by costroute.collect"
        ) from None
    if not tables and not create:
        raise ValueError(
            f"{path!r} is an empty file, not a collection store; fill it with costroute.collect.collect first"
        )
    if tables and "meta" not in tables:
        raise ValueError(
            f"{path!r} is an SQLite database of something else (tables {sorted(tables)}), "
            "not a costroute collection store; pass a new file name"
        )
    if tables:
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None or row[0] != SCHEMA:
            raise ValueError(
                f"{path!r} has schema {row[0] if row else None!r}, this version of costroute "
                f"reads {SCHEMA!r}; collect into a new file"
            )
    return tables


def check_store_file(path: str | os.PathLike) -> None:
    """Raise ``ValueError`` if an existing file at ``path`` is not a collection store; write nothing.

    A missing or empty file passes (:class:`CollectionStore` creates the store in it). The
    check only reads: it never creates the file nor changes its rows (``mode=rw`` opens an
    existing file only, and closing the read-write connection tidies a WAL store's side files
    as any reader's last close does).
    """
    path = _check_path(path)
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return
    try:
        conn = sqlite3.connect(f"file:{quote(path)}?mode=rw", uri=True, timeout=60.0)
    except sqlite3.Error as exc:
        raise ValueError(
            f"{path!r} is not a costroute collection store: {exc}; pass a new file name "
            "or a store written by costroute.collect"
        ) from None
    try:
        _check_tables(conn, path, create=True)
    finally:
        conn.close()


def _check_path(path: Any) -> str:
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path.strip():
        raise TypeError(
            f"store must be the path of an SQLite file (str or path-like), got {type(path).__name__}: {path!r}"
        )
    return os.path.abspath(os.path.expanduser(path))


class CollectionStore:
    """An SQLite collection store: prompts, generators, scorers, images and scores.

    Parameters
    ----------
    path : str or path-like
        The SQLite file.
    create : bool, default=True
        Create the file (and the schema) when it does not exist; ``False`` raises
        ``FileNotFoundError`` instead.

    Raises
    ------
    ValueError
        The file exists but is not a costroute collection store (another SQLite database,
        or not a database at all), or its folder does not exist.

    Examples
    --------
    >>> from costroute.collect import CollectionStore
    >>> with CollectionStore(tmp_path / "run.sqlite") as store:      # doctest: +SKIP
    ...     store.counts()
    {'prompts': 0, 'generators': 0, 'scorers': 0, 'images': 0, 'scores': 0}
    """

    def __init__(self, path: str | os.PathLike, create: bool = True):
        self.path = _check_path(path)
        exists = os.path.exists(self.path)
        if not exists and not create:
            raise FileNotFoundError(
                f"collection store {self.path!r} does not exist; run costroute.collect.collect "
                "(or `costroute collect`) to create it"
            )
        folder = os.path.dirname(self.path)
        if not os.path.isdir(folder):
            raise ValueError(f"the folder of store {self.path!r} does not exist; create {folder!r} first")
        if exists and os.path.isdir(self.path):
            raise ValueError(f"store {self.path!r} is a folder; pass the path of an SQLite file, e.g. run.sqlite")
        self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=60.0)
        try:
            self._setup(create)
        except BaseException:
            self._conn.close()
            raise

    # ------------------------------------------------------------------ set-up
    def _setup(self, create: bool) -> None:
        conn = self._conn
        tables = _check_tables(conn, self.path, create)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        if not _EXPECTED <= tables:
            with self.transaction():
                for statement in _TABLES.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (SCHEMA,))

    def transaction(self) -> _Transaction:
        """A context manager around ``BEGIN IMMEDIATE`` ... ``COMMIT`` (``ROLLBACK`` on any exception)."""
        return _Transaction(self._conn)

    # ------------------------------------------------------------------ registering
    def register_prompts(self, texts: Sequence[str]) -> list[int]:
        """Ids of ``texts`` (inserted when new), in order."""
        with self.transaction():
            self._conn.executemany("INSERT OR IGNORE INTO prompts (text) VALUES (?)", ((t,) for t in texts))
        ids: dict[str, int] = {}
        wanted = list(texts)
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for pid, text in self._conn.execute(f"SELECT id, text FROM prompts WHERE text IN ({marks})", chunk):
                ids[text] = pid
        return [ids[t] for t in wanted]

    def _register(
        self, table: str, key: str, name: str, kind: str, cost: float | None, cost_unit: str, settings: Any
    ) -> int:
        with self.transaction():
            self._conn.execute(
                f"INSERT OR IGNORE INTO {table} (key, name, kind, cost, cost_unit, settings) VALUES (?, ?, ?, ?, ?, ?)",
                (key, name, kind, cost, cost_unit, json.dumps(settings, sort_keys=True, ensure_ascii=False)),
            )
        return int(self._conn.execute(f"SELECT id FROM {table} WHERE key = ?", (key,)).fetchone()[0])

    def register_generator(self, key: str, identity: dict[str, Any], cost: float) -> int:
        """Id of the generator with this key, inserted when new (``identity``: what the key hashes; ``cost``: per
        image, counted or given)."""
        return self._register(
            "generators", key, identity["name"], identity["class"], cost, identity["cost_unit"], identity
        )

    def register_scorer(self, key: str, name: str, identity: dict[str, Any], cost: float | None) -> int:
        """Id of the scorer with this key, inserted when new (``cost``: per image, ``None`` when unknown)."""
        return self._register("scorers", key, name, identity["class"], cost, identity["cost_unit"], identity)

    # ------------------------------------------------------------------ reading
    def images_of(self, generator_ids: Iterable[int]) -> dict[tuple[int, int, int], tuple[int, str | None]]:
        """``{(prompt_id, generator_id, seed_index): (image_id, path)}`` of the given generators' images."""
        ids = sorted(set(int(g) for g in generator_ids))
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._conn.execute(
            f"SELECT prompt_id, generator_id, seed_index, id, path FROM images WHERE generator_id IN ({marks})", ids
        )
        return {(p, g, s): (i, path) for p, g, s, i, path in rows}

    def scored(self, generator_ids: Iterable[int]) -> dict[int, set[int]]:
        """``{image_id: {scorer_id, ...}}`` for the given generators' images that have scores."""
        ids = sorted(set(int(g) for g in generator_ids))
        out: dict[int, set[int]] = {}
        if not ids:
            return out
        marks = ",".join("?" * len(ids))
        rows = self._conn.execute(
            f"SELECT s.image_id, s.scorer_id FROM scores s JOIN images i ON i.id = s.image_id "
            f"WHERE i.generator_id IN ({marks})",
            ids,
        )
        for image_id, scorer_id in rows:
            out.setdefault(image_id, set()).add(scorer_id)
        return out

    def counts(self) -> dict[str, int]:
        """Number of rows of each table (``meta`` excepted)."""
        return {
            t: int(self._conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0])
            for t in ("prompts", "generators", "scorers", "images", "scores")
        }

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Rows of a read-only SQL query (for inspection and the loaders)."""
        return self._conn.execute(sql, tuple(params)).fetchall()

    # ------------------------------------------------------------------ writing
    def write(
        self, images: Sequence[NewImage], scores: Sequence[NewScore] = (), paths: Sequence[tuple[int, str]] = ()
    ) -> tuple[int, int]:
        """Insert a finished batch in one transaction; returns (images inserted, scores inserted).

        An image whose (prompt, generator, seed index) is already stored is skipped together
        with its scores (another run stored that cell first); a score already stored is
        skipped. ``paths`` holds ``(image_id, path)`` of stored images made again and saved
        anew (their recorded file was gone): the path replaces the recorded one. Nothing is
        written if anything fails, whatever the exception (see :meth:`transaction`).
        """
        n_images = n_scores = 0
        conn = self._conn
        with self.transaction():
            for image in images:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO images (prompt_id, generator_id, seed_index, seed, cost, seconds, path) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        image.prompt_id,
                        image.generator_id,
                        image.seed_index,
                        image.seed,
                        image.cost,
                        image.seconds,
                        image.path,
                    ),
                )
                if cur.rowcount != 1:
                    continue
                n_images += 1
                image_id = cur.lastrowid
                for scorer_id, value, seconds in image.scores:
                    conn.execute(
                        "INSERT INTO scores (image_id, scorer_id, value, seconds) VALUES (?, ?, ?, ?)",
                        (image_id, scorer_id, value, seconds),
                    )
                    n_scores += 1
            for score in scores:
                cur = conn.execute(
                    "INSERT OR IGNORE INTO scores (image_id, scorer_id, value, seconds) VALUES (?, ?, ?, ?)",
                    (score.image_id, score.scorer_id, score.value, score.seconds),
                )
                n_scores += cur.rowcount
                if score.path is not None:
                    conn.execute(
                        "UPDATE images SET path = ? WHERE id = ? AND path IS NULL", (score.path, score.image_id)
                    )
            for image_id, path in paths:
                conn.execute("UPDATE images SET path = ? WHERE id = ?", (path, image_id))
        return n_images, n_scores

    def append(self, images: Sequence[AppendedImage]) -> list[tuple[int, int]]:
        """Insert images made outside :func:`~costroute.collect.collect` (a server's), in one transaction.

        Each image goes to the next free seed index of its (prompt, generator) from
        :data:`APPENDED_SEED_INDEX` (1,000,000) up, so it never takes the place of another image,
        and :func:`~costroute.collect.collect`, whose seed indices count up from 0, never
        mistakes it for one of its own seeded images; its ``seed`` is recorded as given.
        ``load_collection`` reads every seed index, appended ones included. Prompts are registered in
        the same transaction, so a failure (or a killed process) leaves nothing of the batch.

        Returns
        -------
        list of (int, int)
            ``(image_id, seed_index)`` of each image, in order.
        """
        out: list[tuple[int, int]] = []
        conn = self._conn
        with self.transaction():
            for image in images:
                conn.execute("INSERT OR IGNORE INTO prompts (text) VALUES (?)", (image.prompt,))
                prompt_id = conn.execute("SELECT id FROM prompts WHERE text = ?", (image.prompt,)).fetchone()[0]
                seed_index = conn.execute(
                    "SELECT COALESCE(MAX(seed_index) + 1, ?) FROM images "
                    "WHERE prompt_id = ? AND generator_id = ? AND seed_index >= ?",
                    (APPENDED_SEED_INDEX, prompt_id, image.generator_id, APPENDED_SEED_INDEX),
                ).fetchone()[0]
                cur = conn.execute(
                    "INSERT INTO images (prompt_id, generator_id, seed_index, seed, cost, seconds, path) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (prompt_id, image.generator_id, seed_index, image.seed, image.cost, image.seconds, image.path),
                )
                for scorer_id, value, seconds in image.scores:
                    conn.execute(
                        "INSERT INTO scores (image_id, scorer_id, value, seconds) VALUES (?, ?, ?, ?)",
                        (cur.lastrowid, scorer_id, value, seconds),
                    )
                out.append((int(cur.lastrowid), int(seed_index)))
        return out

    # ------------------------------------------------------------------ life cycle
    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._conn.close()

    def __enter__(self) -> CollectionStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"CollectionStore({self.path!r})"


class _Transaction:
    """``BEGIN IMMEDIATE`` on entry; ``COMMIT``, or ``ROLLBACK`` when the block raised anything.

    Any exception rolls back, ``BaseException`` included (a ``KeyboardInterrupt`` between two
    inserts, a ``SystemExit``), and so does a ``COMMIT`` that fails (a deferred constraint, a full
    disk): the connection never stays inside a half-written transaction that a later statement
    could commit. The original exception propagates. When even the ``ROLLBACK`` fails the
    connection is closed, which discards the transaction, so the store stays as it was before
    the block.
    """

    def __init__(self, conn: sqlite3.Connection):
        self._conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self._conn.execute("BEGIN IMMEDIATE")
        return self._conn

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self._rollback()
            return
        try:
            self._conn.execute("COMMIT")
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if not self._conn.in_transaction:  # SQLite already rolled it back (some errors do)
            return
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error:  # the exception being handled is the one to report
            self._conn.close()  # closing discards the open transaction
