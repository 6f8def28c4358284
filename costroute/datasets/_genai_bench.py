"""GenAI-Bench human ratings: 527 prompts x 6 text-to-image generators x 3 raters."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import numpy as np

from ._base import RemoteFile, fetch_file

if TYPE_CHECKING:  # pragma: no cover
    from sklearn.utils import Bunch

COST_UNITS = ("flops", "usd")  # the units of the shipped cost tables (nothing here was timed)
_REPO = "linzhiqiu/t2v_metrics"
_COMMIT = "60ce07b144b9bff24b8dac5317cb28586b1b2509"

GENAI_BENCH = RemoteFile(
    subdir="genai-bench",
    filename="genai_image.json",
    url=f"https://raw.githubusercontent.com/{_REPO}/{_COMMIT}/genai_image.json",
    sha256="a5974a5e67f530985a12f2d5cda490f3cb1e47064a56c54817d57102a964e9ff",
    size=438_844,
    license="Apache-2.0",
)

_N_RATINGS = 3

_DESCRIPTION = f"""\
GenAI-Bench image ratings
=========================

527 GenAI-Bench prompts, each rendered by six text-to-image generators (DALLE_3,
Midjourney_6, DeepFloyd_I_XL_v1, SDXL_Base, SDXL_Turbo and SDXL_2_1 -- the last one is
Stable Diffusion 2.1 despite its name). Every image was rated by 3 human raters on a 1-5
Likert scale for how well it matches its prompt. ``quality`` is the mean of the three
ratings; ``ratings`` keeps them.

Per-generator mean quality: DALLE_3 3.72, Midjourney_6 3.49, DeepFloyd_I_XL_v1 3.23,
SDXL_Base 3.11, SDXL_Turbo 3.08, SDXL_2_1 2.85; the per-prompt oracle reaches 4.30.

Prompt ids are the keys of the upstream JSON ("00001" .. "00527"); the records' own "id"
field drops the zero padding from "292" on, so it is not used.

Source: https://github.com/{_REPO} at commit {_COMMIT}, file genai_image.json
(removed from later commits), sha256 {GENAI_BENCH.sha256}.
References: Li et al., "GenAI-Bench: Evaluating and Improving Compositional
Text-to-Visual Generation", 2024; Lin et al., "Evaluating Text-to-Visual Generation with
Image-to-Text Generation" (VQAScore), 2024.
License: Apache-2.0 (the t2v_metrics repository).

Generation settings (steps, resolution, guidance) are not part of the file, so the costs
below are assumptions, not measurements.
"""


def _parse(path: os.PathLike, names: list[str]) -> tuple[list[str], list[str], np.ndarray]:
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object of prompt records, got {type(raw).__name__}")
    prompt_ids: list[str] = []
    prompts: list[str] = []
    ratings = np.empty((len(raw), len(names), _N_RATINGS), dtype=float)
    for i, (key, record) in enumerate(raw.items()):
        models = record["models"]
        missing = [n for n in names if n not in models]
        if missing:
            raise ValueError(f"{path}: prompt {key} has no ratings for generators {missing}; it rates {sorted(models)}")
        for k, name in enumerate(names):
            r = models[name]
            if len(r) != _N_RATINGS:
                raise ValueError(f"{path}: prompt {key}, generator {name}: expected {_N_RATINGS} ratings, got {r!r}")
            ratings[i, k] = r
        prompt_ids.append(str(key))
        prompts.append(str(record["prompt"]))
    return prompt_ids, prompts, ratings


def load_genai_bench(
    cost_unit: str = "flops",
    data_home: str | os.PathLike | None = None,
    download: bool = True,
) -> Bunch:
    """Load the GenAI-Bench human ratings: 527 prompts x 6 generators x 3 ratings.

    The raw upstream file (``genai_image.json`` of ``linzhiqiu/t2v_metrics``, pinned to a
    commit and a sha256) is found or downloaded by :func:`fetch_file`.

    Parameters
    ----------
    cost_unit : {"flops", "usd"}, default="flops"
        Unit of the generator costs. With ``"flops"`` only the four open generators
        (DeepFloyd_I_XL_v1, SDXL_Base, SDXL_Turbo, SDXL_2_1) have a cost, so ``quality``
        and ``ratings`` keep only their columns; with ``"usd"`` all six generators are kept
        (DALLE_3 and Midjourney_6 priced per image, open models at an assumed GPU price).
    data_home : str or path-like, default=None
        Download cache folder; see :func:`get_data_home`.
    download : bool, default=True
        Whether to download the file when it is not found locally.

    Returns
    -------
    data : sklearn.utils.Bunch
        Dictionary-like object with the fields:

        prompts : list of str, length n
            The prompts, in file order.
        prompt_ids : list of str, length n
            Their ids (``"00001"`` ...), the index of ``quality``.
        quality : pandas.DataFrame of shape (n, K)
            Mean of the three human ratings (1-5, higher is better); index ``prompt_id``,
            columns the generator names in registry order. No missing values.
        ratings : ndarray of shape (n, K, 3)
            The individual ratings, same row and column order as ``quality``.
        generators : GeneratorRegistry
            The K generators with their costs in ``cost_unit``.
        costs : ndarray of shape (K,)
            ``generators.costs``.
        cost_unit : str
            The cost unit.
        path : pathlib.Path
            The file that was read.
        description : str
            The dataset's description, source, license and cost assumptions.

    Raises
    ------
    ValueError
        If ``cost_unit`` is not one of ``"flops"``, ``"usd"``.

    Examples
    --------
    >>> from costroute.datasets import load_genai_bench
    >>> data = load_genai_bench(cost_unit="usd")  # doctest: +SKIP
    >>> data.quality.shape  # doctest: +SKIP
    (527, 6)
    """
    import pandas as pd
    from sklearn.utils import Bunch

    if cost_unit not in COST_UNITS:
        raise ValueError(f"cost_unit must be one of {list(COST_UNITS)}, got {cost_unit!r}")
    from ._cost_tables import genai_bench_generators

    registry, assumptions = genai_bench_generators(cost_unit)
    path = fetch_file(GENAI_BENCH, data_home=data_home, download=download)
    names = registry.names
    prompt_ids, prompts, ratings = _parse(path, names)
    quality = pd.DataFrame(
        ratings.mean(axis=2),
        index=pd.Index(prompt_ids, name="prompt_id"),
        columns=pd.Index(names, name="generator"),
    )
    description = f"{_DESCRIPTION}\nCosts ({cost_unit})\n{'-' * (len(cost_unit) + 8)}\n\n{assumptions.strip()}\n"
    return Bunch(
        prompts=prompts,
        prompt_ids=prompt_ids,
        quality=quality,
        ratings=ratings,
        generators=registry,
        costs=registry.costs,
        cost_unit=cost_unit,
        path=path,
        description=description,
    )
