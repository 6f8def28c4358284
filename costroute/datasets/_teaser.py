"""GenAI-Bench teaser: human ratings beside real VQAScore and CLIPScore, 55 prompts x 4 generators."""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING

import numpy as np

from ._base import RemoteFile, fetch_file

if TYPE_CHECKING:  # pragma: no cover
    from sklearn.utils import Bunch

__all__ = ["GENAI_BENCH_TEASER", "TEASER_SCORES", "load_genai_bench_teaser"]

COST_UNITS = ("flops", "usd")  # the units of the shipped cost tables (nothing here was timed)
_REPO = "linzhiqiu/t2v_metrics"
_COMMIT = "60ce07b144b9bff24b8dac5317cb28586b1b2509"

GENAI_BENCH_TEASER = RemoteFile(
    subdir="genai-bench",
    filename="genai_image_teaser.json",
    url=f"https://raw.githubusercontent.com/{_REPO}/{_COMMIT}/genai_image_teaser.json",
    sha256="32c55d64079f7aee5fc39c511057c5330ac7b264ed9ac5be4cf111c462588c68",
    size=70_180,
    license="Apache-2.0",
)

#: Name of each automatic score in ``scores`` -> its field in the file.
TEASER_SCORES = {"vqascore": "clip_flant5", "clipscore": "clip"}

#: The generators the teaser file rates, in file order.
_TEASER_GENERATORS = ("DALLE_3", "DeepFloyd_I_XL_v1", "Midjourney_6", "SDXL_Base")

_DESCRIPTION = f"""\
GenAI-Bench teaser: automatic image scores beside human ratings
===============================================================

55 GenAI-Bench prompts, each rendered by four text-to-image generators (DALLE_3,
DeepFloyd_I_XL_v1, Midjourney_6, SDXL_Base). For every image the file gives the mean of
three human 1-5 ratings (``quality``; rounded to 2 decimals, equal to the means of
``load_genai_bench`` for the same prompt and generator) and two automatic scores
(``scores``):

- ``vqascore``: VQAScore with CLIP-FlanT5 (the file's ``clip_flant5`` field), the
  probability that the model answers "Yes" to 'Does this figure show "{{prompt}}"? Please
  answer yes or no.', in [0, 1];
- ``clipscore``: the file's ``clip`` field, CLIPScore on the cosine scale (about 0.2-0.3).

Within a prompt (each row minus its row mean, all rows pooled), VQAScore correlates with
the human mean at r = 0.74 and CLIPScore at r = 0.26: post-generation evidence that a
prompt-only router cannot see.

Source: https://github.com/{_REPO} at commit {_COMMIT}, file genai_image_teaser.json,
sha256 {GENAI_BENCH_TEASER.sha256}. The file's values are strings; its per-prompt ranks
are not kept (they follow from the values).
References: Lin et al., "Evaluating Text-to-Visual Generation with Image-to-Text
Generation" (VQAScore), 2024; Li et al., "GenAI-Bench", 2024.
License: Apache-2.0 (the t2v_metrics repository).
"""


def _number(path: os.PathLike, key: str, name: str, field: str, value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise ValueError(f"{path}: prompt {key}, generator {name}: field {field!r} is not a number: {value!r}")
    return number


def _parse(path: os.PathLike, names: list[str]) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a JSON object of prompt records, got {type(raw).__name__}")
    fields = {"human": "human", **TEASER_SCORES}
    values = {out: np.empty((len(raw), len(names))) for out in fields}
    prompt_ids, prompts = [], []
    for i, (key, record) in enumerate(raw.items()):
        models = record["models"]
        missing = [n for n in names if n not in models]
        if missing:
            raise ValueError(f"{path}: prompt {key} has no scores for generators {missing}; it has {sorted(models)}")
        for k, name in enumerate(names):
            for out, field in fields.items():
                values[out][i, k] = _number(path, key, name, field, models[name].get(field))
        prompt_ids.append(str(key))
        prompts.append(str(record["prompt"]))
    return prompt_ids, prompts, values


def load_genai_bench_teaser(
    cost_unit: str = "flops",
    data_home: str | os.PathLike | None = None,
    download: bool = True,
) -> Bunch:
    """Load the GenAI-Bench teaser: human ratings, VQAScore and CLIPScore of 55 prompts x 4 generators.

    The raw upstream file (``genai_image_teaser.json`` of ``linzhiqiu/t2v_metrics``, pinned
    to a commit and a sha256) is found or downloaded by :func:`fetch_file`. Costs are the
    ones of :func:`load_genai_bench` for the same generators.

    Parameters
    ----------
    cost_unit : {"flops", "usd"}, default="flops"
        Unit of the generator costs. With ``"flops"`` only the two open generators
        (DeepFloyd_I_XL_v1, SDXL_Base) have a cost, so ``quality`` and every ``scores``
        frame keep only their columns; with ``"usd"`` all four are kept.
    data_home : str or path-like, default=None
        Download cache folder; see :func:`get_data_home`.
    download : bool, default=True
        Whether to download the file when it is not found locally.

    Returns
    -------
    data : sklearn.utils.Bunch
        Dictionary-like object with the fields:

        prompts : list of str, length n (55)
            The prompts, in file order.
        prompt_ids : list of str, length n
            Their GenAI-Bench ids, the index of ``quality``.
        quality : pandas.DataFrame of shape (n, K)
            Mean human rating (1-5); index ``prompt_id``, columns the generators in
            registry order (the order of :func:`load_genai_bench`).
        scores : dict of str to pandas.DataFrame
            ``scores["vqascore"]`` (VQAScore, CLIP-FlanT5, 0-1) and ``scores["clipscore"]``
            (CLIPScore, cosine scale), each (n, K) with the index and columns of ``quality``.
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
        If ``cost_unit`` is not one of ``"flops"``, ``"usd"``, or the file is malformed.

    Examples
    --------
    >>> from costroute.datasets import load_genai_bench_teaser
    >>> data = load_genai_bench_teaser(cost_unit="usd")        # doctest: +SKIP
    >>> data.quality.shape, data.scores["vqascore"].shape       # doctest: +SKIP
    ((55, 4), (55, 4))
    """
    import pandas as pd
    from sklearn.utils import Bunch

    if cost_unit not in COST_UNITS:
        raise ValueError(f"cost_unit must be one of {list(COST_UNITS)}, got {cost_unit!r}")
    from ._cost_tables import genai_bench_generators

    registry, assumptions = genai_bench_generators(cost_unit)
    registry = registry.subset(n for n in registry.names if n in _TEASER_GENERATORS)
    path = fetch_file(GENAI_BENCH_TEASER, data_home=data_home, download=download)
    names = registry.names
    prompt_ids, prompts, values = _parse(path, names)
    index = pd.Index(prompt_ids, name="prompt_id")
    columns = pd.Index(names, name="generator")

    def frame(array: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(array, index=index.copy(), columns=columns.copy())

    description = (
        f"{_DESCRIPTION}\nCosts ({cost_unit})\n{'-' * (len(cost_unit) + 8)}\n\n"
        f"The cost tables of load_genai_bench, of which this file has {', '.join(names)}.\n\n{assumptions.strip()}\n"
    )
    return Bunch(
        prompts=prompts,
        prompt_ids=prompt_ids,
        quality=frame(values["human"]),
        scores={name: frame(values[name]) for name in TEASER_SCORES},
        generators=registry,
        costs=registry.costs,
        cost_unit=cost_unit,
        path=path,
        description=description,
    )
