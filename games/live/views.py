"""Pages of live play: lobby, game, end screen with exit survey, dev entry, live dashboard.

Crowdworkers arrive through the annotation app's Prolific/MTurk arrival (consent, quiz), which
logs them in with ``games.workers.login_worker`` and redirects to ``games:lobby``; the lobby
admits them only as ``games.live.admission`` says. The local entry logs in a made-up worker
directly and names the system to play; it exists only with ``PLAY_LOCAL_ENTRY`` (the demo).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from django import forms
from django.conf import settings
from django.contrib import messages
from django.db import IntegrityError, transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_POST

from games.listeners import is_stand_in, listener_label
from games.live import admission, clock, engine, lobby
from games.live.selectors import game_earnings, live_overview, worker_game_earnings
from games.models import ExitSurvey, Game, LobbyEntry, Round, Study, System, Worker
from games.roles import is_researcher
from games.workers import current_worker, get_or_create_worker, login_worker

if TYPE_CHECKING:
    from games.live.selectors import LiveGame


def _no_worker(request: HttpRequest) -> HttpResponse:
    return render(request, "play/no_worker.html", status=403)


def _refused(request: HttpRequest, round_: Round, answer: admission.Admission) -> HttpResponse:
    template = (
        "play/lobby_closed.html"
        if answer.refusal == admission.Refusal.CLOSED
        else "play/lobby_refused.html"
    )
    return render(
        request,
        template,
        {"round": round_, "admission": answer, "reason": answer.refusal},
        status=answer.http_status,
    )


def _asked_system(request: HttpRequest, round_: Round, worker: Worker) -> System | None:
    """The system a local worker asked for (``?system=NAME``); crowdworkers never choose."""
    name = request.GET.get("system", "")
    if not name or worker.platform != Worker.Platform.LOCAL or not admission.local_play_enabled():
        return None
    return round_.systems.filter(name=name).first()


def lobby_view(request: HttpRequest, round_id: int) -> HttpResponse:
    round_ = get_object_or_404(Round.objects.select_related("study"), pk=round_id)
    worker = current_worker(request)
    if worker is None:
        return _no_worker(request)
    game = lobby.active_game(worker)
    if game is not None:
        return redirect("games:play_game", game.pk)
    answer = admission.admit(round_, worker)
    if not answer.admitted:
        return _refused(request, round_, answer)
    # Present (pairable) once the page's socket listens: the socket may be told to come back.
    entry = lobby.arrive(round_, worker, _asked_system(request, round_, worker), present=False)
    return render(
        request,
        "play/lobby.html",
        {
            "round": round_,
            "study": round_.study,
            "entry": entry,
            "with_model": entry.system is not None and not entry.system.is_human,
            "may_leave_at_ms": int(lobby.may_leave_at(entry).timestamp() * 1000),
            "arrived_ms": int(entry.arrived_at.timestamp() * 1000),
            "server_ms": int(clock.now().timestamp() * 1000),
            "ws_path": f"/ws/play/lobby/{round_.pk}/",
        },
    )


@require_POST
def lobby_leave(request: HttpRequest, round_id: int) -> HttpResponse:
    worker = current_worker(request)
    if worker is None:
        return _no_worker(request)
    try:
        entry = lobby.leave(round_id, worker.pk)
    except lobby.LobbyError as error:
        messages.error(request, str(error))
        return redirect("games:lobby", round_id=round_id)
    earned = entry.earnings.first()
    return render(
        request,
        "play/left.html",
        {
            "entry": entry,
            "earned": earned.amount if earned else None,
            "total": worker_game_earnings(worker),
        },
    )


def _player_game(request: HttpRequest, game_id: int) -> tuple[Worker | None, Game, str]:
    worker = current_worker(request)
    game = get_object_or_404(Game.objects.select_related("study", "round", "system"), pk=game_id)
    role = engine.role_of(game, worker.pk if worker else None)
    return worker, game, role or ""


def play_game(request: HttpRequest, game_id: int) -> HttpResponse:
    worker, game, role = _player_game(request, game_id)
    if worker is None or not role:
        return _no_worker(request)
    return render(
        request,
        "play/game.html",
        {
            "game": game,
            "role": role,
            "study": game.study,
            "ws_path": f"/ws/play/game/{game.pk}/",
            "survey_url": reverse("games:play_survey", args=[game.pk]),
            "lobby_url": reverse("games:lobby", kwargs={"round_id": game.round_id}),
            # A stand-in listener says so; a real study's listeners are not named to players.
            "stand_in": listener_label(game.system) if is_stand_in(game.system) else "",
        },
    )


class ExitSurveyForm(forms.Form):
    SCALE = [(i, str(i)) for i in range(1, 6)]
    satisfaction = forms.TypedChoiceField(
        choices=SCALE, coerce=int, label="How satisfied are you with this game?"
    )
    comprehension = forms.TypedChoiceField(
        choices=SCALE, coerce=int, label="How well did you and your partner understand each other?"
    )
    comments = forms.CharField(required=False, max_length=2000, widget=forms.Textarea)


def play_survey(request: HttpRequest, game_id: int) -> HttpResponse:
    """The end screen's exit survey (POST stores it once; GET shows the end screen)."""
    worker, game, role = _player_game(request, game_id)
    if worker is None or not role:
        return _no_worker(request)
    done = ExitSurvey.objects.filter(game=game, worker=worker).exists()
    form = ExitSurveyForm(request.POST or None)
    posted = request.method == "POST" and game.status == Game.Status.ENDED and not done
    if posted and form.is_valid():
        try:
            with transaction.atomic():
                ExitSurvey.objects.create(game=game, worker=worker, role=role, **form.cleaned_data)
        except IntegrityError:
            pass  # a double submit: the first one is kept
        return redirect("games:play_done", game.pk)
    if done:
        return redirect("games:play_done", game.pk)
    return render(
        request,
        "play/survey.html",
        {"game": game, "form": form, "role": role},
        status=400 if request.method == "POST" else 200,
    )


def play_done(request: HttpRequest, game_id: int) -> HttpResponse:
    worker, game, role = _player_game(request, game_id)
    if worker is None or not role:
        return _no_worker(request)
    return render(
        request,
        "play/done.html",
        {
            "game": game,
            "role": role,
            "earnings": game_earnings(game, worker.pk),
            "game_total": sum(e.amount for e in game_earnings(game, worker.pk)),
            "total": worker_game_earnings(worker),
            "lobby_url": reverse("games:lobby", kwargs={"round_id": game.round_id}),
        },
    )


class LocalEntryForm(forms.Form):
    name = forms.SlugField(max_length=40, label="Worker name (any)")
    system = forms.ChoiceField(label="Play with")

    def __init__(self, *args, round_: Round, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        systems = sorted(round_.systems.all(), key=lambda s: (not s.is_human, s.name))
        # declared above as a ChoiceField
        cast(forms.ChoiceField, self.fields["system"]).choices = [
            (
                s.name,
                "another person (open this page in a second browser)"
                if s.is_human
                else f"the model {s.name}",
            )
            for s in systems
        ]


def local_entry(request: HttpRequest, round_id: int) -> HttpResponse:
    """Demo only (``PLAY_LOCAL_ENTRY``): log in a local worker and go to the lobby to play the
    chosen system: HH pairs two people who chose it, a model system starts at once."""
    if not admission.local_play_enabled():
        raise Http404("Local play is available in the demo only.")
    round_ = get_object_or_404(Round.objects.select_related("study"), pk=round_id)
    form = LocalEntryForm(request.POST or None, round_=round_)
    if request.method == "POST" and form.is_valid():
        worker = get_or_create_worker(Worker.Platform.LOCAL, form.cleaned_data["name"])
        login_worker(request, worker)
        url = reverse("games:lobby", kwargs={"round_id": round_.pk})
        return redirect(f"{url}?{urlencode({'system': form.cleaned_data['system']})}")
    has_human = round_.systems.filter(name=System.HUMAN).exists()
    return render(
        request,
        "play/local_entry.html",
        {"round": round_, "form": form, "has_human_system": has_human},
    )


def _require_researcher(request: HttpRequest) -> HttpResponse | None:
    if not is_researcher(request.user):
        return redirect(f"{settings.LOGIN_URL}?next={request.path}")
    return None


def live_page(request: HttpRequest, study_id: int) -> HttpResponse:
    denied = _require_researcher(request)
    if denied:
        return denied
    study = get_object_or_404(Study, pk=study_id)
    rounds = list(study.rounds.all())
    return render(
        request,
        "play/live.html",
        {
            "study": study,
            "rounds": rounds,
            "data_url": reverse("games:play_live_data", args=[study.pk]),
        },
    )


def live_data(request: HttpRequest, study_id: int) -> HttpResponse:
    if not is_researcher(request.user):
        return JsonResponse({"error": "researchers only"}, status=403)
    study = get_object_or_404(Study, pk=study_id)
    overview = live_overview(study)
    now = clock.now()

    def game_row(game: LiveGame) -> dict:
        return {
            "id": game.pk,
            "external_id": game.external_id,
            "round": game.round.index,
            "system": game.system.name,
            "listener": listener_label(game.system),
            "status": game.status,
            "phase": game.phase,
            "turn": game.turn_index,
            "turns": game.turns_played,
            "replay": reverse("games:game", args=[game.pk]),
            "outcome": game.outcome,
            "end_reason": game.end_reason,
            "seconds_left": (
                max(0, round((game.deadline - now).total_seconds())) if game.deadline else None
            ),
        }

    return JsonResponse(
        {
            "waiting": [
                {
                    "round": entry.round.index,
                    "worker": entry.worker.id_hash[:10],
                    "seconds": round((now - entry.arrived_at).total_seconds()),
                    "present": lobby.is_present(entry, now),
                }
                for entry in overview.waiting
            ],
            "playing": [game_row(g) for g in overview.playing],
            "ended": [game_row(g) for g in overview.ended],
            "counts": {
                "waiting": len(overview.waiting),
                "playing": len(overview.playing),
                "left_lobby": LobbyEntry.objects.filter(
                    round__study=study, status=LobbyEntry.Status.LEFT
                ).count(),
            },
        }
    )
