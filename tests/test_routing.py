"""The routing rule: ties, exact breakpoints and the least penalty that meets a budget."""

import contextlib
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from costroute import BudgetWarning
from costroute.routing import (
    _grouped_events,
    assign_generators,
    lambda_grid,
    meets_budget,
    penalty_for_budget,
    route_with_penalty,
)

NC = np.array([0.1, 0.4, 1.0])
QUALITY = np.array(
    [[4.0, 4.1, 4.2], [3.8, 4.0, 4.1], [1.0, 2.5, 4.5], [1.5, 2.0, 4.0], [3.0, 3.0, 3.0], [4.0, 4.0, 4.1]]
)
# Two prompts, two generators: the cheap one (cost 0.5) and the expensive one (cost 1.0).
#   prompt 0: cheap 1, expensive 3  -> switches to cheap at λ = (3 - 1) / 0.5 = 4
#   prompt 1: cheap 2, expensive 2  -> tie: cheap already at λ = 0
Q2 = np.array([[1.0, 3.0], [2.0, 2.0]])
C2 = np.array([0.5, 1.0])

quality_matrices = arrays(
    float, st.tuples(st.integers(1, 40), st.just(3)), elements=st.floats(0, 5, allow_subnormal=False)
)
# ratings on a 1/3 grid: many exact ties and coinciding breakpoints
rating_matrices = arrays(
    float, st.tuples(st.integers(1, 40), st.just(3)), elements=st.integers(3, 15).map(lambda k: k / 3)
)


@settings(max_examples=60, deadline=None)
@given(
    Q=arrays(float, st.tuples(st.integers(1, 30), st.just(3)), elements=st.floats(0, 5, allow_subnormal=False)),
    lams=st.lists(st.floats(0, 50, allow_subnormal=False), min_size=2, max_size=6),
)
def test_mean_cost_never_increases_with_lambda(Q, lams):
    costs = [NC[assign_generators(Q, NC, lam)].mean() for lam in sorted(lams)]
    assert all(b <= a + 1e-12 for a, b in zip(costs, costs[1:]))


@settings(max_examples=60, deadline=None)
@given(Q=arrays(float, st.tuples(st.integers(1, 30), st.just(3)), elements=st.floats(0, 5, allow_subnormal=False)))
def test_zero_lambda_is_argmax_and_huge_lambda_is_cheapest(Q):
    a0 = assign_generators(Q, NC, 0.0)
    # the chosen quality is the best one, up to the documented tie tolerance
    np.testing.assert_allclose(Q[np.arange(len(Q)), a0], Q.max(axis=1), rtol=0, atol=1e-11)
    assert (assign_generators(Q, NC, 1e6) == 0).all()


@settings(max_examples=60, deadline=None)
@given(
    Q=arrays(float, st.tuples(st.integers(1, 40), st.just(3)), elements=st.floats(0, 5, allow_subnormal=False)),
    budget=st.floats(0.1, 1.0),
    floor=st.floats(0, 2),
)
def test_budget_is_met_with_the_least_penalty_bisection_style(Q, budget, floor):
    lam = penalty_for_budget(Q, NC, budget, floor=floor)
    assert lam >= floor
    assert NC[assign_generators(Q, NC, lam)].mean() <= budget + 1e-9
    if lam > floor:  # a visibly smaller penalty would break the budget
        smaller = max(floor, lam * (1 - 1e-6) - 1e-9)
        assert NC[assign_generators(Q, NC, smaller)].mean() > budget


def test_penalty_for_budget_edge_cases():
    with pytest.raises(ValueError, match="floor must be finite"):
        penalty_for_budget(QUALITY, NC, 0.5, floor=float("nan"))
    assert penalty_for_budget(np.empty((0, 3)), NC, 0.5, floor=0.25) == 0.25
    with pytest.raises(ValueError, match=r"shape \(n, 3\)"):
        penalty_for_budget(QUALITY[:, :2], NC, 0.5)


def test_route_ties_go_to_cheaper_generator_even_in_a_later_column():
    assert route_with_penalty([[2.0, 2.0]], [1.0, 0.5], 0.0).tolist() == [1]
    # equal costs and equal scores: the lower column index
    assert route_with_penalty([[2.0, 2.0]], [0.5, 0.5], 0.0).tolist() == [0]
    # the exact crossing λ = 4 is a tie -> cheaper
    assert route_with_penalty(Q2, C2, 4.0).tolist() == [0, 0]
    assert route_with_penalty(Q2, C2, 3.9).tolist() == [1, 0]


def test_route_is_vectorised_over_lambda():
    lams = np.array([0.0, 3.0, 5.0])
    out = route_with_penalty(Q2, C2, lams)
    assert out.shape == (3, 2)
    for lam, row in zip(lams, out):
        assert row.tolist() == route_with_penalty(Q2, C2, lam).tolist()


def test_lambda_grid_sizes_and_degenerate_case():
    rng = np.random.default_rng(3)
    pred = rng.normal(size=(50, 3))
    c = np.array([0.3, 0.6, 1.0])
    grid = lambda_grid(pred, c, n=7)
    assert len(grid) <= 7 and grid[0] == 0 and np.all(np.diff(grid) > 0)
    assert (route_with_penalty(pred, c, grid[-1]) == 0).all()
    assert lambda_grid(pred, c, n=2).size == 2
    # the cheapest generator is best everywhere: nothing ever switches
    assert lambda_grid([[3.0, 1.0, 2.0]], c, n=10).tolist() == [0.0]
    assert lambda_grid([[3.0, 1.0, 2.0]], c, n=None).tolist() == [0.0]


def test_lambda_grid_with_two_cheapest_of_equal_cost():
    # generators 0 and 1 share the lowest cost; at λ_max prompts go to the better of the two
    pred = np.array([[1.0, 2.0, 5.0], [3.0, 0.0, 4.0]])
    c = np.array([0.5, 0.5, 1.0])
    grid = lambda_grid(pred, c, n=None)
    assert route_with_penalty(pred, c, grid[-1]).tolist() == [1, 0]


# ---------------------------------------------------------------- exact budget λ
def test_budget_penalty_is_the_breakpoint_by_hand():
    # prompt 0 leaves the expensive generator at λ = 4, so a budget of 0.5 needs λ = 4 exactly
    assert penalty_for_budget(Q2, C2, 0.5) == 4.0
    assert assign_generators(Q2, C2, 4.0).tolist() == [0, 0]
    assert penalty_for_budget(Q2, C2, 0.75) == 0.0  # met at λ = 0 already
    Q = np.array([[1.0, 3.0], [2.0, 2.0], [1.0, 2.0]])
    c = np.array([0.2, 1.0])
    # crossings: prompt 0 at (3-1)/0.8 = 2.5, prompt 2 at (2-1)/0.8 = 1.25
    assert penalty_for_budget(Q, c, 0.5) == pytest.approx(1.25, rel=1e-15)
    assert penalty_for_budget(Q, c, 0.2) == pytest.approx(2.5, rel=1e-15)


def test_budget_penalty_respects_the_floor():
    Q = np.array([[1.0, 3.0], [2.0, 2.0], [1.0, 2.0]])
    c = np.array([0.2, 1.0])
    assert penalty_for_budget(Q, c, 0.5, floor=2.0) == 2.0  # the floor alone meets it
    assert penalty_for_budget(Q, c, 0.2, floor=2.0) == pytest.approx(2.5)
    assert penalty_for_budget(Q, c, 0.2, floor=3.0) == 3.0


@settings(max_examples=80, deadline=None)
@given(Q=st.one_of(quality_matrices, rating_matrices), budget=st.floats(0.1, 1.0))
def test_budget_penalty_is_a_breakpoint(Q, budget):
    """Exact: the returned λ is 0 or the λ of a switch event, never an arbitrary bisection point."""
    lam = penalty_for_budget(Q, NC, budget)
    _, events, _, reps = _grouped_events(Q, NC)
    assert lam == 0.0 or (events[0] == lam).any() or (reps == lam).any()


@settings(max_examples=80, deadline=None)
@given(Q=st.one_of(quality_matrices, rating_matrices), budget=st.floats(0.0, 1.2), floor=st.floats(0, 2))
def test_budget_is_met_and_no_smaller_penalty_meets_it(Q, budget, floor):
    with pytest.warns(BudgetWarning) if budget < NC.min() - 1e-9 else _no_warning():
        lam = penalty_for_budget(Q, NC, budget, floor=floor)
    mean = NC[assign_generators(Q, NC, lam)].mean()
    if budget >= NC.min():
        assert meets_budget(mean, budget)
    else:
        assert (assign_generators(Q, NC, lam) == 0).all()
    # every exact breakpoint below lam (and above the floor) fails the budget
    below = lambda_grid(Q, NC, n=None)
    below = below[(below >= floor) & (below < lam)]
    for other in below:
        assert not meets_budget(NC[assign_generators(Q, NC, other)].mean(), budget)


@contextlib.contextmanager
def _no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", BudgetWarning)
        yield


# ---------------------------------------------------------------- non-finite predictions
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_quality_raises_naming_the_cells(bad):
    Q = QUALITY.copy()
    Q[2, 1] = bad
    with pytest.raises(ValueError, match=r"prompt 2, generator 'sd21'"):
        assign_generators(Q, NC, 0.0, generator_names=["turbo", "sd21", "sdxl"])
    with pytest.raises(ValueError, match=r"prompt 2, generator 1"):
        assign_generators(Q, NC, 0.3)
    with pytest.raises(ValueError, match="finite"):
        penalty_for_budget(Q, NC, 0.3)


def test_plus_inf_no_longer_routes_to_the_cheapest():
    # before the check, inf - inf in the tie test sent every prompt to the cheapest generator
    Q = QUALITY.copy()
    Q[:, 2] = np.inf
    with pytest.raises(ValueError):
        assign_generators(Q, NC, 0.0)


@settings(max_examples=40, deadline=None)
@given(Q=st.one_of(quality_matrices, rating_matrices), seed=st.integers(0, 2**32 - 1))
def test_vectorised_rule_agrees_with_the_scalar_rule(Q, seed):
    lams = np.r_[0.0, lambda_grid(Q, NC, n=None), np.random.default_rng(seed).uniform(0, 5, 5)]
    out = route_with_penalty(Q, NC, lams)
    for lam, row in zip(lams, out):
        assert row.tolist() == assign_generators(Q, NC, lam).tolist()


def test_a_tiny_penalty_never_undoes_a_tie_to_the_cheaper_generator():
    # 1e-12 apart counts as a tie at λ = 0; float rounding of the utilities once made λ = 1e-300
    # pick the dearer generator, so the budget's λ came back over budget
    Q = np.array([[0.0, 1e-12, 0.0]])
    for lam in (0.0, 1e-300, 3e-299, 1e-20, 1e-12):
        assert assign_generators(Q, NC, lam).tolist() == [0]
    lam = penalty_for_budget(Q, NC, 0.25, floor=3e-299)
    assert lam == 3e-299 and NC[assign_generators(Q, NC, lam)].mean() <= 0.25


def test_an_infinite_penalty_is_the_cheapest_generator_ties_by_quality():
    Q = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert assign_generators(Q, np.array([0.25, 0.5, 1.0]), math.inf).tolist() == [0, 0]
        assert assign_generators(Q, np.array([0.5, 0.5, 1.0]), math.inf).tolist() == [1, 0]
