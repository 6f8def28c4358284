"""Evaluation of cost-aware routers and cascades: deferral curves, AUC, APGR, cost at quality, baselines.

These are the definitions every figure of costroute is computed with. For a test set with
true quality ``Q`` (n x K) and normalised costs ``c̃`` (K,), with ``c̃_min = min_k c̃_k``:

* **Routing rule** -- ``a(i) = argmax_k q̂_k(x_i) - λ c̃_k`` for a cost penalty ``λ >= 0``;
  exact ties go to the cheaper generator (equal costs: the lower column index). This is
  :class:`~costroute.CostAwareRouter`'s rule; the router additionally counts utilities within
  a relative 1e-12 as tied, so the two can differ only on such float-level near-ties.
* **Operating point** of a routing ``a`` -- ``(mean_i c̃[a(i)], mean_i Q[i, a(i)])``.
* **Deferral curve** -- the operating points along a λ grid that includes 0 and a λ large
  enough that every prompt goes to the cheapest generator. By default the curve is *exact*:
  computed from every λ at which some prompt changes generator, it lists every distinct
  routing the predictor produces as λ grows, once (:func:`lambda_grid`).
* **Single-model hull** ("random mixture") -- the upper concave envelope of the K
  single-generator points ``(c̃_k, mean_i Q[i, k])`` (:func:`hull_curve`).
* **Oracle** -- routing with the true ``Q`` in place of ``q̂`` (:func:`oracle_curve`). It is an
  upper bound that rating noise inflates (see :func:`split_rater_cross_validate`).
* **AUC** -- the area under the running maximum of quality over normalised cost on
  ``[c̃_min, 1]`` (:func:`auc`). Consecutive operating points (sorted by cost) are joined by
  straight lines -- randomising between two routings reaches every point of the segment,
  exactly as for the hull -- and the curve is extended flat to the right of its last point.
  To the *left* of its first point a curve reaches no quality at all, so that stretch adds
  zero area (curves built here always start at ``c̃_min``, the all-cheapest routing, so this
  only matters for hand-made curves). The area is divided by ``1 - c̃_min``: an AUC is a mean
  quality over the budget range, in the units of ``Q``.
* **APGR** -- ``(AUC_router - AUC_hull) / (AUC_oracle - AUC_hull)`` (:func:`apgr`).
* **Cost at quality q** -- the least normalised cost at which the running-max curve (with the
  same straight-line joins) reaches ``q``; ``inf`` when it never does
  (:func:`cost_at_quality`). The headline saving is ``cost_hull(q_best) / cost_router(q_best)``
  with ``q_best`` the best single generator's mean quality (:func:`cost_saving`).
* **Cascades** (:class:`~costroute.CascadeRouter`, :class:`~costroute.cascade.ThresholdCascade`)
  -- a prompt's cost is the sum of the normalised costs of every image generated for it plus
  every scoring (so it may exceed 1); its quality is the true quality of the image returned.
  A cascade's curve is its operating points over its sweep (λ, or a threshold); curves, hull,
  oracle (the one-image oracle) and AUC are otherwise as above -- points beyond cost 1 add no
  area -- so routers and cascades share one table, and a cascade's quality at λ = 0 is its
  first point. Scores are fitted on training folds only (``cross_validate_routing(...,
  scores=S)``).
* **Interaction r** -- the correlation of the double-centred predicted and true matrices
  (:func:`interaction_r`): routing depends only on that prompt x generator interaction.
  :func:`noise_ceiling` gives the reliability of individual ratings' interaction and the
  r a perfect predictor could reach against their mean.
* Figures are always out of sample: :func:`cross_validate_routing` runs repeated K-fold
  cross-validation by prompt with the same folds for every method; :func:`routing_report`
  gives mean ± std and median over the folds.
* **Pooled out-of-fold curve** -- for each repeat, every prompt is handled by the model of the
  fold that held it out, and one curve over all prompts goes through the metrics above
  (``routing_report(result, pooled=True)``). A router routes each prompt with its
  out-of-fold predicted quality. A cascade is evaluated fold by fold at one sweep grid
  common to all folds of the repeat (each fold's fitted cascade on its own test prompts);
  each point is the mean cost and mean true quality over all prompts, from exact per-fold
  sums (``result.pooled_cascade_curves``). The grid of a λ-sweeping cascade is 0 and 48
  geometric values from 10⁻³ to 10 times the λ at which the true quality of all prompts
  sends every prompt to the cheapest generator (evaluation-only, the same for every method),
  widened to and including each fold's own smallest positive and largest λ; a
  threshold-sweeping cascade uses the union of the folds' thresholds.
* **Headline figures** are the pooled ones with the median over the test folds beside them
  (``report_to_markdown(routing_report(result, pooled=True), median=True)``): a saving is a
  ratio with a long tail over folds, and a mean of per-fold savings is never reported alone.

Examples
--------
>>> import numpy as np
>>> from costroute.evaluation import deferral_curve, hull_curve, oracle_curve, apgr
>>> Q = np.array([[1.0, 3.0], [2.0, 2.0], [1.0, 2.0]])   # 3 prompts x 2 generators
>>> c = np.array([0.2, 1.0])                             # normalised costs
>>> oracle = oracle_curve(Q, c)
>>> oracle.to_frame().round(4)
   lambda    cost  quality
0   0.000  0.7333   2.3333
1   1.875  0.4667   2.0000
2   2.500  0.2000   1.3333
>>> hull = hull_curve(Q, c)
>>> round(apgr(oracle.auc(), hull.auc(), oracle.auc()), 6)
1.0
"""

from ..routing import lambda_grid, route_with_penalty
from ._crossval import RoutingCVResult, cross_validate_routing
from ._curves import DeferralCurve, deferral_curve, hull_curve, operating_point, oracle_curve, single_model_points
from ._metrics import apgr, auc, cost_at_quality, cost_saving, quality_at_cost
from ._noise_ceiling import NoiseCeiling, interaction_r, noise_ceiling
from ._plot import plot_deferral
from ._report import report_to_markdown, routing_report
from ._scores import METRICS  # noqa: F401  (the metric names, documented, not in __all__)
from ._split_rater import split_rater_cross_validate

__all__ = [
    "DeferralCurve",
    "NoiseCeiling",
    "RoutingCVResult",
    "apgr",
    "auc",
    "cost_at_quality",
    "cost_saving",
    "cross_validate_routing",
    "deferral_curve",
    "hull_curve",
    "interaction_r",
    "lambda_grid",
    "noise_ceiling",
    "operating_point",
    "oracle_curve",
    "plot_deferral",
    "quality_at_cost",
    "report_to_markdown",
    "route_with_penalty",
    "routing_report",
    "single_model_points",
    "split_rater_cross_validate",
]
