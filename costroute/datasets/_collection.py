"""A collection store as a dataset: :func:`load_collection` (the Bunch of :func:`load_genai_bench`)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from sklearn.utils import Bunch

__all__ = ["AGGREGATES", "MISSING", "load_collection"]

#: How the per-seed values of a (prompt, generator) become one quality value.
AGGREGATES = ("mean", "median", "min", "max")

#: What :func:`load_collection` does with a missing cell: refuse, drop its prompt, or keep NaN.
MISSING = ("raise", "drop", "nan")

_SHOWN = 10


def _pick(rows: list[tuple], wanted: Any, what: str, option: str, allow_empty: bool = False) -> list[tuple]:
    """Rows (id, key, name, ...) selected by name or key, in the order asked; all when ``wanted`` is None."""
    if wanted is None:
        picked = rows
    else:
        if isinstance(wanted, str) or not isinstance(wanted, Iterable):
            raise TypeError(f"{option} must be a list of {what} names or keys, got {type(wanted).__name__}: {wanted!r}")
        picked = []
        for item in wanted:
            hits = [r for r in rows if item in (r[1], r[2])]
            if not hits:
                known = [f"{r[2]} ({r[1]})" for r in rows]
                raise ValueError(f"the store has no {what} {item!r}; its {what}s (name (key)) are {known}")
            if len(hits) > 1:
                raise ValueError(
                    f"{len(hits)} {what}s of the store are named {item!r} (keys {[r[1] for r in hits]}: "
                    f"their settings differ); pass the key of the one wanted in {option}"
                )
            picked.append(hits[0])
        if not picked and not allow_empty:
            raise ValueError(f"{option} is empty; pass at least one {what} name or key, or None for all")
    names = [r[2] for r in picked]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        detail = {n: [r[1] for r in picked if r[2] == n] for n in clashes}
        raise ValueError(
            f"the store holds several {what}s with the same name but different settings {detail}; "
            f"they are different {what}s and are never mixed: choose them by key with {option}=[...]"
        )
    return picked


def _seconds(seconds: np.ndarray, frame, K: int):
    """Mean generation seconds per (prompt, generator) over the seeds that have them; NaN where none."""
    if not len(seconds):
        return frame(np.empty((0, K)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return frame(np.nanmean(seconds, axis=2))


def _check_score(
    value: Any, path: str, prompt_id: int, prompt: str, generator: str, seed_index: int, scorer: str
) -> float:
    """``value`` as a finite float, or a ValueError naming the row it came from."""
    where = (
        f"the store {path!r} holds the score {value!r} of scorer {scorer!r} for prompt {prompt_id} "
        f"({prompt[:40]!r}), generator {generator!r}, seed {seed_index}"
    )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"{where}: a score must be a number; the store was edited by hand or damaged. Delete "
            "that score row (and run collect again to measure it), or collect into a new store"
        )
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(
            f"{where}: a score must be finite; the store was edited by hand or damaged. Delete "
            "that score row (and run collect again to measure it), or collect into a new store"
        )
    return value


def load_collection(
    store: str | os.PathLike,
    scorer: str | None = None,
    aggregate: str = "mean",
    *,
    scorers: Iterable[str] | None = None,
    generators: Iterable[str] | None = None,
    seeds: Iterable[int] | None = None,
    drop_incomplete: bool = False,
    missing: str = "raise",
) -> Bunch:
    """Load a store written by :func:`costroute.collect.collect` as a quality matrix.

    The Bunch has the fields of :func:`load_genai_bench`, so
    ``CostAwareRouter(data.generators).fit(data.prompts, data.quality)`` runs on it. One
    scorer gives the quality (the target the router learns); every scorer's values are in
    ``scores``, for a cascade whose verifying scorer is another one::

        data = load_collection("run.sqlite", scorer="judge")      # quality: the judge
        cascade = CascadeRouter(CostAwareRouter(data.generators), scorer=CLIPScorer(...))
        cascade.fit(data.prompts, data.quality, scores=data.scores["clipscore:clip"])

    Parameters
    ----------
    store : str or path-like
        The SQLite file.
    scorer : str or None, default=None
        Name (or key) of the scorer whose values are ``quality``; ``None`` when the store
        has exactly one scorer.
    aggregate : {"mean", "median", "min", "max"}, default="mean"
        How the values of a (prompt, generator) over seeds become one number.
    scorers : list of str or None, default=None
        Scorers to load into ``scores`` (names or keys); ``None``: all of the store's. The
        quality scorer is always loaded (``[]`` loads it alone).
    generators : list of str or None, default=None
        Generators (names or keys), in the column order wanted; ``None``: all of the
        store's, in the order they were first collected. Two generators with one name and
        different settings must be chosen by key.
    seeds : list of int or None, default=None
        Seed indices to use; ``None``: every seed index stored for these generators.
    drop_incomplete : bool, default=False
        The same as ``missing="drop"`` (kept for existing code).
    missing : {"raise", "drop", "nan"}, default="raise"
        What to do with a cell (prompt, generator, seed, loaded scorer) that is not in the
        store. ``"raise"``: an error that names the missing cells. ``"drop"``: leave out the
        prompts that lack any cell. ``"nan"``: keep every prompt and put NaN where nothing was
        made or scored -- the sparse matrix of a service that sends each prompt to one or a
        few generators, which ``CostAwareRouter(quality_model="lowrank")`` and a
        :class:`~costroute.CascadeRouter` over it fit directly (see docs/routing.md). A
        (prompt, generator) value is then aggregated over the seeds it has (so values may
        rest on different numbers of seeds) and is NaN when it has none, in ``quality`` and
        in every ``scores`` matrix; ``ratings`` keeps NaN per seed. A prompt with no cell at
        all (no score of any loaded scorer for any loaded generator and seed) is left out and
        listed in ``dropped``.

    Returns
    -------
    data : sklearn.utils.Bunch
        Dictionary-like object with the fields:

        prompts : list of str, length n
            In the order they were first collected.
        prompt_ids : list of str
            Their ids in the store, the index of ``quality``.
        quality : pandas.DataFrame of shape (n, K)
            ``scorer``'s values aggregated over seeds; columns the generator names.
        ratings : ndarray of shape (n, K, S)
            ``scorer``'s value of every seed, seed indices ``seed_indices``.
        scores : dict of str to pandas.DataFrame
            Every loaded scorer's (n, K) values aggregated over seeds, by scorer name
            (``scores[scorer]`` equals ``quality``).
        seed_indices : list of int
            The seed indices, the third axis of ``ratings``.
        generators : GeneratorRegistry
            The K generators, made again from the stored settings
            (:func:`~costroute.collect.rebuild_generator`): a
            :class:`~costroute.generators.DiffusersGenerator` or
            :class:`~costroute.generators.DeepFloydIFGenerator` (presets included) that
            generates with the collected model and settings, at the stored cost; any other
            generator (a ``CallableGenerator``, a model folder that is gone) is a plain
            :class:`~costroute.generators.GeneratorSpec` that routes but cannot make images,
            with a ``UserWarning`` naming it and why.
        costs : ndarray of shape (K,)
            ``generators.costs``.
        cost_unit : str
            The cost unit.
        scorer : str
            The quality scorer's name.
        scorer_costs : dict of str to (float or None, str)
            Cost per image and unit of each loaded scorer.
        scorer_specs : dict of str to Scorer or None
            Each loaded scorer made again from the stored settings
            (:func:`~costroute.collect.rebuild_scorer`; nothing loaded until it scores), or
            ``None`` for one that cannot be (a ``CallableScorer``, a model folder that is gone).
        unbuilt : dict of str to str
            Why each generator that could not be made again with its backend could not.
        unbuilt_scorers : dict of str to str
            Why each scorer that could not be made again could not.
        generation_seconds : pandas.DataFrame of shape (n, K)
            Mean measured generation seconds per image.
        frame : pandas.DataFrame
            One row per (prompt, generator, seed, scorer) used: prompt_id, prompt,
            generator, seed_index, seed, scorer, score, cost, generation_seconds,
            scoring_seconds, path.
        dropped : list of str
            Prompts left out: those with a missing cell under ``missing="drop"``, those with no
            cell at all under ``missing="nan"``.
        path : str
            The store that was read.
        description : str
            What was loaded: the store, scorer, generators and aggregation.

    Raises
    ------
    FileNotFoundError
        No store at ``store``.
    ValueError
        Bad arguments, an unknown or ambiguous scorer or generator, or missing cells (the
        message names them) under ``missing="raise"``.

    Examples
    --------
    >>> from costroute import CostAwareRouter
    >>> from costroute.datasets import load_collection
    >>> data = load_collection("run.sqlite")                                    # doctest: +SKIP
    >>> router = CostAwareRouter(data.generators).fit(data.prompts, data.quality)   # doctest: +SKIP

    A service's store, one or two generators per prompt:

    >>> data = load_collection("service.sqlite", missing="nan")                 # doctest: +SKIP
    >>> router = CostAwareRouter(data.generators, quality_model="lowrank").fit(
    ...     data.prompts, data.quality)                                         # doctest: +SKIP
    """
    import pandas as pd
    from sklearn.utils import Bunch

    from ..collect import CollectionStore, rebuild_generator, rebuild_scorer
    from ..generators import GeneratorRegistry

    if aggregate not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {list(AGGREGATES)}, got {aggregate!r}")
    if not isinstance(drop_incomplete, (bool, np.bool_)):
        raise TypeError(f"drop_incomplete must be True or False, got {drop_incomplete!r}")
    if not isinstance(missing, str) or missing not in MISSING:
        raise ValueError(f"missing must be one of {list(MISSING)}, got {missing!r}")
    if drop_incomplete:
        if missing == "nan":
            raise ValueError(
                'drop_incomplete=True is missing="drop" and contradicts missing="nan"; pass only missing=...'
            )
        missing = "drop"
    if scorer is not None and not isinstance(scorer, str):
        raise TypeError(f"scorer must be a scorer name (str) or None, got {type(scorer).__name__}: {scorer!r}")
    with CollectionStore(store, create=False) as db:
        prompt_rows = db.query("SELECT id, text FROM prompts ORDER BY id")
        gen_rows = db.query("SELECT id, key, name, cost, cost_unit, settings FROM generators ORDER BY id")
        scorer_rows = db.query("SELECT id, key, name, cost, cost_unit, settings FROM scorers ORDER BY id")
        if not gen_rows or not scorer_rows or not prompt_rows:
            raise ValueError(f"the store {db.path!r} is empty; fill it with costroute.collect.collect first")
        # the quality scorer
        if scorer is None:
            if len(scorer_rows) > 1:
                raise ValueError(
                    f"the store has {len(scorer_rows)} scorers {[r[2] for r in scorer_rows]}; pass "
                    "scorer=NAME (`--scorer NAME` on the command line) to say which one is the quality"
                )
            quality_row = scorer_rows[0]
        else:
            quality_row = _pick(scorer_rows, [scorer], "scorer", "scorer")[0]
        loaded = _pick(scorer_rows, scorers, "scorer", "scorers", allow_empty=True)
        if quality_row not in loaded:
            loaded = [quality_row] + loaded
        _pick(loaded, None, "scorer", "scorers")  # names unique among the loaded ones
        gens = _pick(gen_rows, generators, "generator", "generators")
        gen_ids = [r[0] for r in gens]
        marks = ",".join("?" * len(gen_ids))
        rows = db.query(
            "SELECT i.prompt_id, i.generator_id, i.seed_index, i.seed, i.cost, i.seconds, i.path, s.scorer_id, "
            f"s.value, s.seconds FROM images i JOIN scores s ON s.image_id = i.id WHERE i.generator_id IN ({marks})",
            gen_ids,
        )
        path = db.path
    units = sorted({r[4] for r in gens})
    if len(units) > 1:
        raise ValueError(
            f"the generators have different cost units {units}; load a subset with one unit via generators=[...]"
        )
    stored_seeds = sorted({r[2] for r in rows})
    if seeds is None:
        seed_list = stored_seeds
    else:
        if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
            raise TypeError(f"seeds must be a list of seed indices, got {type(seeds).__name__}: {seeds!r}")
        seed_list = list(seeds)
        bad = [s for s in seed_list if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 0]
        if not seed_list or bad:
            raise ValueError(f"seeds must be a non-empty list of seed indices >= 0, got {seed_list!r}")
    if not seed_list:
        raise ValueError(
            f"the store {path!r} has no scored image of generators {[r[2] for r in gens]} yet; "
            "run costroute.collect.collect"
        )
    p_index = {r[0]: i for i, r in enumerate(prompt_rows)}
    g_index = {gid: k for k, gid in enumerate(gen_ids)}
    s_index = {s: j for j, s in enumerate(seed_list)}
    sc_index = {r[0]: m for m, r in enumerate(loaded)}
    n, K, S, M = len(prompt_rows), len(gens), len(seed_list), len(loaded)
    values = np.full((M, n, K, S), np.nan)
    gen_seconds = np.full((n, K, S), np.nan)
    frame_rows = []
    for pid, gid, s, seed, cost, gsec, img_path, sid, value, ssec in rows:
        if s not in s_index or sid not in sc_index:
            continue
        value = _check_score(
            value, path, pid, prompt_rows[p_index[pid]][1], gens[g_index[gid]][2], s, loaded[sc_index[sid]][2]
        )
        i, k, j, m = p_index[pid], g_index[gid], s_index[s], sc_index[sid]
        values[m, i, k, j] = value
        gen_seconds[i, k, j] = gsec
        frame_rows.append(
            (str(pid), prompt_rows[i][1], gens[k][2], s, seed, loaded[m][2], value, cost, gsec, ssec, img_path)
        )
    absent = np.isnan(values)
    dropped: list[str] = []
    if missing == "nan":
        incomplete = absent.all(axis=(0, 2, 3))  # prompts with no cell at all
        if incomplete.all():
            raise ValueError(
                f"the store {path!r} holds no scored image of these generators, seeds and scorers for any "
                "prompt; run costroute.collect.collect, or choose what to load (generators=, seeds=, scorers=)"
            )
    else:
        incomplete = absent.any(axis=(0, 2, 3))
    if incomplete.any() and missing == "raise":
        cells = np.argwhere(absent)
        shown = [
            f"({prompt_rows[i][1][:40]!r}, generator {gens[k][2]!r}, seed {seed_list[j]}, scorer {loaded[m][2]!r})"
            for m, i, k, j in cells[:_SHOWN]
        ]
        more = f" and {len(cells) - _SHOWN} more" if len(cells) > _SHOWN else ""
        raise ValueError(
            f"the store {path!r} lacks {len(cells)} cell(s) of {int(incomplete.sum())} prompt(s): "
            f"{', '.join(shown)}{more}. Run collect again with these prompts, generators, seeds and scorers to "
            "fill them, choose what to load (generators=, seeds=, scorers=), pass drop_incomplete=True "
            "(`--drop-incomplete` on the command line) to leave those prompts out, or, for a store that "
            'holds only some generators per prompt (a service\'s), missing="nan" (`--missing nan`) to load '
            'NaN in the missing cells: quality_model="lowrank" fits such a matrix'
        )
    if incomplete.any():
        dropped = [prompt_rows[i][1] for i in np.flatnonzero(incomplete)]
        if incomplete.all():
            raise ValueError(
                f"every prompt of the store {path!r} lacks some cell (generator, seed or scorer), so "
                "drop_incomplete=True leaves nothing; run collect to fill the store, or load the cells "
                'there are with missing="nan"'
            )
    keep = np.flatnonzero(~incomplete)
    kept_ids = {prompt_rows[i][0] for i in keep}
    if missing == "nan":  # over the seeds a cell has; NaN (quietly) where it has none
        nan_reduce = {"mean": np.nanmean, "median": np.nanmedian, "min": np.nanmin, "max": np.nanmax}[aggregate]

        def reduce(array: np.ndarray, axis: int) -> np.ndarray:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                return nan_reduce(array, axis=axis)
    else:
        reduce = {"mean": np.mean, "median": np.median, "min": np.min, "max": np.max}[aggregate]
    prompt_ids = [str(prompt_rows[i][0]) for i in keep]
    index = pd.Index(prompt_ids, name="prompt_id")
    columns = pd.Index([r[2] for r in gens], name="generator")

    def frame(array: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(array, index=index.copy(), columns=columns.copy())

    scores = {loaded[m][2]: frame(reduce(values[m][keep], axis=2)) for m in range(M)}
    rebuilt = [rebuild_generator(r[1], r[2], r[3], r[4], r[5]) for r in gens]
    registry = GeneratorRegistry(g for g, _ in rebuilt)
    problems = {r[2]: why for r, (_, why) in zip(gens, rebuilt) if why is not None}
    if problems:
        by_reason: dict[str, list[str]] = {}
        for name, why in problems.items():
            by_reason.setdefault(why, []).append(name)
        warnings.warn(
            "; ".join(f"generator(s) {names} of the store: {why}" for why, names in by_reason.items())
            + ". They route but cannot make images: to generate, build the router over your own generator "
            "objects with the same names",
            UserWarning,
            stacklevel=2,
        )
    scorer_objects = {r[2]: rebuild_scorer(r[1], r[2], r[3], r[4], r[5]) for r in loaded}
    long = pd.DataFrame(
        [row for row in frame_rows if int(row[0]) in kept_ids],
        columns=[
            "prompt_id",
            "prompt",
            "generator",
            "seed_index",
            "seed",
            "scorer",
            "score",
            "cost",
            "generation_seconds",
            "scoring_seconds",
            "path",
        ],
    )
    quality_name = quality_row[2]
    description = (
        f"Collection store {path}\n\n{len(keep)} prompts x {K} generators ({', '.join(columns)}) x {S} seed(s) "
        f"{seed_list}; quality: scorer {quality_name!r}, {aggregate} over seeds; scores: "
        f"{', '.join(repr(r[2]) for r in loaded)}."
        + (
            f" missing='nan': {int(np.isnan(scores[quality_row[2]].to_numpy()).sum())} of {len(keep) * K} quality "
            "cells are NaN (nothing made or scored)."
            if missing == "nan"
            else ""
        )
        + (f" {len(dropped)} {'empty' if missing == 'nan' else 'incomplete'} prompt(s) left out." if dropped else "")
    )
    return Bunch(
        prompts=[prompt_rows[i][1] for i in keep],
        prompt_ids=prompt_ids,
        quality=scores[quality_name].copy(),
        ratings=values[sc_index[quality_row[0]]][keep],
        scores=scores,
        seed_indices=[int(s) for s in seed_list],
        generators=registry,
        costs=registry.costs,
        cost_unit=registry.cost_unit,
        scorer=quality_name,
        scorer_costs={r[2]: (r[3], r[4]) for r in loaded},
        scorer_specs={name: scorer for name, (scorer, _) in scorer_objects.items()},
        unbuilt=problems,
        unbuilt_scorers={name: why for name, (_, why) in scorer_objects.items() if why is not None},
        generation_seconds=_seconds(gen_seconds[keep], frame, K),
        frame=long,
        dropped=dropped,
        path=path,
        description=description,
    )
