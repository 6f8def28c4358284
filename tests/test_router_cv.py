"""CostAwareRouterCV: selection by cross-validated deferral AUC, GridSearchCV-style attributes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.dummy import DummyRegressor
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from costroute import CostAwareRouter, CostAwareRouterCV
from costroute.evaluation import cross_validate_routing, deferral_curve
from costroute.quality_models import QUALITY_MODEL_CHOICES
from costroute.router_cv import DEFAULT_GRID_FEATURES, default_param_grid

GENS = {"cheap": 1.0, "expensive": 10.0}
CALLS: list[tuple[str, int, int]] = []


class CountingRegressor(RegressorMixin, BaseEstimator):
    """A ridge regression that records every fit and predict (tag, n_rows)."""

    def __init__(self, tag: str = "a", alpha: float = 1e-6):
        self.tag = tag
        self.alpha = alpha

    def fit(self, X, y):
        CALLS.append(("fit", self.tag, len(X)))
        self.model_ = Ridge(alpha=self.alpha).fit(X, y)
        return self

    def predict(self, X):
        CALLS.append(("predict", self.tag, len(X)))
        return self.model_.predict(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def perfect_data(n: int = 40, seed: int = 0):
    """x = ±1: the expensive generator is 2 better on x = +1 prompts and 2 worse on x = -1 ones."""
    rng = np.random.default_rng(seed)
    x = rng.choice([-1.0, 1.0], size=n)
    X = np.c_[x, rng.normal(size=n)]
    Y = np.c_[np.full(n, 3.0), 3.0 + 2.0 * x]
    return X, Y


def numeric_router(**kw):
    return CostAwareRouter(GENS, features=None, **kw)


def test_chooses_the_candidate_that_routes_perfectly():
    X, Y = perfect_data()
    grid = {"quality_model": [DummyRegressor(), "knn", "ridge"]}
    search = CostAwareRouterCV(numeric_router(), grid, cv=4, random_state=0, progress=False).fit(X, Y)
    assert search.best_index_ == 2
    assert search.best_params_ == {"quality_model": "ridge"}
    # the dummy and the all-neighbours knn predict one row for everyone: equal scores, shared rank
    res = search.cv_results_
    assert res["rank_test_auc"].tolist() == [2, 2, 1]
    np.testing.assert_allclose(res["mean_test_auc"][0], res["mean_test_auc"][1])
    # perfect routing: the predicted routes are the oracle's on every fold
    assert search.predict(X).tolist() == np.where(X[:, 0] > 0, "expensive", "cheap").tolist()


def test_apgr_scoring_gives_one_for_a_perfect_router():
    X, Y = perfect_data()
    search = CostAwareRouterCV(
        numeric_router(),
        {"quality_model": [DummyRegressor(), "ridge"]},
        scoring="apgr",
        cv=3,
        random_state=0,
        progress=False,
    ).fit(X, Y)
    assert search.best_params_ == {"quality_model": "ridge"}
    assert search.best_score_ == pytest.approx(1.0, abs=1e-12)
    assert np.all(search.cv_results_["mean_test_apgr"][0] < 0.5)
    assert "mean_test_auc" not in search.cv_results_


def test_fold_scores_are_the_exact_curve_auc_of_one_fit():
    X, Y = perfect_data(30, seed=3)
    cv = KFold(3, shuffle=True, random_state=1)
    search = CostAwareRouterCV(
        numeric_router(quality_model="knn"), {"quality_model": ["knn"]}, cv=cv, progress=False
    ).fit(X, Y)
    for i, (train, test) in enumerate(cv.split(X)):
        model = numeric_router(quality_model="knn").fit(X[train], Y[train])
        expected = deferral_curve(model.predict_quality(X[test]), Y[test], model.normalized_costs_).auc()
        assert search.cv_results_[f"split{i}_test_auc"][0] == pytest.approx(expected, rel=1e-12)


def test_each_candidate_is_fitted_once_per_fold_and_refit_once():
    X, Y = perfect_data(30)
    CALLS.clear()
    grid = {"quality_model": [CountingRegressor("a"), CountingRegressor("b"), CountingRegressor("c")]}
    search = CostAwareRouterCV(numeric_router(), grid, cv=5, random_state=0, progress=False).fit(X, Y)
    fits = [c for c in CALLS if c[0] == "fit"]
    predicts = [c for c in CALLS if c[0] == "predict"]
    for tag in "abc":
        # 5 inner fits on 24 rows, one prediction of each held-out fold of 6 rows
        assert sorted(n for _, t, n in fits if t == tag and n == 24) == [24] * 5
        assert [n for _, t, n in predicts if t == tag] == [6] * 5
    best = search.best_params_["quality_model"].tag
    assert [c for c in fits if c[2] == 30] == [("fit", best, 30)]  # the refit
    assert len(fits) == 3 * 5 + 1


def test_cv_results_are_shaped_like_grid_search():
    X, Y = perfect_data()
    grid = [{"quality_model": ["knn", "ridge"]}, {"quality_model": ["mlp"], "random_state": np.array([0, 1])}]
    search = CostAwareRouterCV(numeric_router(), grid, cv=3, random_state=0, progress=False).fit(X, Y)
    res = search.cv_results_
    assert search.n_splits_ == 3
    assert len(res["params"]) == 4
    for key in (
        "mean_test_auc",
        "std_test_auc",
        "rank_test_auc",
        "mean_fit_time",
        "std_fit_time",
        "mean_score_time",
        "std_score_time",
        "split0_test_auc",
        "split2_test_auc",
    ):
        assert res[key].shape == (4,), key
    assert "split3_test_auc" not in res
    splits = np.c_[res["split0_test_auc"], res["split1_test_auc"], res["split2_test_auc"]]
    np.testing.assert_allclose(res["mean_test_auc"], splits.mean(axis=1))
    np.testing.assert_allclose(res["std_test_auc"], splits.std(axis=1))
    assert res["param_random_state"].mask.tolist() == [True, True, False, False]
    assert res["rank_test_auc"][search.best_index_] == 1
    assert search.best_score_ == res["mean_test_auc"].max()
    assert res["params"][search.best_index_] == search.best_params_


def test_one_se_rule_takes_the_first_candidate_within_one_standard_error():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 3))
    Y = np.c_[np.full(60, 3.0), 3.0 + X[:, 0] + rng.normal(scale=1.5, size=60)]
    grid = {"quality_model": [DummyRegressor(), "ridge", "knn"]}
    best = CostAwareRouterCV(numeric_router(), grid, cv=5, random_state=0, progress=False).fit(X, Y)
    one_se = CostAwareRouterCV(numeric_router(), grid, cv=5, random_state=0, selection="one_se", progress=False).fit(
        X, Y
    )
    res = one_se.cv_results_
    top = int(np.argmax(res["mean_test_auc"]))
    threshold = res["mean_test_auc"][top] - res["std_test_auc"][top] / np.sqrt(5)
    assert one_se.best_index_ == int(np.flatnonzero(res["mean_test_auc"] >= threshold)[0])
    assert best.best_index_ == top
    # same folds, same scores: only the rule differs
    np.testing.assert_array_equal(res["mean_test_auc"], best.cv_results_["mean_test_auc"])


def test_budget_and_penalty_stay_on_the_refitted_router():
    X, Y = perfect_data()
    search = CostAwareRouterCV(
        numeric_router(budget=0.3, cost_penalty=0.1),
        {"quality_model": ["ridge", "knn"]},
        cv=3,
        random_state=0,
        progress=False,
    ).fit(X, Y)
    assert search.best_estimator_.budget == 0.3
    assert search.best_estimator_.cost_penalty == 0.1
    plan = search.route(X)
    assert plan.mean_normalized_cost <= 0.3 + 1e-12
    assert plan.generator_names.tolist() == search.best_estimator_.route(X).generator_names.tolist()


def test_methods_delegate_to_best_estimator():
    X, Y = perfect_data()
    search = CostAwareRouterCV(
        numeric_router(cost_penalty=0.2), {"quality_model": ["ridge", "knn"]}, cv=3, random_state=0, progress=False
    )
    with pytest.raises(NotFittedError):
        search.predict(X)
    search.fit(X, Y)
    best = search.best_estimator_
    np.testing.assert_array_equal(search.predict_quality(X), best.predict_quality(X))
    assert search.predict(X).tolist() == best.predict(X).tolist()
    assert search.score(X, Y) == best.score(X, Y)
    assert search.route(X, cost_penalty=5.0).generator_names.tolist() == ["cheap"] * len(X)
    assert search.generator_names_.tolist() == ["cheap", "expensive"]
    np.testing.assert_array_equal(search.normalized_costs_, [0.1, 1.0])


def test_generators_build_the_template_and_text_prompts_work():
    prompts = [
        "a wall",
        "a cat",
        "sky",
        "red",
        "a door",
        "three red kites left of two tall trees at dusk in the fog",
        "a violinist on a bridge in the rain with neon reflections",
        "two cats and a dog playing chess in a library, oil painting",
        "a teapot with blooming tea on a wooden table, macro photograph",
        "an astronaut riding a horse on the moon, detailed illustration",
    ]
    Y = pd.DataFrame({"expensive": [2.0] * 5 + [5.0] * 5, "cheap": [3.0] * 10})
    search = CostAwareRouterCV(
        GENS, {"features": ["complexity"], "quality_model": ["ridge", "knn"]}, cv=2, random_state=0, progress=False
    ).fit(prompts, Y)
    assert isinstance(search.best_estimator_, CostAwareRouter)
    assert search.best_estimator_.random_state == 0
    assert search.predict(prompts).tolist() == ["cheap"] * 5 + ["expensive"] * 5


def test_parameters_are_stored_untouched_and_clone():
    grid = {"quality_model": ["ridge"]}
    search = CostAwareRouterCV(GENS, grid, cv=4, n_jobs=2)
    assert search.router is GENS and search.param_grid is grid
    params = clone(search).get_params(deep=False)
    assert params["param_grid"] == grid and params["cv"] == 4 and params["n_jobs"] == 2
    assert params["selection"] == "best" and params["scoring"] == "auc"


def test_threads_give_the_same_scores():
    X, Y = perfect_data(40, seed=2)
    grid = {"quality_model": ["ridge", "knn", DummyRegressor()]}
    one = CostAwareRouterCV(numeric_router(), grid, cv=4, random_state=0, progress=False).fit(X, Y)
    two = CostAwareRouterCV(numeric_router(), grid, cv=4, random_state=0, n_jobs=2, progress=False).fit(X, Y)
    np.testing.assert_array_equal(one.cv_results_["mean_test_auc"], two.cv_results_["mean_test_auc"])


def test_progress_bar_goes_to_stderr_and_can_be_switched_off(capsys):
    X, Y = perfect_data(20)
    CostAwareRouterCV(numeric_router(), {"quality_model": ["ridge"]}, cv=2, progress=True).fit(X, Y)
    out, err = capsys.readouterr()
    assert out == "" and "CostAwareRouterCV" in err
    CostAwareRouterCV(numeric_router(), {"quality_model": ["ridge"]}, cv=2, progress=False).fit(X, Y)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"param_grid": {}}, r"param_grid must not be empty"),
        ({"param_grid": []}, r"param_grid must not be empty"),
        ({"param_grid": {"quality_modle": ["knn"]}}, r"unknown parameter 'quality_modle'.*quality_model"),
        ({"param_grid": {"cost_penalty": [0.0, 1.0]}}, r"may not search 'cost_penalty'"),
        ({"param_grid": {"generators": [GENS]}}, r"may not search 'generators'"),
        ({"param_grid": {"quality_model": "knn"}}, r"param_grid\['quality_model'\] must be a non-empty list.*'knn'"),
        ({"param_grid": {"quality_model": []}}, r"param_grid\['quality_model'\] must be a non-empty list"),
        ({"cv": 1}, r"cv must be an int >= 2.*cv=1"),
        ({"cv": 100}, r"cv=100 inner folds need at least 100 prompts"),
        ({"cv": "three"}, r"cv must be an int >= 2 or a splitter.*'three'"),
        ({"scoring": "mse"}, r"scoring must be one of \['auc', 'apgr'\], got 'mse'"),
        ({"selection": "simplest"}, r"selection must be one of \['best', 'one_se'\]"),
        ({"n_jobs": 0}, r"n_jobs must be None or a non-zero int"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    X, Y = perfect_data(20)
    params = {"param_grid": {"quality_model": ["ridge"]}, "cv": 2, "progress": False, **kwargs}
    with pytest.raises(ValueError, match=match):
        CostAwareRouterCV(numeric_router(), **params).fit(X, Y)


def test_bad_grid_type_and_y_length():
    X, Y = perfect_data(20)
    with pytest.raises(TypeError, match="param_grid must be a dict"):
        CostAwareRouterCV(numeric_router(), "knn", progress=False).fit(X, Y)
    with pytest.raises(ValueError, match="y must hold the measured quality of each of the 20 prompts"):
        CostAwareRouterCV(numeric_router(), {"quality_model": ["ridge"]}, progress=False).fit(X, Y[:10])


def test_default_grid_is_features_by_the_available_models():
    grid = default_param_grid()
    assert grid["features"] == list(DEFAULT_GRID_FEATURES)
    assert "transformer" not in grid["quality_model"] and "gbm" not in grid["quality_model"]
    assert set(grid["quality_model"]) <= set(QUALITY_MODEL_CHOICES)
    assert {"ridge", "knn", "mlp"} <= set(grid["quality_model"])
    assert ("lowrank" in grid["quality_model"]) == ("lowrank" in QUALITY_MODEL_CHOICES)


def test_works_as_a_router_inside_cross_validate_routing():
    X, Y = perfect_data(40)
    prompts = [f"p{i}" for i in range(40)]
    table = dict(zip(prompts, X))

    class Lookup(StandardScaler):  # prompt -> its numeric row, so the CV's prompts can be strings
        def fit(self, P, y=None):
            return self

        def transform(self, P):
            return np.array([table[p] for p in P])

    search = CostAwareRouterCV(
        CostAwareRouter(GENS, features=Lookup()),
        {"quality_model": [DummyRegressor(), "ridge"]},
        cv=3,
        random_state=0,
        progress=False,
    )
    res = cross_validate_routing(
        {"cv": search}, prompts, Y, cv=4, n_repeats=1, random_state=0, progress=False, return_models=True
    )
    row = res.scores[res.scores["method"] == "cv"]
    oracle = res.scores[res.scores["method"] == "oracle"]
    np.testing.assert_allclose(row["auc"].to_numpy(), oracle["auc"].to_numpy())
    assert {m["cv"].best_params_["quality_model"] for m in res.models.values()} == {"ridge"}


def test_in_a_pipeline_after_a_numeric_transformer():
    X, Y = perfect_data()
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            (
                "router",
                CostAwareRouterCV(
                    numeric_router(), {"quality_model": ["ridge", "knn"]}, cv=3, random_state=0, progress=False
                ),
            ),
        ]
    )
    pipe.fit(X, Y)
    assert pipe.predict(X).tolist() == np.where(X[:, 0] > 0, "expensive", "cheap").tolist()
    assert pipe.named_steps["router"].best_params_ == {"quality_model": "ridge"}


def test_skops_round_trip(tmp_path):
    from costroute.io import load, save

    X, Y = perfect_data()
    search = CostAwareRouterCV(
        numeric_router(), {"quality_model": ["ridge", "knn"]}, cv=3, random_state=0, progress=False
    ).fit(X, Y)
    path = save(search, tmp_path / "search.skops")
    back = load(path)
    assert isinstance(back, CostAwareRouterCV)
    np.testing.assert_array_equal(back.predict_quality(X), search.predict_quality(X))
    assert back.best_params_ == search.best_params_
    np.testing.assert_array_equal(back.cv_results_["mean_test_auc"], search.cv_results_["mean_test_auc"])


def test_a_nested_parameter_the_template_lacks_is_named_before_fitting():
    from sklearn.utils import get_tags

    search = CostAwareRouterCV(
        CostAwareRouter({"a": 1.0, "b": 2.0}, features=None, quality_model="ridge"),
        {"quality_model__alpha": [1.0]},
        cv=2,
        progress=False,
    )
    get_tags(search)  # tags never crash on a bad grid
    with pytest.raises(ValueError, match="nested parameter 'quality_model__alpha'.*quality_model=Ridge"):
        search.fit(np.arange(8.0).reshape(4, 2), np.ones((4, 2)))
    ok = CostAwareRouterCV(
        CostAwareRouter({"a": 1.0, "b": 2.0}, features=None, quality_model=Ridge()),
        {"quality_model__alpha": [0.1, 1.0]},
        cv=2,
        progress=False,
    )
    X = np.random.default_rng(0).normal(size=(12, 2))
    ok.fit(X, np.column_stack([X[:, 0], -X[:, 0]]))
    assert ok.best_params_["quality_model__alpha"] in (0.1, 1.0)
