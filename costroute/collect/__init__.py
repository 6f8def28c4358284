"""Training data for a router: generate every prompt with every generator and seed, score every image, store it.

:func:`collect` plans the missing (prompt, generator, seed) images as work units (one batch
of one generator each), runs them on a backend and writes every finished batch to an
SQLite store (:class:`CollectionStore`) in one transaction. Killed at any moment and run
again, it resumes: finished cells are never paid for twice, and no row is ever duplicated
or half-written. :func:`costroute.datasets.load_collection` turns the store into the
dataset :class:`~costroute.CostAwareRouter` and :class:`~costroute.CascadeRouter` fit on.

Backends receive :class:`WorkUnit` objects and yield :class:`UnitResult` objects; only the
driver writes the store. :class:`LocalBackend` (``backend="local"``) runs units in this
process; :class:`RayBackend` (``backend="ray"``, or an instance for its settings) runs them
on a pool of Ray actors, one per GPU. Another backend plugs in by subclassing
:class:`Backend` (and, for a name, an entry in :data:`BACKENDS`).

Importing this package does not import torch, diffusers, transformers, tqdm or ray.
"""

from ._backend import Backend, ImageRow, UnitResult, WorkUnit
from ._collect import CollectSummary, FailedImagesWarning, collect
from ._keys import IGNORED_SETTINGS, generator_key, image_seed_for, prompt_number, scorer_key
from ._lease import ConcurrentWriterWarning
from ._local import LocalBackend
from ._ray import RayBackend
from ._rebuild import REBUILT_GENERATORS, REBUILT_SCORERS, rebuild_generator, rebuild_scorer
from ._specs import BACKENDS, parse_generator, parse_scorer
from ._store import APPENDED_SEED_INDEX, SCHEMA, CollectionStore

__all__ = [
    "APPENDED_SEED_INDEX",
    "BACKENDS",
    "IGNORED_SETTINGS",
    "REBUILT_GENERATORS",
    "REBUILT_SCORERS",
    "SCHEMA",
    "Backend",
    "CollectSummary",
    "CollectionStore",
    "ConcurrentWriterWarning",
    "FailedImagesWarning",
    "ImageRow",
    "LocalBackend",
    "RayBackend",
    "UnitResult",
    "WorkUnit",
    "collect",
    "generator_key",
    "image_seed_for",
    "parse_generator",
    "parse_scorer",
    "prompt_number",
    "rebuild_generator",
    "rebuild_scorer",
    "scorer_key",
]
