"""pool(): several quality data sets as one prompt list and one quality matrix with unrated cells."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from sklearn.utils import Bunch

__all__ = ["pool"]


def _to_source_scale(values: Any, source: str, *, scale) -> np.ndarray:
    """Map standardised quality of ``source`` back to that data set's own scale."""
    if source not in scale.index:
        raise ValueError(f"source must be one of {list(scale.index)}, got {source!r}")
    mean, std = scale.loc[source, "mean"], scale.loc[source, "std"]
    return np.asarray(values, dtype=float) * std + mean


def _warn_repeated_prompts(prompt_lists: list, names: list) -> None:
    """Warn when prompts of one set appear in an earlier one: the pooled matrix holds them twice."""
    seen: dict[str, str] = {}
    repeated = 0
    example = None
    for label, prompts in zip(names, prompt_lists):
        own = set()
        for p in prompts:
            if p in seen and seen[p] != label and p not in own:
                repeated += 1
                example = example or (p, seen[p], label)
            own.add(p)
        for p in own:
            seen.setdefault(p, label)
    if repeated:
        text, first, second = example
        shown = text if len(text) <= 60 else text[:57] + "..."
        warnings.warn(
            f"{repeated} prompt(s) appear in more than one data set (e.g. {shown!r} in {first!r} and {second!r}); "
            "the pooled data hold one row per set for each, so they weigh more in a fit and a split by row can "
            "put a prompt on both sides. Drop the repeats from one set if they are the same ratings",
            UserWarning,
            stacklevel=3,
        )


def _check_dataset(data: Any, i: int):
    import pandas as pd

    quality = getattr(data, "quality", None) if not isinstance(data, Mapping) else data.get("quality")
    prompts = getattr(data, "prompts", None) if not isinstance(data, Mapping) else data.get("prompts")
    if not isinstance(quality, pd.DataFrame) or prompts is None:
        raise TypeError(
            f"datasets[{i}] must be a data set with .prompts and a .quality DataFrame (what load_genai_bench, "
            f"load_agiqa3k or load_collection return), got {type(data).__name__}"
        )
    prompts = list(prompts)
    if len(prompts) != len(quality):
        raise ValueError(f"datasets[{i}] has {len(prompts)} prompts but {len(quality)} rows of quality")
    return prompts, quality


def pool(
    *datasets: Any,
    names: list[str] | None = None,
    standardize: bool = True,
    aliases: Mapping[str, str] | None = None,
) -> Bunch:
    """Stack several quality data sets into one prompt list and one quality matrix.

    Generators are matched across sets by name (after ``aliases``); a cell is NaN where a
    set did not rate a generator. Each set's quality is standardised with the mean and
    standard deviation over all of its rated cells, so that sets on different scales (a 1-5
    Likert mean, a 0-5 MOS) can share one model; ``scale`` keeps them and
    ``to_source_scale`` maps predictions back.

    A model that allows missing cells, such as
    :class:`~costroute.quality_models.LowRankRegressor`, fits the pooled matrix directly on
    features of ``prompts``; rows of one source share the prompt side of the model with the
    others even when no generator is shared.

    Parameters
    ----------
    *datasets : Bunch
        Objects returned by :func:`load_genai_bench`, :func:`load_agiqa3k` or
        :func:`load_collection` (anything with ``prompts`` and a ``quality`` DataFrame whose
        columns are generator names).
    names : list of str, optional
        A label per data set (``source``); default ``"set0"``, ``"set1"``, ...
    standardize : bool, default=True
        Standardise each set's quality; if False, ``scale`` holds mean 0 and std 1.
    aliases : dict of str to str, optional
        Renames generators before matching, e.g. ``{"sd1.5_normal": "SD_1_5"}``; every key
        must be a generator of some set.

    Returns
    -------
    data : sklearn.utils.Bunch
        Dictionary-like object with the fields:

        prompts : list of str, length n
            The sets' prompts, stacked in order.
        prompt_ids : list
            The original ids.
        source : ndarray of str, shape (n,)
            Each prompt's data set label.
        quality : pandas.DataFrame of shape (n, K)
            Index (source, prompt_id), columns the union of the generator names in order of
            first appearance, NaN where unrated.
        scale : pandas.DataFrame
            Index the labels, columns ``mean`` and ``std``.
        to_source_scale : callable ``(values, source) -> ndarray``
            ``values * std + mean`` of that source.
        generators : dict of label to GeneratorRegistry (or None)
            Each set's own registry.
        names : list of str
            The labels.

    Raises
    ------
    TypeError
        An argument that is not a data set, or ``aliases`` that is not a dict of str.
    ValueError
        No data set, the same data set object twice, bad ``names``, an alias key no set has, two generators of one set that
        an alias maps to the same name, or a set whose quality is constant (with
        ``standardize``).

    Warns
    -----
    UserWarning
        When prompts of one set also appear in another (how many, with an example): each
        stays a row of its own set.

    Examples
    --------
    >>> from costroute.datasets import load_agiqa3k, load_genai_bench, pool
    >>> data = pool(load_genai_bench(cost_unit="usd"), load_agiqa3k(),      # doctest: +SKIP
    ...             names=["genai_bench", "agiqa3k"])
    >>> data.quality.shape                                                  # doctest: +SKIP
    (814, 16)
    """
    import pandas as pd
    from sklearn.utils import Bunch

    if not datasets:
        raise ValueError("pool needs at least one data set, e.g. pool(load_genai_bench(), load_agiqa3k())")
    if names is None:
        names = [f"set{i}" for i in range(len(datasets))]
    if isinstance(names, str) or len(list(names)) != len(datasets):
        raise ValueError(f"names must be a list of {len(datasets)} labels, one per data set, got {names!r}")
    names = list(names)
    if not all(isinstance(n, str) and n for n in names) or len(set(names)) != len(names):
        raise ValueError(f"names must be distinct non-empty strings, got {names!r}")
    if not isinstance(standardize, (bool, np.bool_)):
        raise TypeError(f"standardize must be True or False, got {standardize!r}")
    aliases = {} if aliases is None else aliases
    if not isinstance(aliases, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()
    ):
        raise TypeError(f"aliases must be a dict of generator name -> pooled name (str -> str), got {aliases!r}")
    for j, d in enumerate(datasets):
        for i in range(j):
            if datasets[i] is d:
                raise ValueError(
                    f"datasets[{i}] and datasets[{j}] are the same data set object; pooling it twice "
                    "would duplicate every prompt. Pass each data set once"
                )
    checked = [_check_dataset(d, i) for i, d in enumerate(datasets)]
    _warn_repeated_prompts([p for p, _ in checked], names)
    known = {str(c) for _, q in checked for c in q.columns}
    unknown = sorted(set(aliases) - known)
    if unknown:
        raise ValueError(f"aliases name generators no data set has: {unknown}; the generators are {sorted(known)}")

    columns: list[str] = []
    blocks, prompts, ids, source, scale = [], [], [], [], []
    for label, (p, q) in zip(names, checked):
        renamed = [aliases.get(str(c), str(c)) for c in q.columns]
        if len(set(renamed)) != len(renamed):
            dupes = sorted({c for c in renamed if renamed.count(c) > 1})
            raise ValueError(
                f"data set {label!r}: aliases map several of its generators to {dupes}; a set's "
                "generators must keep distinct names"
            )
        values = q.to_numpy(dtype=float)
        cells = values[~np.isnan(values)]
        if standardize:
            mean, std = float(cells.mean()), float(cells.std())
            if not std > 0:
                raise ValueError(
                    f"data set {label!r} has constant quality {mean}; it cannot be standardised "
                    "(pass standardize=False)"
                )
        else:
            mean, std = 0.0, 1.0
        scale.append((label, mean, std))
        columns += [c for c in renamed if c not in columns]
        blocks.append(pd.DataFrame((values - mean) / std, columns=renamed))
        prompts += p
        ids += list(q.index)
        source += [label] * len(p)
    quality = pd.concat([b.reindex(columns=columns) for b in blocks], ignore_index=True)
    quality.index = pd.MultiIndex.from_arrays([source, ids], names=["source", "prompt_id"])
    quality.columns = pd.Index(columns, name="generator")
    scale_frame = pd.DataFrame(scale, columns=["source", "mean", "std"]).set_index("source")
    return Bunch(
        prompts=prompts,
        prompt_ids=ids,
        source=np.asarray(source),
        quality=quality,
        scale=scale_frame,
        to_source_scale=partial(_to_source_scale, scale=scale_frame),
        generators={label: getattr(d, "generators", None) for label, d in zip(names, datasets)},
        names=names,
    )
