"""Micro-batching: many worker threads ask one model; it answers them in batches.

The live GPU worker runs Celery with a thread pool (``--pool threads -c 16``): each
``listener_act`` task calls ``act`` with one input and waits. One serving thread per base model
collects the requests that arrive within ``max_wait`` seconds of the first (up to ``max_batch``),
whatever adapter each names, and answers them with one batched forward pass. A request therefore
waits at most ``max_wait`` for company, plus the batches queued ahead of it (each at most
``max_batch`` rows). Sampling is seeded per game and padding never changes a row's result, so
each answer and its p_t are those the request would get alone.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from typing import Any

from .interfaces import PolicyDecision, PolicyInput

Runner = Callable[[list[PolicyInput], list[Hashable]], list[PolicyDecision]]


class MicroBatcher:
    """Requests tagged with a route (e.g. the adapter to use) answered by ``runner`` in
    batches that may mix routes."""

    def __init__(self, runner: Runner, *, name: str, max_batch: int = 32, max_wait: float = 0.005):
        if max_batch < 1 or max_wait < 0:
            raise ValueError("max_batch must be at least 1 and max_wait not negative")
        self.runner = runner
        self.name = name
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._queue: queue.Queue[tuple[PolicyInput, Hashable, Future]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batch_sizes: list[int] = []  # for benchmarks and tests: rows of each pass

    def submit(self, inputs: Sequence[PolicyInput], route: Hashable = None) -> list[PolicyDecision]:
        """Answer ``inputs`` (all on ``route``), waiting for the batches that carry them."""
        self._ensure_thread()
        futures: list[Future] = []
        for item in inputs:
            future: Future = Future()
            self._queue.put((item, route, future))
            futures.append(future)
        return [future.result() for future in futures]

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name=f"batched-{self.name}", daemon=True
                )
                self._thread.start()

    def _collect(self) -> list[tuple[PolicyInput, Hashable, Future]]:
        batch = [self._queue.get()]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            left = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
                batch.append(item)
            except queue.Empty:
                break
        return batch

    def _serve(self) -> None:
        while True:
            batch = self._collect()
            self.batch_sizes.append(len(batch))
            try:
                decisions = self.runner([i for i, _, _ in batch], [r for _, r, _ in batch])
            except BaseException as exc:  # every waiting caller gets the error
                for _, _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, _, future), decision in zip(batch, decisions, strict=True):
                future.set_result(decision)


class BatchedPolicy:
    """One policy behind a micro-batcher (every request on the same route)."""

    def __init__(self, policy: Any, *, max_batch: int = 32, max_wait: float = 0.005) -> None:
        self.policy = policy
        self.name = policy.name
        self.version = getattr(policy, "version", "")
        self.batcher = MicroBatcher(
            lambda items, _routes: policy.act(items),
            name=self.name,
            max_batch=max_batch,
            max_wait=max_wait,
        )

    def __getattr__(self, name: str) -> Any:
        return getattr(self.policy, name)

    def act(self, inputs: Sequence[PolicyInput]) -> list[PolicyDecision]:
        return self.batcher.submit(inputs)
