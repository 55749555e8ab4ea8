"""Micro-batching: many worker threads ask one model; it answers them in batches.

A GPU worker runs Celery with a thread pool (``-P threads -c 32``); each ``listener_act`` task
calls ``act`` with one input, and the single model thread collects whatever requests arrive
within ``max_wait`` seconds (up to ``max_batch``) into one batched forward pass.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from .interfaces import PolicyDecision, PolicyInput


class BatchedPolicy:
    def __init__(self, policy: Any, *, max_batch: int = 32, max_wait: float = 0.01) -> None:
        self.policy = policy
        self.name = policy.name
        self.version = getattr(policy, "version", "")
        self.max_batch = max_batch
        self.max_wait = max_wait
        self._queue: queue.Queue[tuple[PolicyInput, Future]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.policy, name)

    def act(self, inputs: Sequence[PolicyInput]) -> list[PolicyDecision]:
        self._ensure_thread()
        futures: list[Future] = []
        for item in inputs:
            future: Future = Future()
            self._queue.put((item, future))
            futures.append(future)
        return [future.result() for future in futures]

    def _ensure_thread(self) -> None:
        with self._start_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name=f"batched-{self.name}", daemon=True
                )
                self._thread.start()

    def _serve(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(
                        self._queue.get(timeout=max(remaining, 0))
                        if remaining > 0
                        else self._queue.get_nowait()
                    )
                except queue.Empty:
                    break
            try:
                decisions = self.policy.act([item for item, _ in batch])
            except BaseException as exc:  # every waiting caller gets the error
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for (_, future), decision in zip(batch, decisions, strict=True):
                future.set_result(decision)
