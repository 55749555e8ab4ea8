"""Who of the crowd may wait in a round's lobby: the check this app registers with
``games.live.admission`` (in ``AnnotationConfig.ready``), so that ``games`` needs no import of
``annotation``.

A worker qualifies through a started crowd session of a crowd task of the round, with consent
given and the task's quiz (if any) passed.
"""

from __future__ import annotations

from django.urls import reverse

from games.live.admission import Admission, Refusal
from games.models import Round, Worker

from . import selectors
from .models import CrowdSession
from .tokens import session_token


def participant_refusal(round_: Round, worker: Worker) -> Admission | None:
    """None if one of the worker's crowd sessions of this round qualifies; else the refusal of
    their latest session (the one they are most likely working in)."""
    sessions = list(
        CrowdSession.objects.filter(
            worker=worker, task__round=round_, status=CrowdSession.Status.STARTED
        )
        .select_related("task__quiz")
        .order_by("-created_at", "-id")
    )
    if not sessions:
        return Admission(Refusal.NOT_PARTICIPANT)
    refusals = []
    for session in sessions:
        if not selectors.has_consented(session):
            refusal = Refusal.CONSENT
        else:
            status = selectors.quiz_status(session)
            if status == "passed":
                return None
            refusal = Refusal.QUIZ_FAILED if status == "failed" else Refusal.QUIZ_OPEN
        next_step = ""
        if refusal != Refusal.QUIZ_FAILED:
            next_step = reverse("annotation:entry", kwargs={"token": session_token(session)})
        refusals.append(Admission(refusal, next_step))
    return refusals[0]
