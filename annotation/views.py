"""Pages: crowdworker arrival, consent, guidelines, quiz and survey; admin payments (the
researcher pages are in ``researcher_views``). Views stay thin: services write, selectors read."""

from __future__ import annotations

import logging
from functools import wraps
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.core import signing
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from config.errors import message_for
from games.models import Worker
from games.roles import is_admin, is_researcher
from games.workers import decrypt_platform_id, login_worker

from . import earnings, selectors, services
from .models import CrowdSession, CrowdTask
from .tokens import session_from_token, session_token
from .validation import InputError
from .work_queue import claim_next, work_left

log = logging.getLogger(__name__)
MTURK_PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
REFUSAL_SALT = "annotation.arrival-refusal"
REFUSAL_MAX_AGE = 3600


def crowd_page(view):
    """Worker pages: the session comes from the signed token.

    Their URL names are in ``CROWD_FRAMED_VIEWS``, so config.framing lets MTurk frame them.
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        token = kwargs.pop("token", None)
        if token is not None:
            session = session_from_token(token)
            if session is None:
                message = (
                    "This link is not valid or has expired. Open the task again from your "
                    "platform (Prolific or MTurk) to continue."
                )
                return refusal(request, message, status=403)
            kwargs["session"] = session
            kwargs["token"] = token
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "same-origin"
        response["Cache-Control"] = "no-store"
        return response

    return wrapper


def refusal(request: HttpRequest, message: str, *, status: int = 400) -> HttpResponse:
    return render(request, "annotation/message.html", {"message": message}, status=status)


def researcher_required(view):
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_researcher(request.user):
            raise PermissionDenied("Only researchers may see this page.")
        return view(request, *args, **kwargs)

    return wrapper


def admin_required(view):
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_admin(request.user):
            raise PermissionDenied("Only admins may see this page.")
        return view(request, *args, **kwargs)

    return wrapper


# --- arrival -------------------------------------------------------------------------------
# An arrival URL carries the worker's platform ids, which access logs, browser histories and
# Referer headers would keep: every arrival answers at once with a redirect to a URL without
# them (the worker's token pages, or a signed refusal).


def _refused(message: str, status: int) -> HttpResponse:
    signed = signing.dumps({"message": message, "status": status}, salt=REFUSAL_SALT)
    return redirect(f"{reverse('annotation:arrival-refused')}?{urlencode({'reason': signed})}")


def _arrive(request: HttpRequest, key: str, platform: str, **ids) -> HttpResponse:
    task = CrowdTask.objects.filter(key=key).first()
    if task is None:
        return _refused("This study link is not valid.", 404)
    try:
        session = services.arrive(task, platform=platform, **ids)
    except InputError as error:
        return _refused(f"We could not start: {error.field} {error.message}.", error.status)
    login_worker(request, session.worker)
    return redirect("annotation:entry", token=session_token(session))


@crowd_page
def arrival_refused(request: HttpRequest) -> HttpResponse:
    """Why an arrival was refused; the reason is signed, so no one else can word it."""
    try:
        reason = signing.loads(
            request.GET.get("reason", ""), salt=REFUSAL_SALT, max_age=REFUSAL_MAX_AGE
        )
    except signing.BadSignature:
        return refusal(request, "This study link is not valid.", status=400)
    return refusal(request, reason["message"], status=reason["status"])


@crowd_page
def prolific_arrival(request: HttpRequest, key: str) -> HttpResponse:
    """``?PROLIFIC_PID=…&STUDY_ID=…&SESSION_ID=…`` as Prolific appends them."""
    return _arrive(
        request,
        key,
        Worker.Platform.PROLIFIC,
        worker_id=request.GET.get("PROLIFIC_PID"),
        session_id=request.GET.get("SESSION_ID"),
        study_id=request.GET.get("STUDY_ID"),
    )


@crowd_page
def mturk_arrival(request: HttpRequest, key: str) -> HttpResponse:
    """The ExternalQuestion page: a preview until the worker accepts the HIT."""
    task = CrowdTask.objects.filter(key=key).first()
    if task is None:
        return _refused("This HIT link is not valid.", 404)
    assignment_id = request.GET.get("assignmentId", "")
    if not assignment_id or assignment_id == MTURK_PREVIEW:
        if "workerId" in request.GET:
            return redirect(request.path)
        return render(request, "annotation/mturk_preview.html", {"task": task})
    return _arrive(
        request,
        key,
        Worker.Platform.MTURK,
        worker_id=request.GET.get("workerId"),
        session_id=assignment_id,
        study_id=request.GET.get("hitId"),
        turk_submit_to=request.GET.get("turkSubmitTo"),
    )


# --- the worker's flow ---------------------------------------------------------------------


def _lobby_url(task: CrowdTask) -> str | None:
    try:
        return reverse("games:lobby", kwargs={"round_id": task.round_id})
    except NoReverseMatch:
        return None


@crowd_page
def entry(request: HttpRequest, session: CrowdSession, token: str) -> HttpResponse:
    """Sends the worker to the first step not yet done: consent, quiz, then the work. A worker
    who arrives when the batch has no game left for them hears so first, before any consent."""
    started = selectors.has_consented(session)
    if not started and session.status != CrowdSession.Status.COMPLETED and not work_left(session):
        return refusal(
            request,
            "There is no work left in this task for you: every game of its batch has all the "
            "annotators it needs. Please return the task on your platform. Thank you.",
            status=409,
        )
    if not started:
        return redirect("annotation:consent", token=token)
    status = selectors.quiz_status(session)
    if status == "open":
        return redirect("annotation:guidelines", token=token)
    if status == "failed":
        return refusal(
            request,
            "You did not pass the qualification quiz, so you cannot take part in this task. "
            "Please return it on your platform. Thank you for your time.",
            status=403,
        )
    if session.task.kind == CrowdTask.Kind.GAME:
        login_worker(request, session.worker)
        url = _lobby_url(session.task)
        if url is None:
            message = "The game lobby is not open yet. Please try again later."
            return refusal(request, message, status=503)
        return redirect(url)
    return redirect("annotation:survey", token=token)


@crowd_page
def consent(request: HttpRequest, session: CrowdSession, token: str) -> HttpResponse:
    if request.method == "POST":
        if request.POST.get("agree") != "yes":
            return render(
                request,
                "annotation/consent.html",
                {"task": session.task, "token": token, "error": "Please tick the box to agree."},
                status=400,
            )
        services.give_consent(session)
        return redirect("annotation:guidelines", token=token)
    return render(request, "annotation/consent.html", {"task": session.task, "token": token})


@crowd_page
def guidelines(request: HttpRequest, session: CrowdSession, token: str) -> HttpResponse:
    return render(
        request,
        "annotation/guidelines.html",
        {"task": session.task, "token": token, "quiz_status": selectors.quiz_status(session)},
    )


@crowd_page
def quiz(request: HttpRequest, session: CrowdSession, token: str) -> HttpResponse:
    quiz_ = session.task.quiz
    if quiz_ is None or not selectors.has_consented(session):
        return redirect("annotation:entry", token=token)
    context = {
        "task": session.task,
        "quiz": quiz_,
        "token": token,
        "questions": quiz_.questions.all(),
    }
    if request.method == "POST":
        answers = {
            name.removeprefix("q"): value
            for name, value in request.POST.items()
            if name.startswith("q") and name[1:].isdigit()
        }
        try:
            attempt = services.grade_quiz(session.worker, quiz_, answers)
        except InputError as error:
            context["error"] = f"{message_for(error)}."
            return render(request, "annotation/quiz.html", context, status=error.status)
        if attempt.passed:
            return redirect("annotation:entry", token=token)
        context["failed_score"] = attempt.score
        context["status"] = selectors.quiz_status(session)
        return render(request, "annotation/quiz.html", context)
    context["status"] = selectors.quiz_status(session)
    return render(request, "annotation/quiz.html", context)


@crowd_page
def survey(request: HttpRequest, session: CrowdSession, token: str) -> HttpResponse:
    if session.task.kind != CrowdTask.Kind.ANNOTATION:
        return redirect("annotation:entry", token=token)
    if not selectors.has_consented(session) or selectors.quiz_status(session) != "passed":
        return redirect("annotation:entry", token=token)
    assignment = None
    if session.status != CrowdSession.Status.COMPLETED:
        assignment = claim_next(session)
    state = selectors.worker_state(session, assignment)
    return render(
        request,
        "annotation/survey.html",
        {"task": session.task, "token": token, "state": state},
    )


# --- researchers and admins ----------------------------------------------------------------


@admin_required
def payments(request: HttpRequest) -> HttpResponse:
    return render(request, "annotation/payments.html", {"rows": earnings.payments_by_worker()})


@never_cache
@admin_required
def reveal_platform_id(request: HttpRequest, pk: int) -> HttpResponse:
    """The raw platform id of a worker, for paying outside the platform's API (admins only).

    Never cached: no browser or proxy cache may keep the raw id."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    worker = get_object_or_404(Worker, pk=pk)
    raw = decrypt_platform_id(worker)
    log.info("admin %s revealed the platform id of worker %s", request.user.pk, worker.pk)
    return render(request, "annotation/platform_id.html", {"worker": worker, "raw": raw})


@require_POST
@admin_required
def pay_session(request: HttpRequest, pk: int) -> HttpResponse:
    from django.contrib import messages

    from . import mturk

    session = get_object_or_404(CrowdSession, pk=pk)
    try:
        payouts = mturk.approve_and_pay(session)
    except InputError as error:
        messages.error(request, message_for(error))
    else:
        summary = ", ".join(f"{p.kind} {p.amount} {p.status}" for p in payouts) or "nothing owed"
        messages.success(request, f"Session {session.pk}: {summary}")
    return redirect("annotation:payments")
