"""Reports: mean ± std and median of every routing metric per method, and their Markdown tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._crossval import RoutingCVResult, cross_validate_routing
from ._noise_ceiling import _add_interaction
from ._scores import _summarise


def routing_report(
    result: Any,
    prompts: Sequence[str] | None = None,
    quality: Any = None,
    *,
    pooled: bool = False,
    **cv_kwargs: Any,
) -> pd.DataFrame:
    """Mean ± std and median of every routing metric per method, per fold or pooled.

    Parameters
    ----------
    result : RoutingCVResult, or estimator / dict of estimators
        A finished cross-validation, or routers to cross-validate now with
        ``cross_validate_routing(result, prompts, quality, **cv_kwargs)``.
    prompts, quality : optional
        Required when ``result`` is a router or dict of routers.
    pooled : bool, default=False
        Summarise :meth:`RoutingCVResult.pooled_scores` (one curve per repeat over all
        prompts, from the routers' out-of-fold predictions and the cascades' pooled curves)
        instead of the per-fold scores, and add the per-fold median of each metric beside it
        (``<metric>_fold_median``).
    **cv_kwargs
        Passed to :func:`cross_validate_routing`.

    Returns
    -------
    DataFrame
        One row per method (single generators by cost, then the random mixture, the routers,
        the cascades and the oracle(s)), columns ``kind``, ``n_folds`` and ``<metric>_mean``,
        ``<metric>_std``, ``<metric>_median`` for each metric (over all test folds -- and
        raters, for the split-rater evaluation --, std with ``ddof=1``; over repeats when
        ``pooled``, where ``n_folds`` counts repeats). The cost-to-reach metrics (``cost_50``,
        ``cost_80``) are averaged over the folds where the target was reached, and
        ``<metric>_reached`` gives the share of such folds (``inf`` mean when none); their
        median is over all folds, an unreached fold counting as ``inf``. When ``pooled``, each
        metric's ``<metric>_fold_median`` follows its ``<metric>_median``: the median over the
        test folds of the per-fold scores (NaN for a method without per-fold rows). Then
        ``interaction_r_mean`` / ``interaction_r_std``: each router's
        :func:`interaction_r` between its out-of-fold predictions (all prompts, one value per
        repeat) and the true quality, mean and std over repeats (NaN for other methods and
        for the split-rater evaluation); and, when the cross-validation was given
        ``ratings=``, ``interaction_ceiling_mean``: the :func:`noise_ceiling` ``ceiling_r`` of
        those ratings on the router rows (one number per data set, no std).

    Notes
    -----
    Metrics: quality (mean true quality at λ=0), gain (quality − best single generator's
    quality on the fold), cost (mean normalised cost at λ=0), auc, apgr, saving
    (cost_hull(q_best)/cost(q_best), 0 on a fold where the curve never reaches q_best),
    cost_50 / cost_80 (least normalised cost reaching 50 % / 80 % of the way from the
    cheapest to the best single generator's quality), reached_best (share of folds whose
    curve reaches q_best). AUC and APGR are NaN for single generators. A cascade's quality
    and cost are those of its first operating point (λ = 0), and its costs include every
    image and every scoring.

    A saving is a ratio of costs with a long right tail over folds, so a mean of per-fold
    savings is pulled up by the few folds where it is large; the pooled curve reads the
    saving off all prompts at once, and the per-fold median shows the typical fold. Headline
    figures are the pooled ones with the per-fold median beside them
    (:func:`report_to_markdown` with ``median=True``).
    """
    if not isinstance(result, RoutingCVResult):
        if prompts is None or quality is None:
            raise ValueError("routing_report needs prompts and quality when given routers")
        result = cross_validate_routing(result, prompts, quality, **cv_kwargs)
    elif prompts is not None or quality is not None or cv_kwargs:
        raise ValueError("prompts, quality and cv options are only used when routing_report runs the CV")
    if not pooled:
        return _add_interaction(_summarise(result.scores, result.metrics), result)
    report = _summarise(result.pooled_scores(), result.metrics)
    per_fold = _summarise(result.scores, result.metrics)
    for m in result.metrics:
        at = report.columns.get_loc(f"{m}_median") + 1
        report.insert(at, f"{m}_fold_median", per_fold[f"{m}_median"].reindex(report.index))
    return _add_interaction(report, result)


def _special(x: float) -> str | None:
    if np.isinf(x) and x > 0:
        return "never"
    if np.isnan(x):
        return "—"
    if np.isinf(x):
        return "-inf"
    return None


def _spec(*values: float, digits: int) -> str:
    scale = max([abs(v) for v in values if np.isfinite(v)], default=0.0)
    small = 0 < scale < 10.0 ** (1 - digits)  # e.g. costs of 0.003 ± 0.001 at 3 digits
    return f".{max(1, digits - 2)}e" if small else f".{digits}f"


def _fmt(mean: float, std: float, digits: int, reached: float = 1.0, n: int = 0, median: float | None = None) -> str:
    text = _special(mean)
    if text is None:
        spec = _spec(mean, std, digits=digits)
        text = f"{mean:{spec}}" if np.isnan(std) else f"{mean:{spec}} ± {std:{spec}}"
        if reached < 1 and n:
            text += f" ({int(round(reached * n))}/{n})"
    if median is not None and not (_special(mean) and _special(mean) == _special(median)):  # not "never (median never)"
        text += f" (median {_special(median) or format(median, _spec(median, mean, digits=digits))})"
    return text


def report_to_markdown(
    report: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    *,
    digits: int = 3,
    headers: Mapping[str, str] | None = None,
    median: bool = False,
) -> str:
    """Render a :func:`routing_report` as a Markdown table with ``mean ± std`` cells.

    Cost targets reached on only some folds show their mean over those folds followed by
    ``(k/n)``; "never" when no fold reached them; NaN shows as "—". Cells whose mean
    and std are both below ``10**(1 - digits)`` are written in scientific notation.

    With ``median=True`` every cell is followed by the per-fold median, e.g. ``1.250 ±
    0.040 (median 1.050)``: from ``<metric>_fold_median`` in a pooled report
    (``routing_report(result, pooled=True)``, whose mean ± std is over the repeats' pooled
    curves), from ``<metric>_median`` in a per-fold one. The pooled report with
    ``median=True`` is the headline table: figures read off all prompts at once, and the
    typical fold beside them.

    Parameters
    ----------
    report : DataFrame
        Output of :func:`routing_report`.
    metrics : sequence of str, optional
        Metrics to show (default: every ``<m>_mean`` column's metric).
    digits : int, default=3
    headers : mapping, optional
        Column titles per metric.
    median : bool, default=False
        Add the per-fold median to every cell (see above).

    Returns
    -------
    str
    """
    if metrics is None:
        metrics = [col[: -len("_mean")] for col in report.columns if col.endswith("_mean") and col != "fit_time_mean"]
    missing = [m for m in metrics if f"{m}_mean" not in report.columns]
    if missing:
        raise ValueError(
            f"unknown metrics {missing}; the report has {[c[:-5] for c in report.columns if c.endswith('_mean')]}"
        )
    medians = {}
    if median:
        for m in metrics:
            col = f"{m}_fold_median" if f"{m}_fold_median" in report.columns else f"{m}_median"
            if col not in report.columns:
                raise ValueError(f"median=True needs a {m}_median or {m}_fold_median column (see routing_report)")
            medians[m] = col
    headers = dict(headers or {})
    cols = ["method"] + [headers.get(m, m) for m in metrics]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] + ["---:"] * len(metrics)) + "|"]
    for method, row in report.iterrows():
        cells = [str(method)]
        for m in metrics:
            cells.append(
                _fmt(
                    float(row[f"{m}_mean"]),
                    float(row.get(f"{m}_std", np.nan)),
                    digits,
                    float(row.get(f"{m}_reached", 1.0)),
                    int(row.get("n_folds", 0)),
                    float(row[medians[m]]) if m in medians else None,
                )
            )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
