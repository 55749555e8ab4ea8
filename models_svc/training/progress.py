"""A training run's progress on its TrainingRun row: step heartbeats, epoch history and the
importance-weight diagnostics, each write guarded by the worker's lease (``config.heartbeat``)."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from config import heartbeat

from ..models import TrainingRun


class DatabaseProgress:
    """Reports a trainer's progress on its TrainingRun, with a heartbeat, and reads
    cancellation requests. Raises ``LeaseLost`` when another worker took the run over."""

    def __init__(self, run_id: int, lease: str, every_seconds: float = 2.0) -> None:
        self.run_id = run_id
        self.lease = lease
        self.every = every_seconds
        self._last = 0.0

    def step(self, seed: int, epoch: int, step: int, total: int, loss: float) -> None:
        import time

        now = time.monotonic()
        if now - self._last < self.every and step < total:
            return
        self._last = now
        heartbeat.beat(
            TrainingRun,
            self.run_id,
            self.lease,
            seed_index=seed,
            step=step,
            total_steps=total,
            loss=loss,
        )

    def epoch(self, record: dict) -> None:
        with transaction.atomic():
            run = TrainingRun.objects.select_for_update().get(pk=self.run_id)
            if run.lease != self.lease:
                raise heartbeat.LeaseLost(f"training run {self.run_id} was taken over")
            summary = {k: v for k, v in record.items() if k != "step_losses"}
            key = (summary["seed"], summary["epoch"])
            # An epoch redone after a resume replaces the record of its lost first attempt.
            earlier = [h for h in run.history if (h["seed"], h["epoch"]) != key]
            run.history = sorted([*earlier, summary], key=lambda h: (h["seed"], h["epoch"]))
            run.seed_index = record["seed"]
            run.epoch = record["epoch"] + 1
            run.loss = record["loss"]
            run.heartbeat_at = timezone.now()
            run.save(update_fields=["history", "seed_index", "epoch", "loss", "heartbeat_at"])

    def diagnostics(self, document: dict) -> None:
        """Store the run's importance-weight diagnostics (start and per epoch)."""
        with transaction.atomic():
            run = TrainingRun.objects.select_for_update().get(pk=self.run_id)
            if run.lease != self.lease:
                raise heartbeat.LeaseLost(f"training run {self.run_id} was taken over")
            run.diagnostics = document
            run.save(update_fields=["diagnostics"])

    def cancelled(self) -> bool:
        return TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists()
