"""A researcher's preview of a crowd task as its workers see it: consent, guidelines, quiz, work.

The preview creates no crowd session, worker, consent, quiz attempt, assignment or answer: it
renders the worker's own templates from the task and the batch as they are, and its forms only
move to the next page. So nothing a researcher clicks here can reach a batch's progress, its
agreement data or anyone's pay. The survey shows the first game of the batch at its first
step; its buttons say that answers are not saved instead of sending them.
"""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from .models import Assignment, CrowdTask
from .selectors import SATISFACTION_OPTIONS, assignment_view, survey_turns
from .views import researcher_required

STEPS = ("consent", "guidelines", "quiz", "work")


def steps_of(task: CrowdTask) -> list[str]:
    """The pages a worker of the task goes through, in order (the quiz only if there is one)."""
    return [step for step in STEPS if step != "quiz" or task.quiz_id is not None]


def preview_state(task: CrowdTask) -> dict[str, object]:
    """The survey state of a worker's first game, built in memory (nothing is saved)."""
    state: dict[str, object] = {
        "games_done": 0,
        "games_per_session": task.games_per_session,
        "satisfaction_options": SATISFACTION_OPTIONS,
        "status": "no_work",
    }
    item = (
        task.batch.items.filter(is_gold=False)
        .select_related("game__config")
        .order_by("position")
        .first()
    )
    if item is not None:
        unsaved = Assignment(item=item, batch=task.batch)
        view = assignment_view(unsaved, turns=survey_turns(item.game), answers={})
        state.update(status="annotating", game=view)
    return state


@researcher_required
def preview(request: HttpRequest, pk: int, step: str) -> HttpResponse:
    task = get_object_or_404(CrowdTask.objects.select_related("quiz", "batch", "round"), pk=pk)
    steps = steps_of(task)
    if step not in steps:
        raise Http404("no such page in this task")
    position = steps.index(step)
    following = steps[position + 1] if position + 1 < len(steps) else None
    context = {
        "task": task,
        "preview": True,
        "preview_guidelines": reverse("annotation:preview", args=[task.pk, "guidelines"]),
        "preview_next": reverse("annotation:preview", args=[task.pk, following])
        if following
        else "",
        "quiz_status": "open" if following == "quiz" else "passed",
    }
    if step == "consent":
        return render(request, "annotation/consent.html", context)
    if step == "guidelines":
        return render(request, "annotation/guidelines.html", context)
    if step == "quiz":
        quiz = task.quiz
        context |= {"quiz": quiz, "questions": quiz.questions.all(), "status": "open"}
        return render(request, "annotation/quiz.html", context)
    if task.kind == CrowdTask.Kind.GAME:
        return render(request, "annotation/preview_lobby.html", context)
    context["state"] = preview_state(task)
    return render(request, "annotation/survey.html", context)
