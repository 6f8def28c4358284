"""Several scorers: exact cost accounting, second opinions bought only when they say something new,
argument checks, and ``generate`` doing what ``simulate`` predicts with two real scorers."""

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from sklearn.neighbors import KNeighborsRegressor
from sklearn.preprocessing import FunctionTransformer

from costroute import CascadeRouter, CostAwareRouter
from costroute.cascade._policy import PolicyRun
from costroute.execution import candidate_seed
from costroute.generators import CallableGenerator, GeneratorRegistry
from costroute.scoring import CallableScorer

from ._worlds import NC, fitted, make_world, router


def two_scorers(n=300, seed=0, weak_noise=1.0, strong_noise=0.1):
    """``make_world`` with two scorers: a weak one (noisy) and a strong one (nearly exact)."""
    X, Q, _ = make_world(n=n, seed=seed)
    rng = np.random.default_rng(seed + 100)
    return X, Q, Q + weak_noise * rng.normal(size=Q.shape), Q + strong_noise * rng.normal(size=Q.shape)


# ---------------------------------------------------------------- cost accounting
@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    lam=st.floats(0, 3),
    weak_cost=st.floats(0, 0.3),
    strong_cost=st.floats(0.3, 3),
    max_steps=st.one_of(st.none(), st.integers(1, 3)),
    policy=st.sampled_from(["index", "myopic"]),
)
def test_several_scorers_charge_exactly_what_ran(seed, lam, weak_cost, strong_cost, max_steps, policy):
    X, Q, S1, S2 = two_scorers(n=80, seed=seed)
    cascade = fitted(
        X,
        Q,
        [S1, S2],
        cost_penalty=lam,
        scoring_cost=[weak_cost, strong_cost],
        max_steps=max_steps,
        cv=3,
        policy=policy,
    )
    events = []  # every (prompt, generator, scorer) scoring the policy records
    original = PolicyRun.observed

    def observed(run, rows, generator, scores, scorer=0):
        scorer_ = np.broadcast_to(np.asarray(scorer), np.shape(rows))
        events.extend(zip(np.asarray(rows).tolist(), np.asarray(generator).tolist(), scorer_.tolist()))
        return original(run, rows, generator, scores, scorer)

    with mock.patch.object(PolicyRun, "observed", observed):
        out = cascade.simulate(X, Q, [S1, S2])
    sc = np.array([weak_cost, strong_cost]) / 10.0  # normalised by the dearest generator's cost
    names = cascade.generator_names_.tolist()
    assert out.scorer_names == ["scorer0", "scorer1"] and out.scored_by.shape == (len(X), 3, 2)
    assert len(events) == len(set(events))  # each (image, scorer) scored at most once
    assert len(events) == int(out.scored_by.sum())
    np.testing.assert_array_equal(out.scored, out.scored_by.any(axis=-1))
    for i, order in enumerate(out.order):
        idx = [names.index(g) for g in order]
        assert len(set(idx)) == len(idx) and len(idx) <= (max_steps or 3)
        assert set(np.flatnonzero(out.scored_by[i].any(axis=1))) <= set(idx)  # only images that were made
        scoring = float((out.scored_by[i] * sc[None, :]).sum())
        assert out.scoring_cost[i] == pytest.approx(scoring, rel=1e-12, abs=1e-12)
        assert out.cost[i] == pytest.approx(NC[idx].sum() + scoring, rel=1e-12, abs=1e-12)
        assert out.returned[i] in order


# ---------------------------------------------------------------- which scorer is worth its cost
@pytest.mark.parametrize("policy", ["index", "myopic"])
@pytest.mark.parametrize("lam", [0.3, 1.0])
@pytest.mark.parametrize("cost", [0.1, 1.0])
def test_a_copy_of_the_scorer_is_never_worth_a_second_opinion(cost, lam, policy):
    """Two scorers that always agree, at the same positive cost (0.01 or 0.1 of the dearest
    generator): once one has spoken the other says nothing new, so (almost) no image should be
    scored by both, and the returned images are those of the one scorer alone."""
    X, Q, S = make_world(n=400, seed=0, noise=0.5)
    Xt, Qt, St = make_world(n=400, seed=10, noise=0.5)
    copy = fitted(X, Q, [S, S.copy()], cost_penalty=lam, scoring_cost=[cost, cost], policy=policy)
    out = copy.simulate(Xt, Qt, [St, St.copy()])
    alone = fitted(X, Q, S, cost_penalty=lam, scoring_cost=cost, policy=policy).simulate(Xt, Qt, St)
    twice = int(out.scored_by.all(axis=-1).sum())
    images = int(out.n_images.sum())
    assert twice <= 0.01 * images, f"{twice} of {images} images scored by both copies"
    assert out.mean_quality == pytest.approx(alone.mean_quality, abs=0.01)


@pytest.mark.parametrize("policy", ["index", "myopic"])
def test_an_expensive_strong_judge_on_a_minority_of_images_beats_the_cheap_scorer_alone(policy):
    """A weak scorer (noise 1.0, cost 0.05) and a strong one (noise 0.1, cost 1.5, i.e. 0.15 of the
    dearest generator), λ = 1: the strong judge is bought for the close calls only (about a
    fifth of the images), and the cascade returns better images than with the weak scorer alone,
    with a better utility (quality − λ x cost) too."""
    lam = 1.0
    X, Q, S1, S2 = two_scorers(n=400, seed=0)
    Xt, Qt, S1t, S2t = two_scorers(n=400, seed=50)
    both = fitted(X, Q, [S1, S2], cost_penalty=lam, scoring_cost=[0.05, 1.5], policy=policy).simulate(
        Xt, Qt, [S1t, S2t]
    )
    weak = fitted(X, Q, S1, cost_penalty=lam, scoring_cost=0.05, policy=policy).simulate(Xt, Qt, S1t)
    strong_share = both.scored_by[:, :, 1].sum() / both.n_images.sum()
    assert 0.02 < strong_share < 0.4  # index: 128 of 537 images, myopic: 85 of 496
    assert both.mean_quality > weak.mean_quality + 0.03  # index: 3.470 against 3.403, myopic: 3.500 against 3.439
    assert both.mean_quality - lam * both.mean_cost > weak.mean_quality - lam * weak.mean_cost


# ---------------------------------------------------------------- bad input
def test_score_matrices_must_match_the_scorers():
    X, Q, S1, S2 = two_scorers(n=60)
    scorers = [
        CallableScorer("weak", lambda p, im: [0.0] * len(p), cost=0.1, cost_unit="flops"),
        CallableScorer("strong", lambda p, im: [0.0] * len(p), cost=1.0, cost_unit="flops"),
    ]
    with pytest.raises(ValueError, match=r"^scores has 1 matrices for 2 scorers \['weak', 'strong'\]"):
        CascadeRouter(router(), scorer=scorers, cv=3).fit(X, Q, scores=S1)
    with pytest.raises(ValueError, match=r"^scores has 3 matrices for 2 scorers"):
        CascadeRouter(router(), scorer=scorers, cv=3).fit(X, Q, scores=np.stack([S1, S2, S1], axis=2))
    with pytest.raises(
        ValueError, match=r"^scores has keys \['weak', 'judge'\] but the scorers are \['weak', 'strong'\]"
    ):
        CascadeRouter(router(), scorer=scorers, cv=3).fit(X, Q, scores={"weak": S1, "judge": S2})
    cascade = CascadeRouter(router(), scorer=scorers, cv=3).fit(X, Q, scores={"strong": S2, "weak": S1})
    assert cascade.scorer_names_ == ["weak", "strong"]
    np.testing.assert_allclose(cascade.normalized_scoring_costs_, [0.01, 0.1])
    with pytest.raises(ValueError, match=r"^scores has 1 matrices but the cascade was fitted with 2 scorers"):
        cascade.simulate(X, Q, S1)
    with pytest.raises(ValueError, match=r"^scores has 3 matrices but the cascade was fitted with 2 scorers"):
        cascade.simulate(X, Q, [S1, S2, S1])
    with pytest.raises(ValueError, match=r"^scores has keys \['weak'\] but the scorers are"):
        cascade.simulate(X, Q, {"weak": S1})
    # by name, in any order, is the same as the scorers' order
    by_name = cascade.simulate(X, Q, {"strong": S2, "weak": S1})
    in_order = cascade.simulate(X, Q, [S1, S2])
    assert by_name.order == in_order.order
    np.testing.assert_array_equal(by_name.scored_by, in_order.scored_by)


@pytest.mark.parametrize(
    ("scoring_cost", "message"),
    [
        ([0.1, 0.2, 0.3], r"^scoring_cost has 3 values for 2 scorers"),
        ([0.1], r"^scoring_cost has 1 values for 2 scorers"),
        ({"scorer0": 0.1}, r"^scoring_cost has keys \['scorer0'\] but the scorers are \['scorer0', 'scorer1'\]"),
        ({"scorer0": 0.1, "judge": 0.2}, r"^scoring_cost has keys"),
        (0.1, r"^scoring_cost must be a number for one scorer, or one per scorer"),
        ([0.1, -0.2], r"^scoring_cost must be"),
    ],
)
def test_scoring_cost_must_give_one_cost_per_scorer(scoring_cost, message):
    X, Q, S1, S2 = two_scorers(n=60)
    with pytest.raises(ValueError, match=message):
        CascadeRouter(router(), scoring_cost=scoring_cost, cv=3).fit(X, Q, scores=[S1, S2])


# ---------------------------------------------------------------- generate == simulate, two scorers
N = 120
COSTS = {"cheap": 1.0, "mid": 4.0, "big": 10.0}
NAMES = list(COSTS)


def prompt_feature(prompts):
    return np.array([[(int(p[1:]) * 0.618) % 1.0] for p in prompts])


def true_quality(i: int, k: int, seed: int) -> float:
    """Generator k's image of prompt i: the cheap one fails on about a third of seeds."""
    x = (i * 0.618) % 1.0
    rng = np.random.default_rng(seed)
    base = 3.0 + x
    if k == 0:
        return base - 2.0 * (rng.uniform() < 1 / 3) + 0.1 * rng.normal()
    return base + (-0.8, 0.1)[k - 1] + 0.1 * rng.normal()


def pixel_of(q: float) -> int:
    return int(np.clip(round(q * 40), 0, 255))


def generator(k: int):
    def draw(prompts, seeds):
        return [Image.new("L", (4, 4), pixel_of(true_quality(int(p[1:]), k, s))) for p, s in zip(prompts, seeds)]

    return CallableGenerator(NAMES[k], draw, cost=COSTS[NAMES[k]], cost_unit="flops")


def exact_score(pixel: int) -> float:
    return pixel / 40.0


def rough_score(prompt: str, pixel: int) -> float:
    """The exact score plus a deterministic offset of the image (its pixel) and prompt, up to ±1."""
    return pixel / 40.0 + float(np.sin(12.9898 * pixel + 78.233 * int(prompt[1:])))


def read_exact(prompts, images):
    return [exact_score(int(np.asarray(im)[0, 0])) for im in images]


def read_rough(prompts, images):
    return [rough_score(p, int(np.asarray(im)[0, 0])) for p, im in zip(prompts, images)]


def score_matrices(prompts, seed: int, first: int = 0):
    """Quality, rough and exact scores of every generator's image of ``prompts`` (prompt ``first + j``
    at position ``j`` of a run seeded with ``seed``)."""
    pixels = np.array(
        [
            [pixel_of(true_quality(int(p[1:]), k, candidate_seed(seed, j, NAMES[k]))) for k in range(3)]
            for j, p in enumerate(prompts)
        ]
    )
    Q = np.array(
        [
            [true_quality(int(p[1:]), k, candidate_seed(seed, j, NAMES[k])) for k in range(3)]
            for j, p in enumerate(prompts)
        ]
    )
    rough = np.array([[rough_score(p, px) for px in row] for p, row in zip(prompts, pixels)])
    return Q, rough, pixels / 40.0


def two_scorer_cascade(**params):
    router_ = CostAwareRouter(
        GeneratorRegistry([generator(k) for k in range(3)]),
        features=FunctionTransformer(prompt_feature),
        quality_model=KNeighborsRegressor(n_neighbors=20),
        progress=False,
    )
    scorers = {
        "rough": CallableScorer("rough", read_rough, cost=0.1, cost_unit="flops"),
        "exact": CallableScorer("exact", read_exact, cost=1.5, cost_unit="flops"),
    }
    params.setdefault("random_state", 0)
    return CascadeRouter(router_, scorer=scorers, **params)


@pytest.mark.parametrize("scores_as", ["list", "dict"])
@pytest.mark.parametrize(
    ("lam", "policy"), [(0.0, "index"), (0.3, "index"), (0.6, "index"), (1.2, "index"), (0.6, "myopic")]
)
def test_generate_does_what_simulate_predicts_with_two_scorers(lam, policy, scores_as):
    train = [f"p{i}" for i in range(N)]
    Q, rough, exact = score_matrices(train, seed=1)
    fit_scores = [rough, exact] if scores_as == "list" else {"exact": exact, "rough": rough}
    cascade = two_scorer_cascade(cost_penalty=lam, policy=policy).fit(train, Q, scores=fit_scores)
    assert cascade.scorer_names_ == ["rough", "exact"]
    test = [f"p{i}" for i in range(N, N + 40)]
    result = cascade.generate(test, seed=7, batch_size=4, progress=False)
    Q_test, rough_test, exact_test = score_matrices(test, seed=7)
    expected = cascade.simulate(test, Q_test, scores=[rough_test, exact_test])
    assert result.complete and not result.errors
    assert [tuple(o) for o in result.order] == expected.order
    assert result.returned == expected.returned.tolist()
    assert result.scorer_names == ["rough", "exact"]
    ran = ~np.isnan(result.score_cube)
    np.testing.assert_array_equal(ran, expected.scored_by)  # which scorer ran on which image
    np.testing.assert_allclose(result.score_cube[..., 0][ran[..., 0]], rough_test[ran[..., 0]], rtol=1e-12)
    np.testing.assert_allclose(result.score_cube[..., 1][ran[..., 1]], exact_test[ran[..., 1]], rtol=1e-12)
    np.testing.assert_allclose(result.normalized_cost, expected.cost, rtol=1e-12)
    np.testing.assert_allclose(result.cost, expected.cost * 10.0, rtol=1e-12)
    if lam in (0.3, 0.6):  # the test is about two scorers: here both run
        assert ran[..., 0].any() and ran[..., 1].any()
