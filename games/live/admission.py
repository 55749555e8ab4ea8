"""Who may wait in a round's lobby (the lobby page and its socket ask the same question).

A crowdworker is logged into the browser on arrival, before consent and quiz, and the same
browser may hold a worker who arrived for an annotation batch or another study. So being logged
in admits nobody. A worker is admitted to the lobby of round R when

- they hold a started crowd session of a crowd task of R (the ``annotation`` app answers this
  through the check it registers: ``register_participant_check``),
- they consented to that task, and passed its quiz if it has one, and
- R's lobby is open (``Round.lobby_open``: closed until a researcher opens it).

Local workers (made by the demo's local entry, ``Worker.Platform.LOCAL``) need no crowd session,
only ``settings.PLAY_LOCAL_ENTRY`` (on with DEBUG: the demo) and an open lobby.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from django.conf import settings

from games.models import Round, Worker


class Refusal(StrEnum):
    NOT_PARTICIPANT = "not_participant"
    CONSENT = "consent_missing"
    QUIZ_OPEN = "quiz_not_passed"
    QUIZ_FAILED = "quiz_failed"
    CLOSED = "lobby_closed"


MESSAGES = {
    Refusal.NOT_PARTICIPANT: "You did not arrive for this game round. Please open the study "
    "through the link your crowdsourcing platform gave you for it.",
    Refusal.CONSENT: "You have not given your consent to this study yet.",
    Refusal.QUIZ_OPEN: "You have not passed the qualification quiz of this study yet.",
    Refusal.QUIZ_FAILED: "You did not pass the qualification quiz, so you cannot play in this "
    "study. Please return it on your platform. Thank you for your time.",
    Refusal.CLOSED: "The lobby of this round is closed at the moment. Please try again later.",
}

# Page status and socket close code of each refusal.
HTTP_STATUS = {Refusal.CLOSED: 409}
CLOSE_CODE = {Refusal.CLOSED: 4409}


@dataclass(frozen=True)
class Admission:
    """The answer for one worker and round: ``refusal`` is None when they are admitted."""

    refusal: Refusal | None
    next_step_url: str = ""

    @property
    def admitted(self) -> bool:
        return self.refusal is None

    @property
    def message(self) -> str:
        return "" if self.refusal is None else MESSAGES[self.refusal]

    @property
    def http_status(self) -> int:
        return 403 if self.refusal is None else HTTP_STATUS.get(self.refusal, 403)

    @property
    def close_code(self) -> int:
        return 4403 if self.refusal is None else CLOSE_CODE.get(self.refusal, 4403)


def local_play_enabled() -> bool:
    return bool(getattr(settings, "PLAY_LOCAL_ENTRY", False))


ParticipantCheck = Callable[[Round, Worker], "Admission | None"]
_participant_checks: list[ParticipantCheck] = []


def register_participant_check(check: ParticipantCheck) -> None:
    """Install the answer to "is this worker a participant of this round?".

    ``games`` knows nothing of crowd sessions; the app that owns them (``annotation``) registers
    its check when it is ready (``AnnotationConfig.ready``). The check returns None when the
    worker qualifies, or the refusal of their most relevant session. Registering the same check
    again changes nothing.
    """
    if check not in _participant_checks:
        _participant_checks.append(check)


def _participant_refusal(round_: Round, worker: Worker) -> Admission | None:
    """None if a registered check admits the worker; without any check, nobody is a
    participant (only local workers of the demo are admitted)."""
    if not _participant_checks:
        return Admission(Refusal.NOT_PARTICIPANT)
    refusals = [check(round_, worker) for check in _participant_checks]
    if any(refusal is None for refusal in refusals):
        return None
    return refusals[0]


def admit(round_: Round, worker: Worker) -> Admission:
    """May ``worker`` wait in ``round_``'s lobby now? (reads only)."""
    if not (worker.platform == Worker.Platform.LOCAL and local_play_enabled()):
        refusal = _participant_refusal(round_, worker)
        if refusal is not None:
            return refusal
    if not round_.lobby_open:
        return Admission(Refusal.CLOSED)
    return Admission(None)


def admit_ids(round_id: int, worker_id: int) -> Admission | None:
    """``admit`` by ids (the socket's view); None when the round or the worker does not exist."""
    round_ = Round.objects.filter(pk=round_id).first()
    worker = Worker.objects.filter(pk=worker_id).first()
    if round_ is None or worker is None:
        return None
    return admit(round_, worker)
