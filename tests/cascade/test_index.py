"""Weitzman's index and the index policy: the index equation against numerical integration, and
the policy against the optimal adaptive search found by brute force.

The brute force is exact dynamic programming over every order and stopping rule: the state is
the set of opened generators and the best quality found, ``V(S, y) = max(y, max_{k ∉ S} −c_k +
E V(S ∪ k, max(y, X_k)))``. ``V(S, ·)`` is convex and kept on a fine grid of ``y``; the
expectation over ``X_k ~ N(m_k, e_k²)`` of the linear interpolant is integrated exactly, segment
by segment (so the kink of ``max(y, X_k)`` costs nothing), which leaves an interpolation error
of at most ``h² max V'' / 8`` per level (about 1e-6 here).
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate
from scipy.special import ndtr
from scipy.stats import norm

from costroute.cascade._index import expected_excess, reservation_value
from costroute.cascade._policy import PolicyRun, replay

from ._worlds import exact_scorer_posterior, fitted, make_world

# ---------------------------------------------------------------- the index equation
MEANS = [-3.0, 0.0, 2.5]
SPREADS = [1e-3, 0.3, 1.0, 7.0, 1e3]
INDEX_COSTS = [1e-12, 1e-9, 1e-4, 0.01, 0.3, 1.0, 5.0, 100.0, 1e6]


def quad_excess(mean: float, spread: float, threshold: float) -> float:
    """``E[(X − threshold)^+]`` for ``X ~ N(mean, spread²)`` by ``scipy.integrate.quad``.

    Integrated over ``[a, mean + 40 spread]`` with ``a = max(threshold, mean − 40 spread)``, as
    ``∫ (x − a) pdf + (a − threshold) P(X > a)`` (the same integral; the mass outside is below
    1e-300), so that a threshold a million spreads below the mean is no trouble for quad.
    """
    a = max(threshold, mean - 40.0 * spread)
    b = mean + 40.0 * spread
    points = [p for p in (mean, threshold + spread) if a < p < b]
    value, _ = integrate.quad(
        lambda x: (x - a) * norm.pdf(x, mean, spread), a, b, points=points or None, epsabs=0.0, epsrel=1e-13, limit=500
    )
    return value + (a - threshold) * norm.sf(a, mean, spread)


@pytest.mark.parametrize(("mean", "spread"), list(itertools.product(MEANS, SPREADS)))
def test_index_equation_holds_by_numerical_integration(mean, spread):
    sigma = reservation_value(mean, spread, np.array(INDEX_COSTS))
    assert np.isfinite(sigma).all()
    for cost, s in zip(INDEX_COSTS, sigma):
        assert quad_excess(mean, spread, float(s)) == pytest.approx(cost, rel=1e-8, abs=0.0), (cost, s)
        assert float(expected_excess(mean, spread, s)) == pytest.approx(cost, rel=1e-8, abs=0.0), (cost, s)
    # the vectorised solve gives what one box at a time gives
    one_by_one = [float(reservation_value(mean, spread, c)) for c in INDEX_COSTS]
    np.testing.assert_allclose(sigma, one_by_one, rtol=1e-12, atol=0.0)


def test_index_edge_cases():
    # no spread: nothing to learn, the box is worth its mean less its cost
    np.testing.assert_allclose(reservation_value([1.5, -2.0, 0.0], 0.0, [0.5, 3.0, 0.0]), [1.0, -5.0, 0.0])
    assert float(expected_excess(1.5, 0.0, 1.0)) == 0.5
    # free box with spread: always worth opening
    assert reservation_value([0.0, 1e6, -1e6], [1e-9, 1.0, 1e3], 0.0).tolist() == [np.inf] * 3
    # infinitely dear box: never
    assert reservation_value([0.0, 0.0], [0.0, 1.0], np.inf).tolist() == [-np.inf, -np.inf]
    # broadcasting: one mean, a grid of spreads and costs
    assert reservation_value(0.0, [[0.5], [1.0]], [0.1, 0.2, 0.3]).shape == (2, 3)


@settings(max_examples=60, deadline=None)
@given(
    mean=st.floats(-5, 5),
    spread=st.floats(1e-3, 50),
    cost=st.floats(1e-10, 1e4),
    factor=st.floats(1.001, 100),
)
def test_index_falls_with_cost_and_rises_with_spread(mean, spread, cost, factor):
    s = float(reservation_value(mean, spread, cost))
    assert float(reservation_value(mean, spread, cost * factor)) < s
    wider = float(reservation_value(mean, spread * factor, cost))
    assert wider >= s - 1e-14 * max(1.0, abs(s))  # σ = mean + spread z: a rounding either way
    if cost < 5.0 * spread:  # beyond, σ − (mean − cost) < 1e-7 spread: the rise drowns in rounding
        assert wider > s
    # never above what a free look could find, never below the mean less the cost
    assert mean - cost <= s + 1e-9 * max(1.0, abs(s))


@pytest.mark.parametrize(
    ("spread", "cost"), [(-1.0, 0.1), (1.0, -0.1), (-1e-12, 0.0), (np.nan, 0.1), (1.0, np.nan), ([1.0, -1.0], 0.1)]
)
def test_index_refuses_negative_or_nan_spread_and_cost(spread, cost):
    with pytest.raises(ValueError, match="spread and cost must be >= 0"):
        reservation_value(0.0, spread, cost)


# ---------------------------------------------------------------- brute force
def _segment_integrals(grid: np.ndarray, values: np.ndarray, m: float, e: float) -> np.ndarray:
    """``∫`` over each grid segment of the linear interpolant of ``values`` times the ``N(m, e²)`` pdf."""
    a, b = grid[:-1], grid[1:]
    za, zb = (a - m) / e, (b - m) / e
    mass = ndtr(zb) - ndtr(za)
    first_moment = m * mass - e * (norm.pdf(zb) - norm.pdf(za))  # ∫ x pdf over the segment
    slope = (values[1:] - values[:-1]) / (b - a)
    return values[:-1] * mass + slope * (first_moment - a * mass)


class OptimalSearch:
    """The optimal adaptive search over independent Gaussian boxes, by exact dynamic programming.

    ``value(S, k, y)``: the expected net payoff of opening box ``k`` next and continuing
    optimally, with the boxes in bitmask ``S`` opened and ``y`` the best found (module
    docstring); stopping is worth ``y``. The first box is mandatory (a cascade always makes an
    image): :attr:`first_moves` holds ``−c_k + E V({k}, X_k)`` per box, the optimum its largest.
    """

    def __init__(self, mean, spread, cost):
        m, e, c = (np.asarray(v, dtype=float) for v in (mean, spread, cost))
        self.K = K = m.size
        lo = float((m - 12 * e).min() - c.sum() - 1.0)
        hi = float((m + 12 * e).max() + c.sum() + 1.0)
        h = min(5e-3, float(e.min()) / 20.0)
        self.y = y = np.linspace(lo, hi, int((hi - lo) / h) + 2)
        full = (1 << K) - 1

        def expect(values: np.ndarray, k: int) -> np.ndarray:
            """``E V(max(y, X_k))`` at every grid ``y``, ``V`` given on the grid (``V(x) = x`` above it)."""
            above = np.r_[np.cumsum(_segment_integrals(y, values, m[k], e[k])[::-1])[::-1], 0.0]
            zt = (hi - m[k]) / e[k]
            top = m[k] * norm.sf(zt) + e[k] * norm.pdf(zt)  # ∫_hi^∞ x pdf, negligible
            return values * ndtr((y - m[k]) / e[k]) + above + top

        V = {full: y.copy()}  # everything opened: keep the best found
        self.open_values: dict[tuple[int, int], np.ndarray] = {}
        for S in sorted(range(full), key=lambda s: -bin(s).count("1")):
            best = y.copy()  # stop
            for k in range(K):
                if not S >> k & 1:
                    self.open_values[S, k] = -c[k] + expect(V[S | 1 << k], k)
                    best = np.maximum(best, self.open_values[S, k])
            V[S] = best
        # with no box opened yet the best found is -inf: the grid's lowest y is 12 spreads below every mean
        self.first_moves = np.array([-c[k] + expect(V[1 << k], k)[0] for k in range(K)])

    def value(self, S: int, k: int, y: np.ndarray) -> np.ndarray:
        return np.interp(y, self.y, self.open_values[S, k])


def optimal_first_moves(mean, spread, cost) -> np.ndarray:
    """:attr:`OptimalSearch.first_moves`."""
    return OptimalSearch(mean, spread, cost).first_moves


def decisions_against_optimum(run: PolicyRun, Q: np.ndarray, search: OptimalSearch, tol: float = 1e-4):
    """Every decision after the first image of every replayed prompt, against the optimal search.

    With the boxes opened so far and ``y`` the best quality found, the policy either opened
    box ``k`` next or stopped; the optimal search values each choice. Returns the number of
    decisions where the optimum is clear (its best choice beats the second by more than ``tol``)
    and, among them, the regret (optimal value − value of the policy's choice) of each one the
    policy got wrong.
    """
    K = search.K
    clear, regrets = 0, []
    by_state: dict[tuple, list[int]] = {}
    for i, order in enumerate(run.order):
        for j in range(1, min(len(order) + 1, K)):  # with every box opened there is nothing to decide
            nxt = order[j] if j < len(order) else -1
            by_state.setdefault((sum(1 << k for k in order[:j]), nxt), []).append(i)
    for (S, nxt), rows in by_state.items():
        rows = np.asarray(rows)
        opened = [k for k in range(K) if S >> k & 1]
        y = Q[np.ix_(rows, opened)].max(axis=1)
        choices = {-1: y} | {k: search.value(S, k, y) for k in range(K) if not S >> k & 1}
        values = np.stack(list(choices.values()), axis=1)
        top2 = np.sort(values, axis=1)[:, -2:]
        sure = top2[:, 1] - top2[:, 0] > tol
        clear += int(sure.sum())
        regret = top2[:, 1] - choices[nxt]
        regrets += regret[sure & (regret > tol)].tolist()
    return clear, regrets


def index_policy_value(mean, spread, cost) -> float:
    """``E[max_k min(X_k, σ_k)]`` (Kleinberg, Waggoner & Weyl 2016): the index policy's expected net payoff."""
    m, e, c = (np.asarray(v, dtype=float) for v in (mean, spread, cost))
    sigma = reservation_value(m, e, c)
    lo = float((m - 14 * e).min())
    top = float(sigma.max()) if np.isfinite(sigma).all() else float((m + 14 * e).max())

    def cdf(t: float) -> float:  # P(max_k min(X_k, σ_k) <= t)
        return float(np.prod(np.where(t >= sigma, 1.0, ndtr((t - m) / e))))

    points = sorted(float(s) for s in sigma if lo < s < top)
    area, _ = integrate.quad(cdf, lo, top, points=points or None, limit=500, epsabs=1e-12, epsrel=1e-12)
    return top - area  # E[Y] = top − ∫_{−∞}^{top} P(Y <= t) dt for Y <= top


def simulated_payoff(mean, spread, costs, lam, policy, n=100_000, seed=0):
    """Mean and standard error of (returned quality − λ x total cost) of ``replay`` over ``n`` drawn worlds,
    the run and the worlds (true qualities, which the exact scorer reveals)."""
    m, e = np.asarray(mean, dtype=float), np.asarray(spread, dtype=float)
    K = m.size
    Q = m + e * np.random.default_rng(seed).normal(size=(n, K))
    run = PolicyRun(exact_scorer_posterior(e), np.tile(m, (n, 1)), costs, 0.0, lam, K, policy=policy)
    replay(run, Q)
    payoff = Q[np.arange(n), run.returned()] - lam * run.cost
    return float(payoff.mean()), float(payoff.std() / np.sqrt(n)), run, Q


#: (means, spreads, normalised costs, λ)
WORLDS = {
    "three generators": ([0.0, 0.5, 1.0], [1.0, 0.5, 0.2], [0.1, 0.4, 1.0], 0.5),
    "cheap uncertain beside dear certain": ([0.0, 1.0], [2.0, 0.05], [0.1, 1.0], 0.6),
    "four generators": ([0.2, 0.0, 0.4, 0.1], [0.3, 1.0, 0.6, 0.8], [0.2, 0.3, 1.0, 0.05], 0.8),
    "free search": ([0.0, 0.3, 0.1], [0.5, 0.2, 1.0], [0.1, 0.4, 1.0], 0.0),
    "every box worse than nothing": ([-1.0, -0.5, -2.0], [0.3, 0.2, 1.5], [0.2, 1.0, 0.5], 2.0),
}


def test_brute_force_is_right_where_the_answer_is_known():
    """The dynamic program itself: one box is its mean less its cost; free boxes are all opened (E max)."""
    assert optimal_first_moves([0.7], [0.4], [0.3]) == pytest.approx([0.4], abs=1e-9)
    m, e = np.array([0.0, 0.3, 0.1]), np.array([0.5, 0.2, 1.0])
    e_max, _ = integrate.quad(lambda t: 1.0 - np.prod(ndtr((t - m) / e)), 0.0, 20.0)
    e_max -= integrate.quad(lambda t: np.prod(ndtr((t - m) / e)), -20.0, 0.0)[0]
    np.testing.assert_allclose(optimal_first_moves(m, e, [0.0, 0.0, 0.0]), e_max, atol=1e-5)
    # a far better box is opened after a bad first one; nothing is opened after a good one
    assert optimal_first_moves([1.0, -5.0], [0.1, 0.1], [0.2, 0.2]) == pytest.approx([0.8, 0.6], abs=1e-5)


@pytest.mark.parametrize("world", list(WORLDS))
def test_index_policy_is_optimal_against_brute_force(world):
    m, e, nc, lam = (np.asarray(v, dtype=float) for v in WORLDS[world])
    cost = lam * nc
    optimum = optimal_first_moves(m, e, cost).max()
    closed_form = index_policy_value(m, e, cost)
    # the DP's interpolation error is about 1e-6 here; the closed form is quad-exact
    assert closed_form == pytest.approx(optimum, abs=1e-4)
    index, index_se, run, Q = simulated_payoff(m, e, nc, float(lam), "index")
    myopic, myopic_se, _, _ = simulated_payoff(m, e, nc, float(lam), "myopic")
    # the same 100,000 worlds for both policies; 4.5 standard errors of Monte Carlo error
    assert abs(index - optimum) <= 4.5 * index_se + 1e-4, (index, index_se, optimum)
    assert myopic <= optimum + 4.5 * myopic_se + 1e-4, (myopic, myopic_se, optimum)
    assert (run.cost >= nc[run.first] - 1e-12).all()  # the first image is always made
    assert (run.returned() >= 0).all()
    # every decision after the first image is the optimal one wherever the optimum is clear
    clear, regrets = decisions_against_optimum(run, Q, OptimalSearch(m, e, cost))
    assert clear > 50_000
    assert not regrets, (len(regrets), max(regrets))


def test_myopic_policy_is_measurably_worse_with_a_cheap_uncertain_generator_beside_a_dear_certain_one():
    """The router starts on the dear, certain generator and the myopic rule then still buys the
    cheap gamble; the index policy gambles first and buys the dear one only when the gamble fails."""
    m, e, nc, lam = (np.asarray(v, dtype=float) for v in WORLDS["cheap uncertain beside dear certain"])
    optimum = optimal_first_moves(m, e, lam * nc).max()
    index, index_se, run_index, _ = simulated_payoff(m, e, nc, float(lam), "index")
    myopic, myopic_se, run_myopic, _ = simulated_payoff(m, e, nc, float(lam), "myopic")
    assert (run_index.first == 0).all() and (run_myopic.first == 1).all()
    assert optimum - myopic > 0.15  # about 0.21: 0.954 against 0.739
    assert index - myopic > 20 * max(index_se, myopic_se)


def _root_case(K, means, spreads, costs, lam):
    m, e, nc = (np.array(v[:K], dtype=float) for v in (means, spreads, costs))
    return m, e, nc, lam


@settings(max_examples=60, deadline=None)
@given(
    K=st.integers(2, 4),
    means=st.lists(st.floats(-1, 1), min_size=4, max_size=4),
    spreads=st.lists(st.floats(0.05, 2), min_size=4, max_size=4),
    costs=st.lists(st.floats(0.01, 1), min_size=4, max_size=4),
    lam=st.floats(0, 3),
)
def test_index_policy_first_image_is_the_optimal_first_box(K, means, spreads, costs, lam):
    m, e, nc, lam = _root_case(K, means, spreads, costs, lam)
    values = optimal_first_moves(m, e, lam * nc)
    first = PolicyRun(exact_scorer_posterior(e), m[None], nc, 0.0, lam, K, policy="index").first[0]
    best, second = np.sort(values)[::-1][:2]
    if best - second > 1e-4:  # a clear optimum (the DP is accurate to about 1e-6)
        assert first == values.argmax(), values
    else:
        assert values[first] >= best - 1e-4, values
    # and the index policy's expected value is the optimum
    assert index_policy_value(m, e, lam * nc) == pytest.approx(best, abs=1e-4)


# ---------------------------------------------------------------- the plain router as a limit
@pytest.mark.parametrize("policy", ["index", "myopic"])
@pytest.mark.parametrize("lam", [0.0, 0.05, 0.5, 2.0])
def test_a_constant_scorer_is_the_plain_router_under_both_policies(policy, lam):
    X, Q, _ = make_world()
    S = np.full_like(Q, 0.5)
    cascade = fitted(X, Q, S, cost_penalty=lam, scoring_cost=0.01, policy=policy)
    out = cascade.simulate(X, Q, S)
    plan = cascade.router_.route(X, cost_penalty=lam)
    assert out.returned.tolist() == plan.generator_names.tolist()
    assert (out.n_images == 1).all() and not out.scored.any()
    np.testing.assert_allclose(out.cost, plan.normalized_costs, rtol=1e-12)


@pytest.mark.parametrize("policy", ["index", "myopic"])
def test_a_huge_penalty_is_the_plain_router_under_both_policies(policy):
    X, Q, S = make_world(noise=0.1)  # a scorer worth listening to, at any sane λ
    cascade = fitted(X, Q, S, cost_penalty=1e6, scoring_cost=0.1, policy=policy)
    out = cascade.simulate(X, Q, S)
    plan = cascade.router_.route(X, cost_penalty=1e6)
    assert out.returned.tolist() == plan.generator_names.tolist()
    assert (out.n_images == 1).all() and not out.scored.any()
    np.testing.assert_allclose(out.cost, plan.normalized_costs, rtol=1e-12)
    # at a sane λ the same cascade does escalate: the limit is not a cascade that never does
    assert cascade.simulate(X, Q, S, cost_penalty=0.5).n_images.max() > 1
