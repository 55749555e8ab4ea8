"""Celery tasks of the model service (``listener_act`` routed to the ``gpu-live`` queue, the
others to ``gpu-batch``: settings ``GPU_LIVE_QUEUE``, ``GPU_BATCH_QUEUE``). Thin: ids in, services
do the work. ``acks_late`` (settings) makes a killed worker's job come back; transient database
errors are retried with back-off; a bad checkpoint fails at once with a clear message.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_init, worker_ready
from django.db import InterfaceError, OperationalError

from .selectors import TurnNotReady

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, ConnectionError)


@shared_task(
    name="models_svc.tasks.listener_act",
    bind=True,
    acks_late=True,
    soft_time_limit=300,
    time_limit=330,
    autoretry_for=TRANSIENT,
    retry_backoff=1,
    retry_backoff_max=8,
    max_retries=3,
)
def listener_act(self, game_id: int, turn_index: int) -> dict | None:
    """Act as the listener of ``game_id`` on turn ``turn_index`` and report the action back.

    Idempotent: a turn that is already answered is left alone, and sampling is seeded by the
    game and turn, so a redelivered task proposes the same action. The game's own deadline
    handles slow answers (the engine ignores late ones), so the time limit only has to cover a
    cold checkpoint load; preload policies with ``RESPECT_MODEL_PRELOAD``.
    """
    from .services import act_for_turn

    try:
        decision = act_for_turn(game_id, turn_index)
    except TurnNotReady as exc:
        raise self.retry(exc=exc, countdown=0.5, max_retries=10) from exc
    if decision is None:
        return None
    return {"action": decision.action, "probability": decision.probability}


@shared_task(
    name="models_svc.tasks.decode_feedback_run",
    acks_late=True,
    soft_time_limit=6 * 3600,
    time_limit=6 * 3600 + 300,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=5,
)
def decode_feedback_run(run_id: int) -> dict:
    """Decode the feedback of a DecodeRun (idempotent: already labelled turns are skipped)."""
    from .services import execute_decode_run

    run = execute_decode_run(run_id)
    return {"run": run.pk, "status": run.status, "done": run.done, "total": run.total}


@shared_task(
    name="models_svc.tasks.embed_tangrams",
    acks_late=True,
    soft_time_limit=3600,
    time_limit=3900,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    max_retries=5,
)
def embed_tangrams(embedder_spec: str, names: list[str] | None = None) -> dict:
    """Embed tangrams with a CLIP checkpoint and rebuild the similarity matrix (idempotent)."""
    from .services import embed_tangrams as embed

    embedding_set = embed(embedder_spec, names)
    return {"model_version": embedding_set.model_version, "tangrams": len(embedding_set.names)}


@shared_task(
    name="models_svc.tasks.check_checkpoint",
    acks_late=True,
    soft_time_limit=1800,
    time_limit=1900,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    max_retries=3,
)
def check_checkpoint(checkpoint_id: int) -> dict:
    """Load a registered checkpoint on a gpu worker and record its status."""
    from .services import check_checkpoint_load

    checkpoint = check_checkpoint_load(checkpoint_id)
    return {"status": checkpoint.status, "message": checkpoint.status_message}


@shared_task(
    name="models_svc.tasks.train_policy_run",
    acks_late=True,
    soft_time_limit=48 * 3600,
    time_limit=48 * 3600 + 600,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=5,
)
def train_policy_run(run_id: int) -> dict:
    """Train a TrainingRun's adapter. A redelivered task (the worker was killed) resumes after
    the run's last complete epoch once the run is stale; a finished or cancelled run, or one
    another worker still trains, is left alone."""
    from .training.runs import execute_training_run

    run = execute_training_run(run_id)
    return {"run": run.pk, "status": run.status, "adapter": run.output_adapter}


@shared_task(
    name="models_svc.tasks.score_turns_run",
    acks_late=True,
    soft_time_limit=12 * 3600,
    time_limit=12 * 3600 + 300,
    autoretry_for=TRANSIENT,
    retry_backoff=5,
    retry_backoff_max=300,
    max_retries=5,
)
def score_turns_run(run_id: int) -> dict:
    """Recompute p_t for the turns of a ScoringRun (idempotent: scored turns are skipped)."""
    from .scoring import execute_scoring_run

    run = execute_scoring_run(run_id)
    return {"run": run.pk, "status": run.status, "scored": run.scored}


@worker_init.connect
def size_live_batches(sender=None, **kwargs) -> None:
    """Cap the live worker's batches at the turns its pool can ask at once (``-c 16`` threads:
    16), so a batch holding every thread's turn does not wait out its window for more."""
    from .registry import set_turns_at_once, turns_at_once

    set_turns_at_once(turns_at_once(sender.pool_cls, sender.concurrency))


@worker_ready.connect
def preload_models(sender=None, **kwargs) -> None:
    """Load the policies named in ``MODELS_SVC['PRELOAD']`` (``RESPECT_MODEL_PRELOAD``) when a
    worker starts, so the first game turn does not wait for a multi-GB checkpoint to load."""
    from django.conf import settings

    from .registry import get_policy

    for spec in settings.MODELS_SVC.get("PRELOAD", []):
        try:
            get_policy(spec)
            logger.info("preloaded policy %s", spec)
        except Exception:
            logger.exception("could not preload policy %s", spec)
    if settings.MODELS_SVC.get("PRELOAD"):
        from .registry import policy_server

        logger.info("model cache holds: %s", "; ".join(policy_server().cache.holdings()))
