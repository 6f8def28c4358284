"""Dynamic batching: :class:`Batcher` groups the requests that arrive together and runs them in the worker thread.

Endpoints :meth:`~Batcher.submit` jobs into a bounded queue and await their answer; a full
queue is refused at once (HTTP 429 with ``Retry-After``), never waited on. One task takes the
first waiting job, keeps collecting the jobs that arrive within ``batch_wait_ms`` until the
batch holds ``max_batch_size`` images, and hands the batch to the engine in a single worker
thread (:class:`concurrent.futures.ThreadPoolExecutor` with one worker), so that the event
loop never waits on a model. The engine groups the batch per generator: requests that arrived
together share one pipeline call.

Shutting down (:meth:`~Batcher.aclose`) refuses new jobs (503), answers the jobs still waiting
with 503, and waits for the batch in the worker to finish, store write included.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ._errors import APIError
from ._metrics import Metrics

__all__ = ["Batcher"]

logger = logging.getLogger("costroute.serve")


class _Pending:
    """A job and the future its endpoint awaits."""

    __slots__ = ("job", "future")

    def __init__(self, job: Any, future: asyncio.Future):
        self.job = job
        self.future = future

    def answer(self, outcome: Any) -> None:
        if self.future.done():  # the client went away
            return
        if isinstance(outcome, BaseException):
            self.future.set_exception(outcome)
        else:
            self.future.set_result(outcome)


class Batcher:
    """Collect jobs into batches and run each batch with ``run_batch`` in one worker thread.

    Parameters
    ----------
    run_batch : callable
        ``run_batch(list of jobs) -> list of answers`` (a result or an exception per job),
        called in the worker thread.
    executor : ThreadPoolExecutor
        The one-thread executor the engine lives in.
    max_batch_size : int
        Images per batch (a job weighs its ``size``); a larger job runs alone. The engine then
        runs each generator on its share of the batch, at most its own batch size per call:
        give ``max_batch_size x`` the number of generators for full calls to every one.
    batch_wait_ms : float
        How long a batch waits for more jobs after its first one.
    max_queue : int
        Jobs that may wait; more are refused.
    metrics : Metrics
    """

    def __init__(
        self,
        run_batch: Any,
        executor: ThreadPoolExecutor,
        *,
        max_batch_size: int,
        batch_wait_ms: float,
        max_queue: int,
        metrics: Metrics,
    ):
        self.run_batch = run_batch
        self.executor = executor
        self.max_batch_size = int(max_batch_size)
        self.wait = float(batch_wait_ms) / 1000.0
        self.metrics = metrics
        self.queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=int(max_queue))
        self.closing = False
        self._task: asyncio.Task | None = None
        self._running: asyncio.Future | None = None
        self._batch_seconds = 0.0  # moving average, for Retry-After

    # ------------------------------------------------------------------ endpoints' side
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="costroute-batcher")

    async def submit(self, job: Any) -> Any:
        """Queue ``job`` and return its answer; :class:`APIError` 429 (queue full) or 503 (shutting down)."""
        if self.closing:
            raise APIError(503, "the server is shutting down; retry on another instance", code="shutting_down")
        self.start()
        pending = _Pending(job, asyncio.get_running_loop().create_future())
        try:
            self.queue.put_nowait(pending)
        except asyncio.QueueFull:
            retry = self.retry_after()
            raise APIError(
                429,
                f"the server's queue is full ({self.queue.maxsize} requests waiting); retry in {retry} s",
                code="queue_full",
                headers={"Retry-After": str(retry)},
            ) from None
        self.metrics.queue.set(self.queue.qsize())
        return await pending.future

    def retry_after(self) -> int:
        """Seconds until the queue has room, from the recent batches' wall time (at least 1)."""
        batches = self.queue.qsize() / max(self.max_batch_size, 1) + 1
        return max(1, math.ceil(batches * self._batch_seconds))

    # ------------------------------------------------------------------ the loop
    async def _collect(self, batch: list[_Pending]) -> None:
        """Add the jobs that arrive within the wait to ``batch`` (in place), up to ``max_batch_size`` images."""
        images = sum(p.job.size for p in batch)
        deadline = asyncio.get_running_loop().time() + self.wait
        while images < self.max_batch_size:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0 and self.queue.empty():
                break
            try:
                nxt = self.queue.get_nowait() if left <= 0 else await asyncio.wait_for(self.queue.get(), left)
            except (asyncio.QueueEmpty, asyncio.TimeoutError, TimeoutError):  # distinct classes before 3.11
                break
            batch.append(nxt)
            images += nxt.job.size

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        batch: list[_Pending] = []
        try:
            while True:
                batch = [await self.queue.get()]
                await self._collect(batch)
                self.metrics.queue.set(self.queue.qsize())
                live = [p for p in batch if not p.future.done()]  # clients that left before their batch ran
                if not live:
                    batch = []
                    continue
                started = time.perf_counter()
                self._running = loop.run_in_executor(self.executor, self.run_batch, [p.job for p in live])
                try:
                    answers = await asyncio.shield(self._running)
                except Exception as exc:  # noqa: BLE001 - an engine bug: answer every job, keep serving
                    logger.exception("a batch failed", exc_info=exc)
                    error = APIError(500, f"internal error in the batch ({type(exc).__name__})", code="internal_error")
                    answers = [error] * len(live)
                finally:
                    self._running = None
                elapsed = time.perf_counter() - started
                self._batch_seconds = elapsed if self._batch_seconds == 0 else 0.8 * self._batch_seconds + 0.2 * elapsed
                for p, answer in zip(live, answers):
                    p.answer(answer)
                batch = []
        except asyncio.CancelledError:
            for p in batch:  # taken from the queue, never run
                p.answer(APIError(503, "the server is shutting down", code="shutting_down"))
            raise

    # ------------------------------------------------------------------ shutting down
    async def aclose(self) -> None:
        """Refuse new jobs, answer the waiting ones with 503, finish the batch in the worker."""
        self.closing = True
        while not self.queue.empty():
            self.queue.get_nowait().answer(APIError(503, "the server is shutting down", code="shutting_down"))
        running = self._running
        if running is not None:
            try:
                await asyncio.shield(running)
            except Exception:  # noqa: BLE001, S110 - the loop reports it
                pass
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):  # noqa: BLE001
                pass
        while not self.queue.empty():
            self.queue.get_nowait().answer(APIError(503, "the server is shutting down", code="shutting_down"))
