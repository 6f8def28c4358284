"""CascadeRouter.generate on real generator and scorer objects: it does what simulate() predicts."""

import numpy as np
import pytest
from PIL import Image
from sklearn.neighbors import KNeighborsRegressor
from sklearn.preprocessing import FunctionTransformer

from costroute import CascadeRouter, CostAwareRouter
from costroute.execution import GenerationError, candidate_seed
from costroute.generators import CallableGenerator, GeneratorRegistry
from costroute.scoring import CallableScorer

N = 120
COSTS = {"cheap": 1.0, "mid": 4.0, "big": 10.0}
NAMES = list(COSTS)


def prompt_feature(prompts):
    """Prompt "p{i}" -> its world feature (a deterministic function of i)."""
    return np.array([[(int(p[1:]) * 0.618) % 1.0] for p in prompts])


def true_quality(i: int, k: int, seed: int) -> float:
    """Quality of generator k's image of prompt i: the cheap one fails on about a third of seeds."""
    x = (i * 0.618) % 1.0
    rng = np.random.default_rng(seed)
    base = 3.0 + x
    if k == 0:
        return base - 2.0 * (rng.uniform() < 1 / 3) + 0.1 * rng.normal()
    return base + (-0.8, 0.1)[k - 1] + 0.1 * rng.normal()


def image_of(q: float) -> Image.Image:
    """An image whose pixel value encodes its quality (what a perfect scorer would read)."""
    return Image.new("L", (4, 4), int(np.clip(round(q * 40), 0, 255)))


def generator(k: int, calls: list | None = None, fail_on=()):
    def draw(prompts, seeds):
        if calls is not None:
            calls.append(len(prompts))
        return [None if p in fail_on else image_of(true_quality(int(p[1:]), k, s)) for p, s in zip(prompts, seeds)]

    return CallableGenerator(NAMES[k], draw, cost=COSTS[NAMES[k]], cost_unit="flops")


def read_score(prompts, images):
    return [np.asarray(im, dtype=float).mean() / 40.0 for im in images]


def world(seed0: int = 0):
    """Training prompts, their measured quality and scores (images seeded like a cascade would)."""
    prompts = [f"p{i}" for i in range(N)]
    Q = np.array([[true_quality(i, k, candidate_seed(seed0, i, NAMES[k])) for k in range(3)] for i in range(N)])
    S = np.round(Q * 40).clip(0, 255) / 40.0
    return prompts, Q, S


def cascade_over(generators, **params):
    router = CostAwareRouter(
        GeneratorRegistry(generators),
        features=FunctionTransformer(prompt_feature),
        quality_model=KNeighborsRegressor(n_neighbors=20),
        progress=False,
    )
    scorer = CallableScorer("pixel", read_score, cost=0.5, cost_unit="flops")
    params.setdefault("random_state", 0)
    return CascadeRouter(router, scorer=scorer, **params)


@pytest.mark.parametrize("lam", [0.0, 0.4, 1.3, 100.0])
def test_generate_does_exactly_what_simulate_predicts(lam):
    prompts, Q, S = world(seed0=1)
    cascade = cascade_over([generator(k) for k in range(3)], cost_penalty=lam).fit(prompts, Q, scores=S)
    test = [f"p{i}" for i in range(N, N + 40)]
    result = cascade.generate(test, seed=7, batch_size=4, progress=False)
    # the scores each candidate image would get, with the seeds the cascade uses
    S_test = np.array(
        [
            [round(true_quality(int(p[1:]), k, candidate_seed(7, i, NAMES[k])) * 40) / 40 for k in range(3)]
            for i, p in enumerate(test)
        ]
    )
    expected = cascade.simulate(test, scores=S_test)
    assert result.complete and len(result) == len(test)
    assert [tuple(o) for o in result.order] == expected.order
    assert result.returned == expected.returned.tolist()
    np.testing.assert_allclose(result.normalized_cost, expected.cost, rtol=1e-12)
    np.testing.assert_allclose(result.cost, expected.cost * 10.0, rtol=1e-12)
    scored = ~np.isnan(result.score_matrix)
    assert (scored == expected.scored).all()
    np.testing.assert_allclose(result.score_matrix[scored], S_test[scored])
    for i, name in enumerate(result.returned):
        assert result[i] is result.candidates[i][name]
        assert list(result.candidates[i]) == list(result.order[i])


def test_generate_batches_per_generator_and_reuses_seeds():
    prompts, Q, S = world()
    calls = [[], [], []]
    cascade = cascade_over([generator(k, calls[k]) for k in range(3)], cost_penalty=1.3).fit(prompts, Q, scores=S)
    test = [f"p{i}" for i in range(N, N + 30)]
    first = cascade.generate(test, seed=3, batch_size=8, progress=False)
    assert max(max(c) for c in calls if c) <= 8
    again = cascade.generate(test, seed=3, batch_size=3, progress=False)
    assert first.returned == again.returned and first.order == again.order
    for a, b in zip(first.candidates, again.candidates):
        assert {k: np.asarray(v).tolist() for k, v in a.items()} == {k: np.asarray(v).tolist() for k, v in b.items()}


def test_a_failed_first_image_falls_back_and_a_failed_escalation_is_no_candidate():
    prompts, Q, S = world()
    test = [f"p{i}" for i in range(N, N + 20)]
    gens = [generator(0, fail_on={"p121"}), generator(1), generator(2, fail_on=set(test))]
    cascade = cascade_over(gens, cost_penalty=1.3).fit(prompts, Q, scores=S)
    result = cascade.generate(test, seed=0, progress=False)
    assert result.complete
    assert result.order[1][0] == "cheap" and "cheap" not in result.candidates[1]
    assert (1, "cheap") in result.errors
    assert all("big" not in c for c in result.candidates)
    assert all(g != "big" for g in result.returned)
    # failed images are not charged
    charged = [
        sum(COSTS[g] for g in c) + 0.5 * n
        for c, n in zip(result.candidates, (~np.isnan(result.score_matrix)).sum(axis=1))
    ]
    np.testing.assert_allclose(result.cost, charged)


def test_on_error_raise_and_interruption_keep_the_partial_result():
    prompts, Q, S = world()
    test = [f"p{i}" for i in range(N, N + 20)]
    cascade = cascade_over([generator(0, fail_on={"p125"}), generator(1), generator(2)], cost_penalty=1.3)
    cascade.fit(prompts, Q, scores=S)
    with pytest.raises(GenerationError, match="prompt 5 failed on cheap") as info:
        cascade.generate(test, on_error="raise", progress=False)
    assert len(info.value.result) == 20 and "cheap" in info.value.result.candidates[0]

    def interrupted(prompts, seeds):
        raise KeyboardInterrupt

    cascade = cascade_over(
        [generator(0), generator(1), CallableGenerator("big", interrupted, cost=10.0, cost_unit="flops")],
        cost_penalty=1.3,
    )
    cascade.fit(prompts, Q, scores=S)
    with pytest.raises(KeyboardInterrupt) as info:
        cascade.generate(test, progress=False)
    partial = info.value.result
    assert sum(len(c) for c in partial.candidates) >= 20  # every first image survived the interruption
    assert all(g is None or g in c for g, c in zip(partial.returned, partial.candidates))


def test_generate_needs_a_scorer_and_checks_its_arguments():
    prompts, Q, S = world()
    cascade = cascade_over([generator(k) for k in range(3)]).fit(prompts, Q, scores=S)
    with pytest.raises(ValueError, match="batch_size"):
        cascade.generate(prompts[:3], batch_size=0)
    with pytest.raises(ValueError, match="on_error"):
        cascade.generate(prompts[:3], on_error="ignore")
    cascade.set_params(scorer=None)
    with pytest.raises(ValueError, match="needs a scorer"):
        cascade.generate(prompts[:3])


def test_budget_guard_holds_when_generating():
    prompts, Q, S = world()
    cascade = cascade_over([generator(k) for k in range(3)], budget=0.3, n_draws=4).fit(prompts, Q, scores=S)
    test = [f"p{i}" for i in range(N, N + 40)]
    result = cascade.generate(test, progress=False)
    assert result.normalized_cost.sum() <= 0.3 * len(test) + 1e-9
    assert result.budget == 0.3


def test_a_failing_score_call_closes_only_its_chunk_and_a_bad_return_is_refused():
    prompts, Q, S = world()
    test = [f"p{i}" for i in range(N, N + 24)]
    calls = {"n": 0}

    def flaky(prompts, images):
        calls["n"] += 1
        if calls["n"] == 1:
            raise ConnectionError("scoring service busy")
        return read_score(prompts, images)

    cascade = cascade_over([generator(k) for k in range(3)], cost_penalty=1.3).fit(prompts, Q, scores=S)
    cascade.set_params(scorer=CallableScorer("flaky", flaky, cost=0.5, cost_unit="flops"))
    with pytest.warns(RuntimeWarning, match=r"scoring failed for 4 prompts; they kept their first image"):
        result = cascade.generate(test, batch_size=4, progress=False)
    failed = sorted(i for i, where in result.errors if where == "scorer")
    assert failed == [0, 1, 2, 3]  # the first chunk of 4 only
    assert result.complete and (~np.isnan(result.score_matrix[4:])).any()
    cascade.set_params(
        scorer=CallableScorer("scalar", lambda p, im: [float("nan")] * len(p), cost=0.5, cost_unit="flops")
    )
    with pytest.raises(GenerationError):
        cascade.generate(test[:4], on_error="raise", progress=False)


@pytest.mark.parametrize("broken", ["raises", "wrong count", "nan"])
def test_a_scorer_that_fails_on_every_image_warns_and_every_prompt_keeps_its_first_image(broken):
    prompts, Q, S = world()
    test = [f"p{i}" for i in range(N, N + 12)]

    def score(prompts, images):
        if broken == "raises":
            raise ConnectionError("scoring service down")
        return [1.0] * (len(prompts) + 1) if broken == "wrong count" else [float("nan")] * len(prompts)

    cascade = cascade_over([generator(k) for k in range(3)], cost_penalty=1.3).fit(prompts, Q, scores=S)
    cascade.set_params(scorer=CallableScorer("broken", score, cost=0.5, cost_unit="flops"))
    with pytest.warns(RuntimeWarning) as caught:
        result = cascade.generate(test, batch_size=4, progress=False)
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert len(messages) == 1
    assert messages[0].startswith("scoring failed for 12 prompts; they kept their first image")
    assert "Scorer 'broken', first error (prompt 0): " in messages[0]
    assert ("ConnectionError: scoring service down" if broken == "raises" else "ValueError: scorer") in messages[0]
    first = [o[0] for o in result.order]
    assert result.returned == first and all(len(o) == 1 for o in result.order)
    assert np.isnan(result.score_matrix).all()


def test_a_cascade_whose_scores_all_succeed_does_not_warn():
    import warnings

    prompts, Q, S = world()
    cascade = cascade_over([generator(k) for k in range(3)], cost_penalty=1.3).fit(prompts, Q, scores=S)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = cascade.generate([f"p{i}" for i in range(N, N + 12)], batch_size=4, progress=False)
    assert not result.errors


def test_an_interrupted_run_charges_exactly_what_was_made_and_scored():
    prompts, Q, S = world()
    test = [f"p{i}" for i in range(N, N + 20)]
    made = {"n": 0}

    def big(prompts, seeds):  # the first choice of every prompt at this penalty
        made["n"] += 1
        if made["n"] > 1:
            raise KeyboardInterrupt
        return [image_of(3.0) for _ in prompts]

    gens = [generator(0), generator(1), CallableGenerator("big", big, cost=10.0, cost_unit="flops")]
    cascade = cascade_over(gens, cost_penalty=0.3, policy="myopic").fit(prompts, Q, scores=S)
    with pytest.raises(KeyboardInterrupt) as info:
        cascade.generate(test, batch_size=2, progress=False)
    partial = info.value.result
    assert sum(len(c) for c in partial.candidates) == 2  # one batch of 2 made before Ctrl-C
    scored = (~np.isnan(partial.score_matrix)).sum(axis=1)
    charged = [sum(COSTS[g] for g in c) / 10.0 + n * 0.05 for c, n in zip(partial.candidates, scored)]
    np.testing.assert_allclose(partial.normalized_cost, charged)


def test_a_generator_that_cannot_load_is_in_every_order_it_was_tried_for():
    class Broken(CallableGenerator):
        def load(self):
            raise OSError("weights missing")

    prompts, Q, S = world()
    test = [f"p{i}" for i in range(N, N + 12)]
    gens = [generator(0), generator(1), Broken("big", lambda p, s: [], cost=10.0, cost_unit="flops")]
    cascade = cascade_over(gens, cost_penalty=0.0).fit(prompts, Q, scores=S)
    result = cascade.generate(test, progress=False)
    assert result.complete
    tried_big = [i for i, o in enumerate(result.order) if "big" in o]
    assert tried_big and all((i, "big") in result.errors for i in tried_big)
    assert all("big" not in c for c in result.candidates)


def test_per_prompt_seeds_limits_and_penalties_make_each_prompt_what_it_makes_alone():
    """What a server relies on: a batch run with (seed, 0) per prompt and a λ per prompt equals one-prompt runs."""
    from costroute.execution import generate_cascade

    prompts, Q, S = world()
    cascade = cascade_over([generator(k) for k in range(3)], cost_penalty=0.4).fit(prompts, Q, scores=S)
    test = [f"p{i}" for i in range(N, N + 12)]
    seeds = [100 + 7 * i for i in range(len(test))]
    lams = np.array([0.0, 0.4, 1.3] * 4)
    predicted = cascade.router_.predict_quality(test)
    batch = generate_cascade(
        cascade._run(predicted, lams),
        test,
        cascade.router_.generators_,
        [cascade.scorer],
        progress=False,
        seed_keys=[(s, 0) for s in seeds],
    )
    for i, (prompt, seed) in enumerate(zip(test, seeds)):
        alone = cascade.generate([prompt], seed=seed, cost_penalty=float(lams[i]), progress=False)
        assert batch.order[i] == alone.order[0] and batch.returned[i] == alone.returned[0]
        assert batch.candidate_seeds[i] == alone.candidate_seeds[0]
        assert batch.candidate_seeds[i] == {g: candidate_seed(seed, 0, g) for g in batch.candidates[i]}
        assert np.asarray(batch[i]).tolist() == np.asarray(alone[0]).tolist()
        assert set(batch.candidate_seconds[i]) == set(batch.candidates[i])
    assert np.isfinite(batch.score_seconds[~np.isnan(batch.score_cube)]).all()
    # a spend limit per prompt: room to score the first image, not to escalate
    free = cascade._run(predicted, 0.0)
    unlimited = generate_cascade(free, test, cascade.router_.generators_, [cascade.scorer], progress=False)
    limits = cascade.normalized_costs_[free.first] + 0.06
    limited = generate_cascade(
        cascade._run(predicted, 0.0, limits), test, cascade.router_.generators_, [cascade.scorer], progress=False
    )
    assert (unlimited.normalized_cost > limits + 1e-9).any()
    assert (limited.normalized_cost <= limits + 1e-9).all()
    with pytest.raises(ValueError, match="seed_keys"):
        generate_cascade(
            cascade._run(predicted, 0.0), test, cascade.router_.generators_, [cascade.scorer], seed_keys=[(0, 0)]
        )
