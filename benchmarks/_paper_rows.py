"""The rows of paper_table.py beyond the features x quality-model grid.

* ``CostAwareRouterCV`` -- chooses features x quality model by inner 3-fold CV on the deferral
  AUC inside every outer training set (nested: the outer test folds never influence it).
* ``minilm/lowrank pooled`` -- the low-rank model fitted on the outer training fold *plus every
  prompt of another data set* (``costroute.datasets.pool``: each set standardised on its own
  cells, no generator shared by name), its predictions mapped back to the target's scale.
* ``transformer`` -- the fine-tuned MiniLM regressor (``quality_model="transformer"``).

The last two are slow (a pooled fit ~25 s, a transformer fit minutes on 2 cores), so they run
on the first ``--extra-repeats`` repeats' folds -- the same folds every other method uses -- and
are merged into the table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils import Bunch

from costroute import CostAwareRouter, CostAwareRouterCV, GeneratorRegistry
from costroute.datasets import load_agiqa3k, load_genai_bench, pool
from costroute.features import SentenceEmbedder
from costroute.quality_models import LowRankRegressor
from costroute.router_cv import DEFAULT_GRID_QUALITY_MODELS

SELECTED = "CostAwareRouterCV (nested)"
POOLED = "minilm/lowrank pooled"
TRANSFORMER = "transformer"
#: The data set each target is pooled with.
POOL_PARTNER = {"genai_bench_usd": "agiqa3k_alignment", "agiqa3k_alignment": "genai_bench_usd"}
_PARTNER_LOADERS = {
    "genai_bench_usd": lambda: load_genai_bench(cost_unit="usd"),
    "agiqa3k_alignment": lambda: load_agiqa3k(target="alignment"),
}


def selection_router(generators, features, quality_models, seed, quick):
    """CostAwareRouterCV over the grid (the default grid unless ``--quick``)."""
    grid = None
    if quick:
        grid = {"features": list(features), "quality_model": [q for q in quality_models if q != "gbm"]}
    return CostAwareRouterCV(
        CostAwareRouter(generators, random_state=seed), grid, cv=3, random_state=seed, progress=False
    )


def selection_name(model) -> str:
    p = model.best_params_
    return f"{p['features']}/{p['quality_model']}"


class PooledLowRankRouter(BaseEstimator):
    """minilm/lowrank fitted on the training prompts plus every prompt of ``other``.

    ``other`` is a data set (``prompts`` and a ``quality`` DataFrame). Both are standardised on
    their own cells by :func:`costroute.datasets.pool`; the target's predictions are mapped
    back to its own scale. The features are the MiniLM embeddings (cached per text).
    """

    def __init__(self, generators, other=None, random_state=0):
        self.generators = generators
        self.other = other
        self.random_state = random_state

    def fit(self, prompts, y):
        registry = GeneratorRegistry.coerce(self.generators)
        names = list(registry.names)
        quality = y if isinstance(y, pd.DataFrame) else pd.DataFrame(np.asarray(y, dtype=float), columns=names)
        quality = quality[names].reset_index(drop=True)
        pooled = pool(Bunch(prompts=list(prompts), quality=quality), self.other, names=["target", "other"])
        self.embedder_ = SentenceEmbedder(progress=False).fit(pooled.prompts)
        self.model_ = LowRankRegressor(random_state=self.random_state).fit(
            self.embedder_.transform(pooled.prompts), pooled.quality.to_numpy(dtype=float)
        )
        self.columns_ = [pooled.quality.columns.get_loc(g) for g in names]
        self.scale_ = pooled.scale.loc["target"].to_numpy(dtype=float)
        self.generator_names_ = np.asarray(names, dtype=object)
        self.normalized_costs_ = registry.normalized_costs()
        return self

    def predict_quality(self, prompts):
        pred = self.model_.predict(self.embedder_.transform(list(prompts)))[:, self.columns_]
        return pred * self.scale_[1] + self.scale_[0]


def extra_routers(key, generators, seed):
    """The slow rows for data set ``key``: {name: router}."""
    routers = {}
    if key in POOL_PARTNER:
        routers[POOLED] = PooledLowRankRouter(
            generators, other=_PARTNER_LOADERS[POOL_PARTNER[key]](), random_state=seed
        )
    if key == "genai_bench_usd":
        routers[TRANSFORMER] = CostAwareRouter(
            generators, quality_model="transformer", random_state=seed, progress=False
        )
    return routers


__all__ = [
    "DEFAULT_GRID_QUALITY_MODELS",
    "POOLED",
    "SELECTED",
    "TRANSFORMER",
    "extra_routers",
    "selection_name",
    "selection_router",
]
