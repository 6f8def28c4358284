"""Split-rater cross-validation: train on some raters, score on a held-out one.

With several ratings per image, the usual oracle also routes on the scoring rater's noise;
training and scoring on different raters measures how much of its advantage that noise is.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..routing import _as_costs
from ._crossval import (
    RoutingCVResult,
    _as_prompt_list,
    _check_consistent,
    _check_flag,
    _check_method_names,
    _coerce_routers,
    _fit_predict,
    _is_cascade,
    _make_splits,
    _model_costs,
    _model_names,
)
from ._curves import DeferralCurve, deferral_curve
from ._progress import _Progress
from ._scores import _baseline_curves, _check_fractions, _fold_metrics, _lambda0_point, _metric_names, _tidy_scores


def split_rater_cross_validate(
    routers: Any,
    prompts: Sequence[str],
    ratings: Any,
    *,
    generator_names: Sequence[str] | None = None,
    normalized_costs: Any = None,
    cv: int | Any = 5,
    n_repeats: int = 1,
    random_state: int | np.random.RandomState | None = None,
    lambdas: int | Sequence[float] | np.ndarray | None = None,
    fractions: Sequence[float] = (0.5, 0.8),
    verbose: int = 0,
    progress: bool = True,
) -> RoutingCVResult:
    """Cross-validation that trains and evaluates on different raters, to expose rating noise.

    With ``R`` ratings per image (GenAI-Bench has three), for every fold and every held-out
    rater ``r``: routers are fitted on the training prompts with the mean of the *other*
    ``R - 1`` ratings as the target, and every method is scored on the test prompts against
    rater ``r`` alone. Two oracles are reported:

    * ``"oracle"`` routes on rater ``r``'s own ratings -- the usual oracle, which also routes
      on that rater's noise;
    * ``"oracle (other raters)"`` routes on the mean of the other raters' ratings of the *test*
      images and is scored on rater ``r`` -- it knows each image's quality but not rater
      ``r``'s noise.

    The gap between the two oracles is the part of the usual oracle's advantage that comes
    from routing on noise; ``apgr_indep`` is the APGR against the second oracle. (The second
    oracle still sees only an ``R - 1``-rater mean, so it somewhat *understates* what a
    noise-free oracle would reach.) Rater identities are positions in the rating list.

    Parameters
    ----------
    routers : estimator or dict of str -> estimator
        As in :func:`cross_validate_routing`.
    prompts : sequence of str, length n_prompts
    ratings : array-like of shape (n_prompts, n_generators, n_raters)
        Individual ratings, generators in the routers' order (``n_raters >= 2``).
    generator_names : sequence of str, optional
        Column names of the training target DataFrame passed to ``fit`` (a router whose ``y``
        columns must be generator names needs them). Default: pass arrays.
    normalized_costs, cv, n_repeats, random_state, lambdas, fractions
        As in :func:`cross_validate_routing` (``n_repeats`` defaults to 1: each repeat already
        costs ``n_raters`` fits per fold).
    verbose : int, default=0
        Print one line per (fold, held-out rater) to stdout when > 0.
    progress : bool, default=True
        Show a tqdm progress bar on stderr over the ``(cv * n_repeats) x n_raters x n_routers``
        fits. ``False`` prints nothing to stderr.

    Returns
    -------
    RoutingCVResult
        ``scores`` has a ``rater`` column and an extra ``apgr_indep`` metric;
        ``true_quality`` is the all-rater mean and ``test_indices`` holds the test folds.
        ``routing_report`` averages over folds and raters.

    Notes
    -----
    Cascades (:class:`~costroute.CascadeRouter`, :class:`~costroute.cascade.ThresholdCascade`)
    are not supported: their scores are of one image, not per rater. Evaluate them with
    :func:`cross_validate_routing` and ``scores=``.
    """

    cascades = [
        name
        for name, est in (routers.items() if isinstance(routers, Mapping) else [("router", routers)])
        if _is_cascade(est)
    ]
    if cascades:
        raise ValueError(
            f"split_rater_cross_validate does not evaluate cascades, got {cascades}; evaluate them with "
            "cross_validate_routing(..., scores=S)"
        )
    models = _coerce_routers(routers)
    prompts = _as_prompt_list(prompts)
    R3 = np.asarray(ratings, dtype=float)
    if R3.ndim != 3 or R3.shape[2] < 2:
        raise ValueError(f"ratings must have shape (n_prompts, n_generators, n_raters>=2), got {R3.shape}")
    if not np.all(np.isfinite(R3)):
        raise ValueError("ratings must be finite (no NaN): every image needs every rating")
    n, K, n_raters = R3.shape
    if len(prompts) != n:
        raise ValueError(f"got {len(prompts)} prompts but ratings has {n} rows")
    if generator_names is not None:
        generator_names = [str(x) for x in generator_names]
        if len(generator_names) != K:
            raise ValueError(f"got {len(generator_names)} generator_names for {K} generators")
    fractions = _check_fractions(fractions)
    progress = _check_flag(progress, "progress")
    splits = _make_splits(cv, n_repeats, random_state, n)
    c_fixed = _as_costs(normalized_costs, K) if normalized_costs is not None else None
    c = c_fixed
    names: list[str] | None = None
    prompt_arr = np.asarray(prompts, dtype=object)
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    test_indices: dict[tuple[int, int], np.ndarray] = {}
    n_fits = len(splits) * n_raters * len(models)
    with _Progress(progress, verbose, n_fits, "split-rater cross-validating") as bar:
        for repeat, fold, train, test in splits:
            test_indices[(repeat, fold)] = test
            p_train = prompt_arr[train].tolist()
            p_test = prompt_arr[test].tolist()
            for r in range(n_raters):
                t_fold = time.perf_counter()
                others = [j for j in range(n_raters) if j != r]
                target = R3[:, :, others].mean(axis=2)
                held = R3[:, :, r]
                y_train: Any = target[train]
                if generator_names is not None:
                    y_train = pd.DataFrame(y_train, columns=generator_names)
                router_curves: dict[str, tuple[str, DeferralCurve, float, float]] = {}
                timings = {}
                for name, est in models.items():
                    bar.fitting(f"repeat {repeat} fold {fold} rater {r}: {name}")
                    model, pred, timings[name] = _fit_predict(name, est, p_train, y_train, p_test, K)
                    bar.fitted()
                    if names is None:
                        names = _model_names(model, generator_names, K)
                        if generator_names is not None and names != generator_names:
                            raise ValueError(
                                f"router generator order {names} differs from generator_names {generator_names}"
                            )
                        if c is None:
                            c = _model_costs(model, K)
                        _check_method_names(models, names, ("random mixture", "oracle", "oracle (other raters)"))
                    else:
                        _check_consistent(model, name, names, c, c_fixed is not None)
                    q0, c0 = _lambda0_point(pred, held[test], c)
                    router_curves[name] = (
                        "router",
                        deferral_curve(pred, held[test], c, lambdas=lambdas, label=name),
                        q0,
                        c0,
                    )
                assert c is not None and names is not None
                H = held[test]
                base, hull, oracle, points = _baseline_curves(H, c, names, lambdas)
                oq, oc = _lambda0_point(H, H, c)
                T = target[test]
                indep = deferral_curve(T, H, c, lambdas=lambdas, label="oracle (other raters)")
                iq, ic = _lambda0_point(T, H, c)
                methods = {
                    **base,
                    **router_curves,
                    "oracle (other raters)": ("oracle", indep, iq, ic),
                    "oracle": ("oracle", oracle, oq, oc),
                }
                for row in _fold_metrics(methods, hull, oracle, points, fractions, extra_oracle=indep):
                    row.update(repeat=repeat, fold=fold, rater=r)
                    if row["method"] in timings:
                        row["fit_time"], row["predict_time"] = timings[row["method"]]
                    rows.append(row)
                bar.log(
                    f"[split_rater_cross_validate] repeat {repeat} fold {fold} rater {r}: "
                    f"{time.perf_counter() - t_fold:.1f}s, total {time.perf_counter() - t_start:.1f}s",
                )
    assert names is not None and c is not None
    scores = _tidy_scores(rows, fractions, extra=("apgr_indep",))
    return RoutingCVResult(
        scores=scores,
        metrics=_metric_names(fractions, extra=("apgr_indep",)),
        generator_names=list(names),
        normalized_costs=c,
        true_quality=R3.mean(axis=2),
        oof_predictions={},
        test_indices=test_indices,
        ratings=R3,
        info={
            "cv": cv if isinstance(cv, numbers.Integral) else repr(cv),
            "n_repeats": n_repeats,
            "n_raters": n_raters,
            "random_state": random_state if isinstance(random_state, (int, type(None))) else repr(random_state),
            "n_prompts": n,
            "split_rater": True,
            "fractions": fractions,
            "wall_time": time.perf_counter() - t_start,
        },
    )
