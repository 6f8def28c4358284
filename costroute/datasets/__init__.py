"""Loaders for real quality matrices and prompt sets, in the style of ``sklearn.datasets``.

Each loader reads one unmodified upstream file pinned to a commit and a sha256, found in
``$COSTROUTE_DATA`` or the data home (:func:`get_data_home`), or downloaded there. Importing
this package reads no file and touches no network.
"""

from ._agiqa3k import load_agiqa3k
from ._base import (
    ChecksumError,
    DataNotFoundError,
    DownloadError,
    RemoteFile,
    fetch_file,
    get_data_home,
)
from ._collection import load_collection
from ._genai_bench import load_genai_bench
from ._pool import pool
from ._prompts import PROMPT_SETS, load_prompts
from ._simulate import simulate_scores
from ._teaser import load_genai_bench_teaser

__all__ = [
    "PROMPT_SETS",
    "ChecksumError",
    "DataNotFoundError",
    "DownloadError",
    "RemoteFile",
    "fetch_file",
    "get_data_home",
    "load_agiqa3k",
    "load_collection",
    "load_genai_bench",
    "load_genai_bench_teaser",
    "load_prompts",
    "pool",
    "simulate_scores",
]
