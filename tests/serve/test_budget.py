"""A budget over a stream: every window of images stays within B x window, and its mean stays near B."""

from __future__ import annotations

import concurrent.futures
import sqlite3

import httpx
import numpy as np
import pytest

from costroute.scoring import CallableScorer
from costroute.serve import SpendWindow, create_app
from costroute.serve._jobs import ImageJob, RouteJob

from ._helpers import Counting, ServerThread, brightness, make_cascade, make_router

WORDS = "red blue cat dog tree house two three under above left right at dusk night with a the of and".split()


def stream(n: int, seed: int = 1) -> list[str]:
    """Prompts of 1 to 15 words: short ones are cheap to route well, long ones gain from dear generators."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=rng.integers(1, 16))) for _ in range(n)]


def rolling_sums(costs, window: int) -> np.ndarray:
    """Spend of every window of ``window`` consecutive images, the first ones included (fewer images)."""
    c = np.r_[np.zeros(window - 1), np.asarray(costs, dtype=float)]
    return np.convolve(c, np.ones(window), "valid")


def served_costs(engine, prompts, per_batch: int) -> list[float]:
    """Run ``prompts`` through the engine in batches, as the batcher would; the images' normalised costs, in order."""
    engine.start()
    costs = []
    for start in range(0, len(prompts), per_batch):
        jobs = [ImageJob(p, 1, None, start + i) for i, p in enumerate(prompts[start : start + per_batch])]
        for result in engine.run_batch(jobs):
            costs += [im.normalized_cost for im in result.images]
    engine.close()
    return costs


# ---------------------------------------------------------------- the window itself
def test_the_guard_never_lets_a_window_past_its_limit_whatever_is_reserved():
    rng = np.random.default_rng(0)
    window = SpendWindow(budget=0.3, size=16, floor=0.1)
    spent = []
    for _ in range(60):  # batches of reservations, some settled cheaper, some failed
        slots = []
        for _ in range(int(rng.integers(1, 6))):
            wanted = float(rng.choice([0.1, 0.3, 1.0]))
            slots.append((window.reserve(wanted if wanted <= window.room() else 0.1), wanted))
        for slot, _ in slots:
            outcome = rng.choice(["as planned", "failed", "headroom"])
            cost = {"as planned": None, "failed": None, "headroom": min(1.0, window.headroom(slot))}[outcome]
            if outcome == "as planned":
                cost = window._guard[slot - window._base]
            window.settle(slot, cost)
            spent.append(0.0 if cost is None else max(cost, 0.1))
    assert rolling_sums(spent, 16).max() <= 0.3 * 16 + 1e-9
    spend, n = window.spend()
    assert n == 16 and spend <= 0.3 * 16 + 1e-9


def test_room_fits_and_headroom_agree():
    window = SpendWindow(budget=0.5, size=4, floor=0.1)
    assert window.room() == pytest.approx(0.5)  # starts full of images at the budget
    assert window.fits([0.1, 0.9]) and not window.fits([0.6])
    a = window.reserve(0.1)
    b = window.reserve(0.9)
    assert window.headroom(a) == pytest.approx(0.1) and window.headroom(b) == pytest.approx(0.9)
    window.settle(a, 0.1)
    window.settle(b, None)  # failed: spends nothing, counts as the cheapest in the guard
    assert window.spend() == (0.1, 2)
    assert window.room() == pytest.approx(2.0 - 0.7)


# ---------------------------------------------------------------- a router's stream
@pytest.mark.parametrize("explore", [0.0, 0.2])
def test_a_routers_window_mean_stays_at_or_under_the_budget_and_near_it(explore):
    scorer = CallableScorer("bright", brightness, cost=0.5)  # 0.05 normalised per image, charged too
    app = create_app(make_router(), budget=0.4, window=64, explore=explore, scorer=scorer, seed=0)
    costs = served_costs(app.state.service.engine, stream(640), per_batch=8)
    sums = rolling_sums(costs, 64)
    assert sums.max() <= 0.4 * 64 + 1e-9  # the hard guard, in every window
    prefix = np.cumsum(costs)[:64] / np.arange(1, 65)
    assert prefix.max() <= 0.4 + 1e-9  # the first images too
    assert sums[64:].mean() / 64 > 0.9 * 0.4  # and the budget is used, not wasted
    without = np.asarray(costs) - 0.05
    assert (without > 0.1 + 1e-9).any() and (np.abs(without - 0.1) < 1e-9).any()  # routing still chooses


def test_fallbacks_to_dearer_generators_stay_within_the_guard():
    failing = Counting(fail_on="dog")  # the cheapest fails on some prompts: they fall back to dearer ones
    app = create_app(make_router([failing, Counting(), Counting()]), budget=0.35, window=32, seed=0)
    costs = served_costs(app.state.service.engine, stream(320, seed=2), per_batch=8)
    assert rolling_sums(costs, 32).max() <= 0.35 * 32 + 1e-9
    assert failing.calls > 0


def test_a_cascades_window_counts_escalations_and_scoring():
    cascade = make_cascade(scoring_cost=0.5, cost_penalty=0.0)
    app = create_app(cascade, budget=0.5, window=32, seed=0)
    engine = app.state.service.engine
    costs = served_costs(engine, stream(192, seed=3), per_batch=6)
    sums = rolling_sums(costs, 32)
    assert sums.max() <= 0.5 * 32 + 1e-9
    plain = np.isclose(np.asarray(costs)[:, None], [0.1, 0.3, 1.0]).any(axis=1)
    assert (~plain).sum() >= 5  # some images were scored, some escalated: charged beyond one image
    assert sums[32:].mean() / 32 > 0.85 * 0.5


# ---------------------------------------------------------------- over HTTP, with the store and the metrics
def test_a_served_stream_holds_the_budget_and_the_metrics_show_the_window(tmp_path):
    store = tmp_path / "served.sqlite"
    app = create_app(make_router(), budget=0.3, window=32, store=store, max_batch_size=4, seed=0)
    prompts = stream(160, seed=4)
    with ServerThread(app) as server:

        def ask(i: int) -> httpx.Response:
            return httpx.post(
                f"{server.url}/v1/images/generations", json={"prompt": prompts[i], "costroute": {"seed": i}}, timeout=30
            )

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(ask, range(len(prompts))))
        metrics = httpx.get(f"{server.url}/metrics").text
        route = httpx.post(f"{server.url}/v1/route", json={"prompt": prompts[0]}).json()
    assert all(r.status_code == 200 for r in responses)
    with sqlite3.connect(store) as db:  # the order the server charged them in
        costs = [c / 10.0 for (c,) in db.execute("SELECT cost FROM images ORDER BY id")]
    assert len(costs) == 160 and rolling_sums(costs, 32).max() <= 0.3 * 32 + 1e-9
    window_mean = float(np.mean(costs[-32:]))
    values = {
        line.split()[0]: float(line.split()[1])
        for line in metrics.splitlines()
        if line and not line.startswith("#") and "{" not in line.split()[0]
    }
    assert values["costroute_window_mean_cost"] == pytest.approx(window_mean)
    assert values["costroute_window_images"] == 32 and values["costroute_budget"] == 0.3
    assert values["costroute_window_cost_penalty"] > 0
    assert values["costroute_spend_total"] == pytest.approx(sum(costs))
    assert route["budget"] == 0.3 and route["data"][0]["cost_penalty"] > 0


def test_a_cascade_with_exploration_holds_the_window_and_leaks_no_reservation():
    """Explored images (made directly, scored) beside the cascade's: every window of reservations, in the
    order the window took them, stays within B x window, and nothing is left pending."""
    cascade = make_cascade(scoring_cost=0.5, cost_penalty=0.0)
    app = create_app(cascade, budget=0.5, window=16, explore=0.5, seed=0)
    engine = app.state.service.engine
    window = engine.budget.window
    settled: dict[int, float] = {}
    settle = window.settle

    def recording(slot, cost):
        settled[slot] = 0.0 if cost is None else float(cost)
        settle(slot, cost)

    window.settle = recording
    costs = served_costs(engine, stream(240, seed=5), per_batch=6)
    assert len(settled) == len(costs) and sum(settled.values()) == pytest.approx(sum(costs))
    in_order = [settled[slot] for slot in sorted(settled)]
    assert rolling_sums(in_order, 16).max() <= 0.5 * 16 + 1e-9
    assert len(window._guard) <= 16 + 6  # trimmed as it goes: no reservation left pending


# ---------------------------------------------------------------- decisions only: /v1/route charges the window
def test_a_stream_of_route_decisions_holds_the_budget_window():
    app = create_app(make_router(), budget=0.3, window=32, seed=0)
    prompts = stream(192, seed=5)
    with ServerThread(app) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        data = [client.post("/v1/route", json={"prompt": p}).json()["data"][0] for p in prompts]
        metrics = client.get("/metrics").text
        image = client.post("/v1/images/generations", json={"prompt": prompts[0], "costroute": {"seed": 1}})
    charged = np.array([d["charged_normalized_cost"] for d in data])
    np.testing.assert_allclose(charged, [d["normalized_cost"] for d in data])  # no scorer: the generator's cost
    sums = rolling_sums(charged, 32)
    assert sums.max() <= 0.3 * 32 + 1e-9  # the hard guard holds for decisions as for images
    assert sums[64:].mean() / 32 > 0.85 * 0.3  # and uses it (three coarse costs in a window of 32: the guard binds)
    assert len({d["generator"] for d in data}) > 1 and len({d["cost_penalty"] for d in data}) > 1  # λ moves
    values = {
        line.split()[0]: float(line.split()[1])
        for line in metrics.splitlines()
        if line and not line.startswith("#") and "{" not in line.split()[0]
    }
    assert values["costroute_window_images"] == 32  # the decisions fill the window images share
    assert values["costroute_window_mean_cost"] == pytest.approx(charged[-32:].mean())
    assert values["costroute_spend_total"] == 0.0  # nothing was made
    assert image.status_code == 200


def test_route_decisions_charge_scoring_and_a_cascades_expected_cost():
    scorer = CallableScorer("bright", brightness, cost=0.5)  # 0.05 normalised per image
    engine = create_app(make_router(), budget=0.4, window=16, scorer=scorer, seed=0).state.service.engine
    engine.start()
    decisions = engine.run_batch([RouteJob(stream(48, seed=6))])[0].decisions
    charged = np.array([d.charged for d in decisions])
    plain = ~np.array([d.budget_guard for d in decisions])
    np.testing.assert_allclose(charged[plain], np.array([d.normalized_cost for d in decisions])[plain] + 0.05)
    assert rolling_sums(charged, 16).max() <= 0.4 * 16 + 1e-9
    cascade = make_cascade(scoring_cost=0.5, cost_penalty=0.0)
    engine = create_app(cascade, budget=0.5, window=16, seed=0).state.service.engine
    engine.start()
    decisions = engine.run_batch([RouteJob(stream(48, seed=7))])[0].decisions
    charged = np.array([d.charged for d in decisions])
    assert rolling_sums(charged, 16).max() <= 0.5 * 16 + 1e-9
    first = next(d for d in decisions if not d.budget_guard)
    row = engine.inner.predict_quality([first.prompt])
    assert first.charged == pytest.approx(cascade.expected_cost(row, first.cost_penalty))
