"""Bad input to the router and the command: each gets a ValueError/TypeError that says what to fix.

The tables follow the kinds of input a newcomer tries (prompt collections of the wrong kind,
quality matrices of the wrong shape or with holes, bad costs, penalties and budgets, faulty
custom regressors, text with numeric features, invalid Unicode, bad command-line arguments).
The fuzz tests then throw generated inputs at ``fit`` and ``route`` and require that every call
either returns a valid plan or raises ValueError/TypeError -- never anything else.
"""

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.neighbors import KNeighborsRegressor

from costroute import BudgetWarning, CostAwareRouter, GeneratorSpec
from costroute.cli import main

COSTS = {"turbo": 1.0, "sd21": 4.0, "sdxl": 10.0}
NAMES = list(COSTS)
PROMPTS = [
    "a white wall",
    "a red apple",
    "three kites left of two trees at dusk",
    "a crowded park at dusk with a red kite",
    "a dot",
    "a blue cube",
]
QUALITY = np.array(
    [[4.0, 4.1, 4.2], [3.8, 4.0, 4.1], [1.0, 2.5, 4.5], [1.5, 2.0, 4.0], [3.0, 3.0, 3.0], [4.0, 4.0, 4.1]]
)


def fast_router(**params):
    params = {"generators": COSTS, "features": "complexity", "quality_model": "ridge", **params}
    return CostAwareRouter(**params)


@pytest.fixture(scope="module")
def fitted():
    return fast_router().fit(PROMPTS, QUALITY)


# ---------------------------------------------------------------- prompts (X)
@pytest.mark.parametrize(
    "X, error, match",
    [
        ([], ValueError, "X is empty: pass at least one prompt"),
        (None, TypeError, "ordered collection of prompt strings .* got NoneType"),
        (["a", "b", "c", None], TypeError, r"X\[3\] must be a str, got NoneType"),
        ([b"a cat"], TypeError, r"X\[0\] must be a str, got bytes"),
        ([0, 1], TypeError, r"X\[0\] must be a str, got int: 0"),
        ((p for p in PROMPTS), TypeError, "iterators have no fixed order or length"),
        (set(PROMPTS), TypeError, "sets, dicts and iterators"),
        ({"a": 1}, TypeError, "sets, dicts and iterators"),
        ("a cat", TypeError, r"got a single str; wrap it in a list: \['a cat'\]"),
        (pd.Series(["a", "b", np.nan]), TypeError, r"X\[2\] must be a str, got float: nan"),
        (np.array([["a", "b"], ["c", "d"]]), ValueError, r"1-d collection of prompts, got an array of shape \(2, 2\)"),
        (pd.DataFrame({"a": ["x"], "b": ["y"]}), ValueError, "frame with 2 columns"),
        (["a cat \ud800 on a wall"], ValueError, r"X\[0\] holds the lone surrogate '\\ud800' at character 6"),
        (["a cat", ""], ValueError, r"X\[1\] is empty; every prompt must hold some text"),
        (["a cat", "b", " \t\n"], ValueError, r"X\[2\] is whitespace only \(' \\t\\n'\); every prompt must hold"),
    ],
    ids=[
        "empty",
        "none",
        "none-inside",
        "bytes",
        "ints",
        "generator",
        "set",
        "dict",
        "bare-str",
        "series-nan",
        "2d-array",
        "2-column-frame",
        "lone-surrogate",
        "empty-prompt",
        "whitespace-prompt",
    ],
)
def test_bad_prompts(fitted, X, error, match):
    with pytest.raises(error, match=match):
        fitted.route(X)
    with pytest.raises(error, match=match):
        fast_router().fit(X, QUALITY[: len(X)] if isinstance(X, list) and X else QUALITY)


def test_lone_surrogate_with_minilm_names_the_prompt():
    # the embedding model would fail deep inside the tokenizer; the prompt is refused first
    with pytest.raises(ValueError, match=r"X\[2\] holds the lone surrogate .*encode\('utf-8', 'replace'\)"):
        CostAwareRouter(COSTS).fit(PROMPTS[:2] + ["a cat \ud800 on a wall"], QUALITY[:3])


@pytest.mark.parametrize(
    "prompt", ["a", " a ", "\ta\n", "a\x00b", "\u202eevil", "🐱 猫 قطة", "Ｆｕｌｌ", "x" * 100_000]
)
def test_odd_but_valid_text_is_routed(fitted, prompt):
    plan = fitted.route(["a white wall", prompt])
    assert plan.prompts == ["a white wall", prompt] and set(plan.generator_names) <= set(NAMES)


def test_text_with_numeric_features():
    with pytest.raises(ValueError, match=r"features=None expects numeric X .* set features='minilm'"):
        fast_router(features=None).fit(PROMPTS, QUALITY)


# ---------------------------------------------------------------- quality (y)
@pytest.mark.parametrize(
    "y, match",
    [
        (QUALITY[:, :2], r"shape \(n_samples, n_generators\) = \(6, 3\) .* got shape \(6, 2\)"),
        (np.hstack([QUALITY, QUALITY[:, :1]]), r"got shape \(6, 4\)"),
        (QUALITY[:5], r"got shape \(5, 3\)"),
        (QUALITY[:, 0], r"got shape \(6,\)"),
        (np.where(np.eye(6, 3) > 0, np.nan, QUALITY), r"y contains NaN or inf at 3 cell\(s\), e.g. \(row 0, turbo\)"),
        (np.where(np.eye(6, 3) > 0, -np.inf, QUALITY), "y contains NaN or inf"),
        (
            np.where(np.eye(6, 3) > 0, 1e308, QUALITY),
            r"y holds 3 value\(s\) beyond ±1e\+100, e.g. \(row 0, turbo: 1e\+308\)",
        ),
        ([["good", 1, 2]] * 6, "y must hold numbers"),
        ([[1, 2, 3], [1, 2]] + [[1, 2, 3]] * 4, "y must hold numbers"),
        (pd.DataFrame(QUALITY, columns=["turbo", "sd21", "SDXL"]), r"missing: \['sdxl'\], unknown: \['SDXL'\]"),
        (pd.DataFrame(QUALITY, columns=["turbo", "sd21", "sd21"]), r"duplicated: \['sd21'\]"),
        (None, "requires y to be passed"),
    ],
    ids=[
        "too-few-columns",
        "too-many-columns",
        "too-few-rows",
        "1d",
        "nan",
        "inf",
        "huge",
        "text",
        "ragged",
        "misspelled-column",
        "duplicated-column",
        "none",
    ],
)
def test_bad_quality_matrix(y, match):
    with pytest.raises(ValueError, match=match):
        fast_router().fit(PROMPTS, y)


# ---------------------------------------------------------------- generators, penalties, budgets
@pytest.mark.parametrize(
    "generators, error, match",
    [
        ({"a": -1.0, "b": 1.0}, ValueError, "cost of generator 'a' must be finite and >= 0"),
        ({"a": math.nan, "b": 1.0}, ValueError, "cost of generator 'a' must be finite"),
        ({"a": math.inf, "b": 1.0}, ValueError, "cost of generator 'a' must be finite"),
        ({"a": "1.5", "b": 1.0}, TypeError, "cost of generator .a. must be a real number"),
        ({"a": 0.0, "b": 0.0}, ValueError, "every generator costs 0"),
        ([GeneratorSpec("a", 1.0), GeneratorSpec("a", 2.0)], ValueError, r"duplicated: \['a'\]"),
        ({}, ValueError, "needs at least one generator"),
        (None, TypeError, "generators must be a GeneratorRegistry"),
    ],
    ids=["negative", "nan", "inf", "str", "all-zero", "duplicate-names", "empty", "none"],
)
def test_bad_generators(generators, error, match):
    with pytest.raises(error, match=match):
        fast_router(generators=generators).fit(PROMPTS, QUALITY[:, :2])


@pytest.mark.parametrize("name", ["cost_penalty", "budget"])
@pytest.mark.parametrize(
    "value, error",
    [
        (-0.1, ValueError),
        (math.nan, ValueError),
        (math.inf, ValueError),
        ("0.1", TypeError),
        (True, TypeError),
        ([0.1], TypeError),
    ],
    ids=["negative", "nan", "inf", "str", "bool", "list"],
)
def test_bad_penalty_or_budget(fitted, name, value, error):
    with pytest.raises(error, match=name):
        fast_router(**{name: value}).fit(PROMPTS, QUALITY)
    with pytest.raises(error, match=name):
        fitted.route(PROMPTS, **{name: value})
    with pytest.raises(error, match=name):  # set after fit: caught at prediction
        fast_router().fit(PROMPTS, QUALITY).set_params(**{name: value}).predict(PROMPTS)


def test_extreme_but_valid_penalties_and_budgets(fitted):
    assert set(fitted.route(PROMPTS, cost_penalty=1e308).generator_names) == {"turbo"}
    with pytest.warns(BudgetWarning, match="below the cheapest"):
        assert set(fitted.route(PROMPTS, budget=0.0).generator_names) == {"turbo"}
    assert fitted.route(PROMPTS, budget=5.0).cost_penalty == 0.0


def test_quality_too_large_for_the_budget_arithmetic_is_refused():
    # with scores near the float maximum no finite λ reaches the cheapest generator, and a
    # budget below its cost used to be silently violated, under a warning saying the opposite
    huge = np.array([[0.0, 1e308, 0.0], [1e308, 0.0, 1e308]])
    with pytest.raises(ValueError, match=r"y holds 3 value\(s\) beyond ±1e\+100"):
        fast_router(budget=0.0).fit(["a", "0"], huge)


# ---------------------------------------------------------------- custom quality models
class Broken(RegressorMixin, BaseEstimator):
    """A multi-output regressor whose predictions are the column means, spoiled on purpose."""

    def __init__(self, fault="nan"):
        self.fault = fault

    def fit(self, X, y):
        self.means_ = np.asarray(y, dtype=float).mean(axis=0)
        return self

    def predict(self, X):
        Q = np.tile(self.means_, (len(X), 1))
        if self.fault == "nan":
            Q[1, 0] = np.nan
        elif self.fault == "inf":
            Q[:, -1] = np.inf
        elif self.fault == "huge":
            Q[:, 1] = -1e200
        elif self.fault == "columns":
            Q = Q[:, :2]
        elif self.fault == "transposed":
            Q = Q.T
        elif self.fault == "text":
            Q = Q.astype(str).astype(object) + "!"
        return Q

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _zero_weights(distances):
    return np.zeros_like(distances)


@pytest.mark.parametrize(
    "quality_model, match",
    [
        (
            Broken("nan"),
            r"quality model Broken predicted NaN or inf \(or beyond ±1e\+100\) quality for 1 of 6 prompt\(s\) and generator\(s\) \['turbo'\]: prompt 1 'a red apple': turbo=nan",
        ),
        (
            Broken("inf"),
            r"quality model Broken predicted NaN or inf \(or beyond ±1e\+100\) quality for 6 of 6 prompt\(s\) and generator\(s\) \['sdxl'\]",
        ),
        (
            Broken("huge"),
            r"beyond ±1e\+100\) quality for 6 of 6 prompt\(s\) and generator\(s\) \['sd21'\]: prompt 0 'a white wall': sd21=-1e\+200",
        ),
        (
            Broken("columns"),
            r"quality model Broken returned predictions of shape \(6, 2\) for 6 prompt\(s\); expected .* = \(6, 3\)",
        ),
        (Broken("transposed"), r"returned predictions of shape \(3, 6\) for 6 prompt\(s\)"),
        (Broken("text"), "quality model Broken returned predictions that are not numbers"),
        # a real regressor that divides by zero: neighbour weights that are all 0
        (KNeighborsRegressor(n_neighbors=2, weights=_zero_weights), r"quality model KNeighborsRegressor predicted NaN"),
    ],
    ids=["nan", "inf", "huge", "too-few-columns", "transposed", "text", "zero-weights-knn"],
)
def test_faulty_quality_models(quality_model, match):
    router = fast_router(quality_model=quality_model).fit(PROMPTS, QUALITY)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's own 0/0 warning
        for call in (router.predict, router.predict_quality, lambda X: router.route(X, budget=0.3)):
            with pytest.raises(ValueError, match=match):
                call(PROMPTS)


# ---------------------------------------------------------------- command-line arguments
@pytest.mark.parametrize(
    "argv, message",
    [
        (["route", "p.txt", "--budget", "-1"], "must be finite and >= 0"),
        (["route", "p.txt", "--cost-penalty", "nan"], "must be finite and >= 0"),
        (["route", "p.txt", "--cost-penalty", "abc"], "expected a number"),
        (["route", "p.txt", "--dataset", "coco"], "invalid choice: 'coco'"),
        (["route"], "the following arguments are required: prompts"),
        (["costs", "sd15", "--steps", "-5"], "must be >= 1"),
        (["costs", "sd15", "--height", "x"], "expected a whole number"),
        (["costs", "nosuch"], "unknown architecture"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_bad_command_line_arguments_exit_2(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


# ---------------------------------------------------------------- fuzz
def assert_valid_plan(plan, n, router):
    names = router.generator_names_.tolist()
    assert len(plan) == n and plan.assignments.shape == (n,)
    assert plan.assignments.min() >= 0 and plan.assignments.max() < len(names)
    assert plan.generator_names.tolist() == [names[a] for a in plan.assignments]
    np.testing.assert_array_equal(plan.costs, router.costs_[plan.assignments])  # costs exact
    np.testing.assert_array_equal(plan.normalized_costs, router.normalized_costs_[plan.assignments])
    assert plan.total_cost == pytest.approx(router.costs_[plan.assignments].sum(), rel=1e-12)
    assert np.isfinite(plan.predicted_quality).all()
    if plan.budget is not None and plan.mean_normalized_cost > plan.budget + 1e-9:
        assert set(plan.assignments) == {int(np.argmin(router.normalized_costs_))}  # unmeetable budget only


# any character; one string in four also draws lone surrogates (Cs), controls (Cc), spaces and marks
plain_texts = st.text(max_size=40)
odd_texts = st.text(
    alphabet=st.one_of(st.characters(), st.characters(categories=["Cs", "Cc", "Zs", "Mn"])), max_size=40
)
texts = st.one_of(plain_texts, plain_texts, plain_texts, odd_texts)
junk = st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=5), st.lists(st.integers(), max_size=2))
prompt_lists = st.one_of(
    st.lists(texts, min_size=1, max_size=8),
    st.lists(texts, min_size=1, max_size=8).map(lambda xs: np.array(xs, dtype=object)),
    st.lists(texts, min_size=1, max_size=8).map(pd.Series),
)
prompt_inputs = st.one_of(
    prompt_lists,
    st.lists(texts, max_size=0),
    st.lists(st.one_of(texts, junk), min_size=1, max_size=5),
    texts,
    junk,
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.floats(-10, 10),
    st.integers(-(2**70), 2**70),
)
penalties = st.one_of(
    st.none(), st.none(), st.none(), st.floats(0, 10), st.floats(0, 1), numbers, st.booleans(), st.text(max_size=3)
)
quality_elements = st.one_of(st.floats(-5, 5), st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -1e308, 0.0]))


def quality_for(n, data):
    """A quality matrix for n prompts: usually the right shape, sometimes not, sometimes not finite."""
    shape = data.draw(st.one_of(*[st.just((n, 3))] * 4, array_shapes(min_dims=0, max_dims=3, max_side=7)))
    finite = data.draw(st.sampled_from([True, True, False]))
    elements = st.floats(-5, 5) if finite else quality_elements
    return data.draw(arrays(np.float64, shape, elements=elements))


def call_fuzzed(action):
    """Run ``action``; return its result, or None for a ValueError/TypeError (anything else fails)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return action()
        except (ValueError, TypeError):
            return None


FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)


def fuzz_text(X, data, quality_model, route_X, cost_penalty, budget):
    n = len(X) if isinstance(X, (list, np.ndarray, pd.Series)) else 2
    y = quality_for(n, data)
    router = call_fuzzed(lambda: fast_router(quality_model=quality_model).fit(X, y))
    if router is None:
        return
    target = X if route_X is None else route_X
    plan = call_fuzzed(lambda: router.route(target, cost_penalty=cost_penalty, budget=budget))
    if plan is not None:
        assert plan.prompts == list(target)  # every prompt once, in order
        assert_valid_plan(plan, len(plan.prompts), router)


@FUZZ
@given(
    X=prompt_lists,
    data=st.data(),
    quality_model=st.sampled_from(["knn", "ridge"]),
    route_X=st.one_of(st.none(), prompt_lists),
    cost_penalty=penalties,
    budget=penalties,
)
def test_fuzz_prompt_lists(X, data, quality_model, route_X, cost_penalty, budget):
    fuzz_text(X, data, quality_model, route_X, cost_penalty, budget)


@FUZZ
@given(
    X=prompt_inputs,
    data=st.data(),
    quality_model=st.sampled_from(["knn", "ridge"]),
    route_X=st.one_of(st.none(), prompt_inputs),
    cost_penalty=penalties,
    budget=penalties,
)
def test_fuzz_any_prompt_input(X, data, quality_model, route_X, cost_penalty, budget):
    fuzz_text(X, data, quality_model, route_X, cost_penalty, budget)


numeric_matrices = st.one_of(
    arrays(
        st.sampled_from([np.float64, np.float32, np.int64, np.uint8, np.bool_]),
        st.tuples(st.integers(1, 8), st.integers(1, 3)),
        elements=None,
    ),
    arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 3)), elements=st.floats(-1e6, 1e6)),
    st.lists(st.lists(st.floats(-3, 3), min_size=2, max_size=2), min_size=1, max_size=6),
)
numeric_inputs = st.one_of(
    numeric_matrices,
    arrays(
        st.sampled_from([np.float64, np.int64, np.bool_, np.complex128, np.str_]),
        array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
    ),
    arrays(
        np.float64,
        st.tuples(st.integers(0, 8), st.integers(1, 3)),
        elements=st.one_of(st.floats(-1e6, 1e6), st.sampled_from([math.nan, math.inf, 1e308])),
    ),
    arrays(
        object, st.tuples(st.integers(1, 4), st.integers(1, 2)), elements=st.one_of(st.floats(-3, 3), texts, st.none())
    ),
    st.lists(st.lists(st.floats(-3, 3), min_size=0, max_size=3), min_size=0, max_size=5),
    prompt_inputs,
)


def fuzz_numeric(X, data, route_X, cost_penalty, budget):
    sized = hasattr(X, "__len__") and not isinstance(X, (str, bytes)) and getattr(X, "ndim", 1) > 0
    y = quality_for(len(X) if sized else 2, data)
    router = call_fuzzed(lambda: fast_router(features=None, quality_model="knn").fit(X, y))
    if router is None:
        return
    target = X if route_X is None else route_X
    plan = call_fuzzed(lambda: router.route(target, cost_penalty=cost_penalty, budget=budget))
    if plan is not None:
        rows = np.asarray(target, dtype=float)
        np.testing.assert_array_equal(np.asarray(plan.prompts, dtype=float), rows)  # every row once, in order
        assert_valid_plan(plan, len(rows), router)


@FUZZ
@given(
    X=numeric_matrices,
    data=st.data(),
    route_X=st.one_of(st.none(), numeric_matrices),
    cost_penalty=penalties,
    budget=penalties,
)
def test_fuzz_numeric_matrices(X, data, route_X, cost_penalty, budget):
    fuzz_numeric(X, data, route_X, cost_penalty, budget)


@FUZZ
@given(
    X=numeric_inputs,
    data=st.data(),
    route_X=st.one_of(st.none(), numeric_inputs),
    cost_penalty=penalties,
    budget=penalties,
)
def test_fuzz_any_numeric_input(X, data, route_X, cost_penalty, budget):
    fuzz_numeric(X, data, route_X, cost_penalty, budget)
