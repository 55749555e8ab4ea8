"""p_t for turns that were not played here (imported games): the probability of the recorded
action under a checkpoint, its prompt format and the constrained sampling distribution.

Stored on the turn with the checkpoint version that recomputed it (``probability_recomputed_by``),
so it is never mistaken for a probability logged at sampling time. A turn whose action the
constrained distribution cannot produce (the empty action, never proposed by a policy) gets a
recorded reason (``probability_note``) instead of a number. Runs are idempotent: turns that have
p_t or a reason are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from config import heartbeat
from config.errors import ApplicationError
from games.models import System, Turn

from .action_space import valid_actions
from .interfaces import ScoringPolicy
from .models import ScoringRun
from .registry import get_policy, model_options, parse_spec
from .selectors import policy_input_for_turn, turn_prompt_format

logger = logging.getLogger(__name__)

EMPTY_ACTION_NOTE = "empty action: the constrained distribution never proposes it"


def turns_without_probability(run: ScoringRun):
    """Listener turns of the run's model-system games that have neither p_t nor a reason."""
    turns = Turn.objects.filter(
        game__study=run.study,
        selection_after__isnull=False,
        action_probability__isnull=True,
        probability_note="",
    ).exclude(game__system__name=System.HUMAN)
    if run.round_index is not None:
        turns = turns.filter(game__round__index=run.round_index)
    if run.system_name:
        turns = turns.filter(game__system__name=run.system_name)
    return turns.select_related("game__system").order_by("game_id", "index")


def score_turns(
    run: ScoringRun,
    *,
    lease: str,
    batch_size: int = 64,
    progress: Callable[[int, int], None] | None = None,
) -> ScoringRun:
    """Compute and store p_t for every turn the run covers, one transaction per batch, with
    the run's counts and heartbeat (``LeaseLost`` rolls the batch back: another worker took
    the run)."""
    spec = parse_spec(run.policy, "policy")
    if spec.backend != "hf":
        raise ValueError(f"score_turns needs an hf: policy, not {run.policy!r}")
    turns = list(turns_without_probability(run))
    temperature = model_options()["temperature"]
    unscorable: dict[str, int] = dict(run.unscorable)
    scored = run.scored
    version = ""
    for start in range(0, len(turns), batch_size):
        batch = turns[start : start + batch_size]
        updates: list[tuple[int, float | None, str, str]] = []  # turn, p_t, recomputed by, note
        for turn in batch:
            format_name = turn_prompt_format(turn, turn.game.system.prompt_format)
            policy = get_policy(run.policy, prompt_format=format_name)
            if not isinstance(policy, ScoringPolicy):
                raise ValueError(f"{run.policy!r} cannot score actions")
            version = policy.version
            if not turn.action:
                updates.append((turn.pk, None, "", EMPTY_ACTION_NOTE))
                continue
            item = policy_input_for_turn(turn.game_id, turn.index)
            if turn.action not in valid_actions(item.selection, len(item.images)):
                note = f"{turn.action!r} is not a valid action for the selection before the turn"
                updates.append((turn.pk, None, "", note[:200]))
                continue
            probability = policy.score(item, turn.action)
            updates.append((turn.pk, min(max(probability, 0.0), 1.0), policy.version, ""))
        with transaction.atomic():
            for turn_id, p_t, recomputed_by, note in updates:
                # The setting the recomputed p_t holds under: the scoring policy's temperature,
                # constrained to valid actions (what ``HFPolicy.score`` computes).
                Turn.objects.filter(pk=turn_id, action_probability__isnull=True).update(
                    action_probability=p_t,
                    probability_recomputed_by=recomputed_by,
                    probability_note=note,
                    sampling_temperature=temperature if p_t is not None else None,
                    sampling_constrained=True if p_t is not None else None,
                )
                if note:
                    reason = "empty action" if note == EMPTY_ACTION_NOTE else "invalid action"
                    unscorable[reason] = unscorable.get(reason, 0) + 1
                else:
                    scored += 1
            heartbeat.beat(
                ScoringRun,
                run.pk,
                lease,
                done=start + len(batch),
                total=len(turns),
                scored=scored,
                unscorable=unscorable,
                model_version=version,
            )
        if progress:
            progress(start + len(batch), len(turns))
    run.refresh_from_db()
    return run


def execute_scoring_run(run_id: int) -> ScoringRun:
    """Run a queued scoring run through ``config.heartbeat.execute`` (safe to run again:
    finished turns are skipped, and the counts are stored with each batch; any failure ends
    it ``failed`` with the message)."""

    def work(run: ScoringRun, lease: str) -> None:
        score_turns(run, lease=lease)

    return heartbeat.execute(ScoringRun, run_id, work)


def launch_scoring_run(run: ScoringRun) -> ScoringRun:
    """Validate and save a run queued, and send it to the gpu-batch queue once the save commits."""
    if parse_spec(run.policy, "policy").backend != "hf":
        raise ApplicationError(
            f"score_turns needs an hf:PATH[+lora:PATH] policy, not {run.policy!r}", field="policy"
        )
    return heartbeat.enqueue(run)
