"""Repeated K-fold cross-validation (by prompt) of routers against the baselines.

Every method is scored on the same held-out prompts of every fold: the routers (cloned and
fitted on the fold's training prompts), the cascades (cloned and fitted on the fold's training
prompts and the scores of their images), each single generator, the random-mixture hull and
the oracle. The result keeps the per-fold scores, the out-of-fold predictions, the cascades'
pooled out-of-fold curves and the folds.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from ..routing import _as_costs, _as_matrix
from ._cascades import PooledCascadeTotals, _check_scores, _fit_cascade, _is_cascade, _pool_cascade, _subset_scores
from ._curves import DeferralCurve, _align_columns, deferral_curve, hull_curve, oracle_curve, single_model_points
from ._noise_ceiling import _add_interaction, _check_ratings
from ._plot import plot_deferral
from ._progress import _Progress
from ._scores import (
    _baseline_curves,
    _check_fractions,
    _fold_metrics,
    _lambda0_point,
    _metric_names,
    _summarise,
    _tidy_scores,
)

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes


@dataclass
class RoutingCVResult:
    """Per-fold scores of a cross-validated routing comparison.

    Attributes
    ----------
    scores : DataFrame
        One row per (repeat, fold[, rater], method) with columns ``repeat``, ``fold``,
        ``method``, ``kind`` (``"single"``, ``"hull"``, ``"router"``, ``"cascade"``,
        ``"oracle"``), the metrics listed in ``metrics`` and, for routers and cascades,
        ``fit_time``/``predict_time`` in seconds (a cascade's predict time is the time of its
        ``deferral_points`` on the test fold).
    metrics : tuple of str
        Metric columns of ``scores`` (see :data:`METRICS`).
    generator_names : list of str
        Generator (column) order of the quality matrices.
    normalized_costs : ndarray of shape (n_generators,)
    true_quality : ndarray of shape (n_prompts, n_generators)
        The evaluation target (columns in ``generator_names`` order).
    oof_predictions : dict
        ``{router name: [ndarray (n_prompts, n_generators) per repeat]}``: out-of-fold
        predicted quality, each prompt predicted by the model of the fold that held it out.
        Empty for the split-rater evaluation. Cascades have none: their pooled curves are in
        ``pooled_cascade_curves``.
    models : dict
        ``{(repeat, fold): {method name: fitted router or cascade}}`` when
        ``return_models=True``.
    info : dict
        Settings (cv, n_repeats, random_state, ...) and timings.
    test_indices : dict
        ``{(repeat, fold): ndarray of int}``: the row indices of the test fold's prompts, the
        same for every method. Within a repeat of K-fold cross-validation they partition the
        prompts; the training prompts of a fold are all the others.
    cascade_curves : dict
        ``{(repeat, fold): {cascade name: DeferralCurve}}``: each cascade's operating points on
        the test fold (from its ``deferral_points``; costs include every image and every
        scoring, so they may exceed 1). Empty when no cascade was evaluated.
    pooled_cascade_curves : dict
        ``{repeat: {cascade name: DeferralCurve}}``: each cascade's pooled out-of-fold curve
        (int ``cv`` only). At every value of a sweep grid common to all folds of the repeat,
        every prompt is handled by the fold model that did not see it, and the point is (mean
        cost, mean true quality) over all prompts. See :func:`cross_validate_routing` for the
        grid. :meth:`pooled_scores`, :meth:`curves` and :meth:`plot` use these curves.
    pooled_cascade_totals : dict
        ``{repeat: {cascade name: PooledCascadeTotals}}``: the exact per-fold sums behind each
        pooled curve -- the grid (``sweep``, and ``parameter``, the ``deferral_points`` keyword
        it went through), ``folds``, ``n_prompts`` per fold and ``cost_sums`` /
        ``quality_sums`` of shape (n_folds, n_points), so that the pooled means weight every
        prompt equally.
    ratings : ndarray of shape (n_prompts, n_generators, n_raters) or None
        The individual ratings passed as ``cross_validate_routing(..., ratings=)``, in the
        column order of ``quality``; :func:`routing_report` then reports the
        :func:`noise_ceiling` of the interaction beside each router's ``interaction_r``.
    """

    scores: pd.DataFrame
    metrics: tuple[str, ...]
    generator_names: list[str]
    normalized_costs: np.ndarray
    true_quality: np.ndarray
    oof_predictions: dict[str, list[np.ndarray]] = field(default_factory=dict)
    models: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    test_indices: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    cascade_curves: dict[tuple[int, int], dict[str, DeferralCurve]] = field(default_factory=dict)
    ratings: np.ndarray | None = None
    pooled_cascade_curves: dict[int, dict[str, DeferralCurve]] = field(default_factory=dict)
    pooled_cascade_totals: dict[int, dict[str, PooledCascadeTotals]] = field(default_factory=dict)

    def summary(self) -> pd.DataFrame:
        """Mean ± std and median over folds per method; the same table as :func:`routing_report`."""
        return _add_interaction(_summarise(self.scores, self.metrics), self)

    def pooled_scores(self) -> pd.DataFrame:
        """Metrics of curves pooled over all prompts, one row per (repeat, method).

        For each repeat, every prompt is routed with the out-of-fold prediction of the model
        that did not see it, and the curves of routers, single generators, hull and oracle are
        computed on the whole data set at once (larger test set, less noisy ``q_best`` than
        per fold). Cascades (kind ``"cascade"``) contribute their pooled out-of-fold curves
        (``pooled_cascade_curves``; quality and cost are the curve's first point, as per
        fold). Every curve goes through the same metrics as a fold's. Baselines are the same in
        every repeat.
        """
        if not self.oof_predictions and not self.pooled_cascade_curves:
            raise ValueError(
                "pooled scores need out-of-fold predictions or pooled cascade curves: run "
                "cross_validate_routing with an int cv (the split-rater evaluation has none)"
            )
        Q, c = self.true_quality, self.normalized_costs
        fractions = self.info.get("fractions", (0.5, 0.8))
        n_rep = max([len(v) for v in self.oof_predictions.values()] + [r + 1 for r in self.pooled_cascade_curves])
        base, hull, oracle, points = _baseline_curves(Q, c, self.generator_names, None)
        oq, oc = _lambda0_point(Q, Q, c)
        rows = []
        for rep in range(n_rep):
            routers = {}
            for name, preds in self.oof_predictions.items():
                if rep >= len(preds) or np.isnan(preds[rep]).any():
                    continue  # this router was not run on every fold of the repeat
                p = preds[rep]
                q0, c0 = _lambda0_point(p, Q, c)
                routers[name] = ("router", deferral_curve(p, Q, c, label=name), q0, c0)
            for name, curve in self.pooled_cascade_curves.get(rep, {}).items():
                routers[name] = ("cascade", curve, float(curve.qualities[0]), float(curve.costs[0]))
            methods = {**base, **routers, "oracle": ("oracle", oracle, oq, oc)}
            for row in _fold_metrics(methods, hull, oracle, points, fractions):
                row.update(repeat=rep, fold=-1)
                rows.append(row)
        return _tidy_scores(rows, fractions)

    def curves(self, repeat: int = 0) -> dict[str, DeferralCurve]:
        """Pooled out-of-fold curves of repeat ``repeat``: routers, cascades, hull and oracle on all prompts.

        Each prompt is routed (or cascaded) by the model that did not see it, so a curve over
        all prompts is out of sample; the hull and oracle use the full true quality matrix.
        """
        c = self.normalized_costs
        Q = self.true_quality
        out = {}
        for name, preds in self.oof_predictions.items():
            if not 0 <= repeat < len(preds):
                raise ValueError(f"repeat must be in [0, {len(preds) - 1}], got {repeat}")
            out[name] = deferral_curve(preds[repeat], Q, c, label=name)
        if self.pooled_cascade_curves and not self.oof_predictions and repeat not in self.pooled_cascade_curves:
            raise ValueError(f"repeat must be one of {sorted(self.pooled_cascade_curves)}, got {repeat}")
        out.update(self.pooled_cascade_curves.get(repeat, {}))
        out["random mixture"] = hull_curve(Q, c)
        out["oracle"] = oracle_curve(Q, c)
        return out

    def plot(
        self, repeat: int = 0, *, routers: Sequence[str] | None = None, ax: Any = None, title: str | None = None
    ) -> Axes:
        """Plot pooled out-of-fold curves (see :meth:`curves`) and the single-generator points."""
        curves = self.curves(repeat)
        if routers is not None:
            valid = [*self.oof_predictions, *self.pooled_cascade_curves.get(repeat, {})]
            unknown = [r for r in routers if r not in valid]
            if unknown:
                raise ValueError(f"unknown routers {unknown}; valid: {valid}")
            curves = {k: v for k, v in curves.items() if k in routers or k in ("random mixture", "oracle")}
        points = single_model_points(self.true_quality, self.normalized_costs, self.generator_names)
        return plot_deferral(curves, points, ax=ax, title=title)


def _coerce_routers(routers: Any, allow_cascades: bool = False) -> dict[str, Any]:
    """``{name: estimator}`` from one estimator or a dict; cascades only when ``allow_cascades``."""
    wanted = "fit and predict_quality" + (
        " (a router) or fit and deferral_points (a cascade)" if allow_cascades else ""
    )

    def ok(est: Any) -> bool:
        if allow_cascades and _is_cascade(est):
            return True
        return hasattr(est, "fit") and hasattr(est, "predict_quality")

    if isinstance(routers, Mapping):
        if not routers:
            raise ValueError("routers must not be empty")
        out = {}
        for name, est in routers.items():
            if not isinstance(name, str):
                raise TypeError(f"router names must be str, got {name!r}")
            if not ok(est):
                raise TypeError(f"router {name!r} must have {wanted}, got {type(est).__name__}")
            out[name] = est
        return out
    if hasattr(routers, "fit") and hasattr(routers, "predict_quality"):
        return {"router": routers}
    if allow_cascades and _is_cascade(routers):
        return {"cascade": routers}
    raise TypeError(
        f"routers must be an estimator with {wanted}, or a dict name -> estimator, got {type(routers).__name__}"
    )


def _as_prompt_list(prompts: Any) -> list[str]:
    if isinstance(prompts, (str, bytes)):
        raise TypeError("prompts must be a sequence of str, not a single string")
    prompts = list(prompts)
    bad = [p for p in prompts if not isinstance(p, str)]
    if bad:
        raise TypeError(f"prompts must all be str, got {type(bad[0]).__name__}: {bad[0]!r}")
    return prompts


def _make_splits(cv: Any, n_repeats: int, random_state: Any, n: int) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """(repeat, fold, train, test) for every split, shared by all methods."""
    from sklearn.model_selection import RepeatedKFold

    if isinstance(cv, numbers.Integral) and not isinstance(cv, bool):
        if cv < 2:
            raise ValueError(f"cv must be >= 2 folds, got {cv}")
        if cv > n:
            raise ValueError(f"cv={cv} folds need at least {cv} prompts, got {n}")
        if isinstance(n_repeats, bool) or not isinstance(n_repeats, numbers.Integral) or n_repeats < 1:
            raise ValueError(f"n_repeats must be an integer >= 1, got {n_repeats!r}")
        splitter = RepeatedKFold(n_splits=int(cv), n_repeats=int(n_repeats), random_state=random_state)
        idx = np.arange(n)
        return [(s // cv, s % cv, tr, te) for s, (tr, te) in enumerate(splitter.split(idx))]
    if hasattr(cv, "split"):
        idx = np.arange(n)
        return [(0, s, tr, te) for s, (tr, te) in enumerate(cv.split(idx))]
    raise TypeError(f"cv must be an int (number of folds) or a splitter with split(), got {cv!r}")


def _fit_predict(name: str, estimator: Any, p_train: list[str], y_train: Any, p_test: list[str], K: int):
    """Clone and fit one router on a training fold, predict the test fold's quality.

    Returns the fitted clone, its (n_test, K) predictions and (fit seconds, predict seconds).
    """
    model = clone(estimator)
    t0 = time.perf_counter()
    model.fit(p_train, y_train)
    t1 = time.perf_counter()
    pred = _as_matrix(model.predict_quality(p_test), f"{name}.predict_quality")
    t2 = time.perf_counter()
    if pred.shape != (len(p_test), K):
        raise ValueError(f"{name}.predict_quality returned shape {pred.shape}, expected {(len(p_test), K)}")
    return model, pred, (t1 - t0, t2 - t1)


def _check_method_names(router_names: Iterable[str], generator_names: Iterable[str], reserved: Iterable[str]) -> None:
    taken = set(generator_names) | set(reserved)
    clash = sorted(set(router_names) & taken)
    if clash:
        raise ValueError(f"router names {clash} clash with generator or baseline names {sorted(taken)}; rename them")


def _check_flag(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {type(value).__name__}: {value!r}")
    return bool(value)


def cross_validate_routing(
    routers: Any,
    prompts: Sequence[str],
    quality: Any,
    *,
    normalized_costs: Any = None,
    cv: int | Any = 5,
    n_repeats: int = 3,
    random_state: int | np.random.RandomState | None = None,
    lambdas: int | Sequence[float] | np.ndarray | None = None,
    fractions: Sequence[float] = (0.5, 0.8),
    return_models: bool = False,
    verbose: int = 0,
    progress: bool = True,
    scores: Any = None,
    ratings: Any = None,
) -> RoutingCVResult:
    """Repeated K-fold cross-validation (by prompt) of routers and cascades against the baselines.

    Every router is cloned and fitted on the training prompts of each fold and evaluated on
    the held-out prompts; the single generators, the random-mixture hull and the oracle are
    evaluated on the same held-out prompts, so every method sees exactly the same folds.

    A *cascade* -- any method with a ``deferral_points`` method, such as
    :class:`~costroute.CascadeRouter` or :class:`~costroute.cascade.ThresholdCascade` -- is
    cloned and fitted on the same training prompts with the scores of their images,
    ``fit(prompts_train, y_train, scores=scores_train)`` (scores are seen on training folds
    only), and evaluated on the test fold from ``deferral_points(prompts_test, y_test,
    scores_test)``, with kind ``"cascade"``. Its curve is those operating points: a prompt's
    cost is the sum of the normalised costs of every image generated for it plus every
    scoring (it may exceed 1: points beyond cost 1 add no AUC area), its quality the true
    quality of the image returned. It goes through the same metrics as a router's curve (AUC
    on ``[c̃_min, 1]`` of the running maximum, APGR against the same hull and one-image
    oracle, saving and cost at quality); its ``quality`` and ``cost`` (at λ = 0) are its
    first point.

    With an int ``cv``, each cascade also gets a *pooled out-of-fold curve* per repeat
    (``result.pooled_cascade_curves``, scored by :meth:`RoutingCVResult.pooled_scores`): every
    fold's fitted cascade is evaluated on its own test prompts at one grid common to all
    folds of the repeat, so that at each grid value every prompt is handled by the fold model
    that did not see it, and the point is the mean cost and mean true quality over all
    prompts (exact per-prompt sums are kept in ``result.pooled_cascade_totals``). The grid:
    the folds' own sweep when they all swept the same values (an explicit ``lambdas`` array);
    for a cascade that sweeps ``lambdas`` (:class:`~costroute.CascadeRouter`), 0 plus 48
    values spaced geometrically from a thousandth to ten times the λ at which the true
    quality of all prompts routes everything to the cheapest generator
    (``lambda_grid(Q, c, n=2)[-1]``; evaluation-only, the same for every method), widened to
    and including the smallest positive and the largest λ of each fold's own sweep; for a
    cascade that sweeps ``thresholds`` (:class:`~costroute.cascade.ThresholdCascade`), the
    union of the folds' own thresholds. A cascade whose ``deferral_points`` takes no grid
    and whose folds swept different values has no pooled curve (its name is listed in
    ``result.info["unpooled_cascades"]``). ``result.info["pooled_cascade_time"]`` is the time
    these extra evaluations took.

    Parameters
    ----------
    routers : estimator or dict of str -> estimator
        Unfitted routers (e.g. :class:`~costroute.CostAwareRouter`); each needs ``fit(prompts,
        y)``, ``predict_quality(prompts)`` and, after fit, ``normalized_costs_`` (and ideally
        ``generator_names_``). They are cloned with :func:`sklearn.base.clone` per fold. A
        single estimator is reported as ``"router"`` (a single cascade as ``"cascade"``).
        Cascades (``fit(prompts, y, scores=...)`` and ``deferral_points``, see above) may be
        mixed in; they need ``scores``.
    prompts : sequence of str, length n_prompts
    quality : DataFrame or array-like of shape (n_prompts, n_generators)
        True quality. A DataFrame's columns are generator names (reordered to
        ``generator_names_``); an array must be in the routers' generator order.
    normalized_costs : array-like or GeneratorRegistry, optional
        Default: the fitted routers' ``normalized_costs_`` (which must agree).
    cv : int or splitter, default=5
        Number of folds (``RepeatedKFold(cv, n_repeats, random_state)``), or any object with
        ``split(X)`` (then ``n_repeats`` is ignored and everything is repeat 0).
    n_repeats : int, default=3
    random_state : int, RandomState or None
        Seed of the fold assignment.
    lambdas : None, int or array-like, default=None
        λ grid of each router's and the oracle's curve (see :func:`deferral_curve`; ``None`` =
        exact curves). An explicit array is also the sweep of every cascade whose
        ``deferral_points`` takes ``lambdas`` (:class:`~costroute.CascadeRouter`); with
        ``None`` or an int, and for cascades that sweep something else (a
        :class:`~costroute.cascade.ThresholdCascade` sweeps its threshold), each cascade
        sweeps its own default grid.
    fractions : sequence of float, default=(0.5, 0.8)
        Quality targets ``q_cheap + f (q_best - q_cheap)`` for the ``cost_XX`` metrics.
    return_models : bool, default=False
        Keep the fitted routers in ``result.models[(repeat, fold)][name]``.
    verbose : int, default=0
        Print one line per fold to stdout when > 0: each router's fit time and the time so
        far.
    progress : bool, default=True
        Show a tqdm progress bar on stderr over the ``(cv * n_repeats) x n_routers`` fits,
        naming the repeat, fold and router being fitted. ``False`` prints nothing to stderr.
    scores : DataFrame or array-like of shape (n_prompts, n_generators), or a list or dict of them, optional
        A scorer's score of every generator's image for every prompt, with the same column
        rules as ``quality``; for cascades with several scorers, one such matrix per scorer
        (a list, or a dict by scorer name), each cut into folds alike. Required when a
        cascade is evaluated; ignored otherwise.
    ratings : array-like of shape (n_prompts, n_generators, n_raters), optional
        The individual ratings (or seeds' scores) behind ``quality``, generators in the
        column order of ``quality``. Not used for fitting or scoring: kept in
        ``result.ratings`` so that :func:`routing_report` can show the noise ceiling of the
        interaction r (:func:`noise_ceiling`).

    Returns
    -------
    RoutingCVResult
        Per-fold metrics (``result.scores``), out-of-fold predictions, the test folds
        (``result.test_indices``), the cascades' per-fold and pooled curves
        (``result.cascade_curves``, ``result.pooled_cascade_curves``) and ``result.summary()``
        (mean ± std over all ``cv * n_repeats`` folds).

    Raises
    ------
    ValueError
        A cascade is given without ``scores``, or ``scores`` does not match ``quality``.

    Examples
    --------
    >>> from costroute import CostAwareRouter
    >>> from costroute.datasets import load_genai_bench
    >>> from costroute.evaluation import cross_validate_routing, report_to_markdown
    >>> data = load_genai_bench(cost_unit="usd")  # doctest: +SKIP
    >>> routers = {q: CostAwareRouter(data.generators, quality_model=q)
    ...            for q in ("knn", "ridge")}  # doctest: +SKIP
    >>> res = cross_validate_routing(routers, data.prompts, data.quality,
    ...                              cv=5, n_repeats=3, random_state=0)  # doctest: +SKIP
    >>> print(report_to_markdown(res.summary(), ["quality", "auc", "apgr", "saving"]))  # doctest: +SKIP
    """

    models = _coerce_routers(routers, allow_cascades=True)
    cascades = {name for name, est in models.items() if _is_cascade(est)}
    prompts = _as_prompt_list(prompts)
    names_in = [str(col) for col in quality.columns] if isinstance(quality, pd.DataFrame) else None
    Q_all = _as_matrix(quality, "quality")
    n, K = Q_all.shape
    if len(prompts) != n:
        raise ValueError(f"got {len(prompts)} prompts but quality has {n} rows")
    if cascades and scores is None:
        raise ValueError(
            f"{sorted(cascades)} are cascades (they have deferral_points) and need the scores of the "
            f"images: pass scores=, an ({n}, {K}) matrix of every generator's image score, with the "
            "columns of quality"
        )
    if scores is not None:
        _check_scores(scores, quality, n, K)
    ratings = _check_ratings(ratings, n, K)
    fractions = _check_fractions(fractions)
    progress = _check_flag(progress, "progress")
    splits = _make_splits(cv, n_repeats, random_state, n)
    c_fixed = _as_costs(normalized_costs, K) if normalized_costs is not None else None
    prompt_arr = np.asarray(prompts, dtype=object)

    names: list[str] | None = None
    c: np.ndarray | None = c_fixed
    Q_eval: np.ndarray | None = None
    n_rep = max(s[0] for s in splits) + 1
    oof = {name: [np.full((n, K), np.nan) for _ in range(n_rep)] for name in models if name not in cascades}
    fitted: dict[tuple[int, int], dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    test_indices: dict[tuple[int, int], np.ndarray] = {}
    cascade_curves: dict[tuple[int, int], dict[str, DeferralCurve]] = {}
    pool = isinstance(cv, numbers.Integral) and bool(cascades)
    pending: dict[str, list[Any]] = {}  # this repeat's fitted cascades and test folds, for pooling
    pooled_totals: dict[int, dict[str, PooledCascadeTotals]] = {}
    unpooled: set[str] = set()
    t_pool = 0.0
    with _Progress(progress, verbose, len(splits) * len(models), "cross-validating") as bar:
        for i_split, (repeat, fold, train, test) in enumerate(splits):
            t_fold = time.perf_counter()
            test_indices[(repeat, fold)] = test
            y_train = _subset_target(quality, train)
            p_train = prompt_arr[train].tolist()
            p_test = prompt_arr[test].tolist()
            router_curves: dict[str, tuple[str, DeferralCurve, float, float]] = {}
            timings = {}
            for name, est in models.items():
                bar.fitting(f"repeat {repeat} fold {fold}: {name}")
                if name in cascades:
                    y_test, s_test = _subset_target(quality, test), _subset_scores(scores, test, _subset_target)
                    model, points, timings[name] = _fit_cascade(
                        name,
                        est,
                        p_train,
                        y_train,
                        _subset_scores(scores, train, _subset_target),
                        p_test,
                        y_test,
                        s_test,
                        lambdas,
                    )
                    if pool:
                        pending.setdefault(name, []).append((fold, model, p_test, y_test, s_test, points))
                else:
                    model, pred, timings[name] = _fit_predict(name, est, p_train, y_train, p_test, K)
                bar.fitted()
                if return_models:
                    fitted.setdefault((repeat, fold), {})[name] = model
                if names is None:  # first fitted model fixes the column order and costs
                    names = _model_names(model, names_in, K)
                    Q_eval = _as_matrix(_align_columns(quality, names), "quality")
                    if c is None:
                        c = _model_costs(model, K)
                    _check_method_names(models, names, ("random mixture", "oracle"))
                else:
                    _check_consistent(model, name, names, c, c_fixed is not None)
                if name in cascades:
                    sweep, costs, quals = points
                    curve = DeferralCurve(sweep, costs, quals, float(c.min()), name)
                    cascade_curves.setdefault((repeat, fold), {})[name] = curve
                    router_curves[name] = ("cascade", curve, float(quals[0]), float(costs[0]))
                    continue
                oof[name][repeat][test] = pred
                Q_test = Q_eval[test]
                curve = deferral_curve(pred, Q_test, c, lambdas=lambdas, label=name)
                q0, c0 = _lambda0_point(pred, Q_test, c)
                router_curves[name] = ("router", curve, q0, c0)
            assert Q_eval is not None and c is not None and names is not None
            Q_test = Q_eval[test]
            base, hull, oracle, points = _baseline_curves(Q_test, c, names, lambdas)
            oq, oc = _lambda0_point(Q_test, Q_test, c)
            methods = {**base, **router_curves, "oracle": ("oracle", oracle, oq, oc)}
            for row in _fold_metrics(methods, hull, oracle, points, fractions):
                row.update(repeat=repeat, fold=fold)
                if row["method"] in timings:
                    row["fit_time"], row["predict_time"] = timings[row["method"]]
                rows.append(row)
            if pending and (i_split + 1 == len(splits) or splits[i_split + 1][0] != repeat):
                t0 = time.perf_counter()
                for name, folds in pending.items():
                    totals = _pool_cascade(name, folds, Q_eval, c)
                    if totals is None:
                        unpooled.add(name)
                    else:
                        pooled_totals.setdefault(repeat, {})[name] = totals
                pending = {}
                t_pool += time.perf_counter() - t0
            bar.log(
                f"[cross_validate_routing] repeat {repeat} fold {fold}: "
                + ", ".join(f"{k} fit {v[0]:.1f}s" for k, v in timings.items())
                + f" | fold {time.perf_counter() - t_fold:.1f}s, total {time.perf_counter() - t_start:.1f}s",
            )
    assert names is not None and c is not None and Q_eval is not None
    scores = _tidy_scores(rows, fractions)
    return RoutingCVResult(
        scores=scores,
        metrics=_metric_names(fractions),
        generator_names=list(names),
        normalized_costs=c,
        true_quality=Q_eval,
        oof_predictions={k: v for k, v in oof.items()} if isinstance(cv, numbers.Integral) else {},
        models=fitted,
        test_indices=test_indices,
        cascade_curves=cascade_curves,
        ratings=ratings,
        pooled_cascade_curves={
            rep: {name: t.curve(float(c.min()), name) for name, t in per.items()} for rep, per in pooled_totals.items()
        },
        pooled_cascade_totals=pooled_totals,
        info={
            "cv": cv if isinstance(cv, numbers.Integral) else repr(cv),
            "n_repeats": n_repeats,
            "random_state": random_state if isinstance(random_state, (int, type(None))) else repr(random_state),
            "n_prompts": n,
            "lambdas": "exact" if lambdas is None else (lambdas if isinstance(lambdas, int) else "grid"),
            "fractions": fractions,
            "wall_time": time.perf_counter() - t_start,
            "pooled_cascade_time": t_pool,
            "unpooled_cascades": sorted(unpooled),
        },
    )


def _subset_target(quality: Any, idx: np.ndarray) -> Any:
    if isinstance(quality, pd.DataFrame):
        return quality.iloc[idx].reset_index(drop=True)
    return np.asarray(quality)[idx]


def _model_names(model: Any, names_in: list[str] | None, K: int) -> list[str]:
    names = getattr(model, "generator_names_", None)
    if names is not None:
        names = [str(x) for x in names]
        if len(names) != K:
            raise ValueError(f"router has {len(names)} generators but quality has {K} columns")
        return names
    return names_in if names_in is not None else [str(k) for k in range(K)]


def _model_costs(model: Any, K: int) -> np.ndarray:
    if not hasattr(model, "normalized_costs_"):
        raise ValueError("the fitted router has no normalized_costs_; pass normalized_costs= explicitly")
    return _as_costs(model.normalized_costs_, K, "router.normalized_costs_")


def _check_consistent(model: Any, name: str, names: list[str], c: np.ndarray, fixed_costs: bool) -> None:
    other = getattr(model, "generator_names_", None)
    if other is not None and [str(x) for x in other] != names:
        raise ValueError(f"router {name!r} orders generators {list(other)}, others use {names}")
    if not fixed_costs and hasattr(model, "normalized_costs_"):
        oc = _as_costs(model.normalized_costs_, len(names), f"{name}.normalized_costs_")
        if not np.allclose(oc, c):
            raise ValueError(
                f"router {name!r} has normalized_costs_ {oc.tolist()} but another router has "
                f"{c.tolist()}; compare routers over the same generators and costs"
            )
