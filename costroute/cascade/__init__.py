"""Cascades: route, generate, score the image, and escalate when another generator pays.

:class:`CascadeRouter` wraps a :class:`~costroute.CostAwareRouter` with a scorer that looks at
the image; :class:`ThresholdCascade` is the two-generator score-threshold baseline
(DiffServe-style) it is compared with. Both ``simulate`` on measured matrices and return a
:class:`CascadeOutcome` or :class:`ThresholdOutcome`.

The package is organised by concept: ``_router`` (the estimator and its outcome),
``_posterior`` (:class:`QualityPosterior`, the joint Gaussian model of quality and score),
``_policy`` (the verify-and-escalate policy, for simulation and generation), ``_threshold``
(the baseline) and ``_outcome`` (what both outcomes share). Import from ``costroute.cascade``.
"""

from ._outcome import OutcomeSummary
from ._posterior import QualityPosterior, expected_improvement
from ._router import CascadeOutcome, CascadeRouter
from ._threshold import ThresholdCascade, ThresholdOutcome

__all__ = [
    "CascadeOutcome",
    "CascadeRouter",
    "OutcomeSummary",
    "QualityPosterior",
    "ThresholdCascade",
    "ThresholdOutcome",
    "expected_improvement",
]
