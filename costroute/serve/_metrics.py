"""What ``GET /metrics`` shows: :class:`Metrics`, the Prometheus series of one app, in a registry of its own.

Each app has its own :class:`prometheus_client.CollectorRegistry`, so that two apps in one
process (tests, a host app mounting several) never share or clash on series. Names:

``costroute_requests_total{endpoint, status}``, ``costroute_request_seconds{endpoint}``
    HTTP requests by outcome, and their latency.
``costroute_images_total{generator}``, ``costroute_generated_images_total{generator}``
    Images served (returned), and every image made (a cascade's other candidates included).
``costroute_spend_total``, ``costroute_spend_cost_total{unit}``
    Cost spent: normalised (images and scoring), and in the generators' unit.
``costroute_escalations_total``, ``costroute_fallbacks_total``, ``costroute_explored_total``,
``costroute_budget_guard_total``
    Extra images a cascade made, moves away from a failing generator, images sent to a
    uniformly drawn generator, images the budget's hard guard sent to the cheapest generator.
``costroute_queue_length``, ``costroute_batch_seconds``, ``costroute_batch_images``
    Requests waiting, and each batch's wall time and number of images.
``costroute_window_mean_cost``, ``costroute_window_images``, ``costroute_window_cost_penalty``,
``costroute_budget``
    The budget window: mean normalised cost per image over its settled images, their number,
    the last λ the budget set, and the budget itself.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Metrics"]

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
_IMAGES = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """The Prometheus series of one app (thread-safe: the worker thread and the event loop both write)."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "costroute_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "costroute_request_seconds", "HTTP request latency", ["endpoint"], buckets=_LATENCY, registry=r
        )
        self.images = Counter("costroute_images", "Images served, by generator", ["generator"], registry=r)
        self.generated = Counter(
            "costroute_generated_images", "Images made (candidates included), by generator", ["generator"], registry=r
        )
        self.spend = Counter("costroute_spend", "Normalised cost spent (images and scoring)", registry=r)
        self.spend_unit = Counter(
            "costroute_spend_cost", "Cost spent in the generators' cost unit", ["unit"], registry=r
        )
        self.escalations = Counter("costroute_escalations", "Extra images a cascade made after scoring", registry=r)
        self.fallbacks = Counter("costroute_fallbacks", "Moves away from a failing generator", registry=r)
        self.explored = Counter("costroute_explored", "Images sent to a uniformly drawn generator", registry=r)
        self.guarded = Counter(
            "costroute_budget_guard", "Images the budget's hard guard sent to the cheapest generator", registry=r
        )
        self.queue = Gauge("costroute_queue_length", "Requests waiting for the worker", registry=r)
        self.batch_seconds = Histogram(
            "costroute_batch_seconds", "Wall time of a batch of requests", buckets=_LATENCY, registry=r
        )
        self.batch_images = Histogram("costroute_batch_images", "Images per batch", buckets=_IMAGES, registry=r)
        self.window_mean = Gauge(
            "costroute_window_mean_cost", "Mean normalised cost per image over the budget window", registry=r
        )
        self.window_images = Gauge("costroute_window_images", "Settled images in the budget window", registry=r)
        self.window_penalty = Gauge("costroute_window_cost_penalty", "The last λ the budget set", registry=r)
        self.budget = Gauge("costroute_budget", "Target mean normalised cost per image (NaN: none)", registry=r)
