"""Who the lobby admits (page and socket alike): participants of the round's crowd task who
consented and passed its quiz, in an open lobby; local workers in the demo only."""

from __future__ import annotations

import io

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.urls import reverse

from annotation import creation, services
from annotation.models import AnnotationBatch, Quiz, QuizQuestion
from annotation.tokens import session_from_token
from config.asgi import application
from games.demo import DEMO_STUDY
from games.live import lobby
from games.models import LobbyEntry, Round
from games.workers import SESSION_KEY

from . import helpers


def make_quiz() -> Quiz:
    quiz = Quiz.objects.create(name="play quiz", pass_mark=100, max_attempts=2)
    QuizQuestion.objects.create(
        quiz=quiz, text="Who sees the targets?", choices=["speaker", "listener"], correct_choice=0
    )
    return quiz


def answer_quiz(session, quiz: Quiz, *, right: bool) -> None:
    question = quiz.questions.get()
    services.grade_quiz(session.worker, quiz, {str(question.pk): 0 if right else 1})


def log_in(client, worker) -> None:
    session = client.session
    session[SESSION_KEY] = worker.pk
    session.save()


def play_round(**fields) -> Round:
    helpers.tangrams()
    return helpers.round_with(helpers.study(), "HH", **fields)


def refusal_reason(response) -> str:
    text = response.content.decode()
    return text.split('data-reason="', 1)[1].split('"', 1)[0]


def next_step_session(response):
    """The crowd session whose next step (consent, quiz) the refusal page links to, if any."""
    text = response.content.decode()
    if 'id="next-step"' not in text:
        return None
    href = text.split('" id="next-step"', 1)[0].rsplit('href="', 1)[1]
    prefix = reverse("annotation:entry", kwargs={"token": "T"}).removesuffix("T/")
    return session_from_token(href.removeprefix(prefix).rstrip("/"))


def test_new_rounds_have_a_closed_lobby(db):
    study = helpers.study()
    assert Round.objects.create(study=study, index=0).lobby_open is False


@pytest.mark.django_db
def test_the_page_refuses_everybody_but_qualified_participants_and_says_why(client):
    round_ = play_round()
    quiz = make_quiz()
    task = helpers.crowd_task(round_, quiz=quiz)
    other_round = helpers.round_with(helpers.study("other study"), "HH")
    batch = AnnotationBatch.objects.create(
        name="batch", study=round_.study, round=round_, system=round_.systems.get()
    )
    cases = {}
    # A worker who arrived for an annotation batch of this very round, or for another study.
    for name, other_task in (
        (
            "annotator",
            creation.create_task(name="annotate", batch=batch, prolific_completion_code="ANNCODE"),
        ),
        ("elsewhere", helpers.crowd_task(other_round)),
    ):
        arrived = helpers.arrival(other_task, name)
        cases[name] = (arrived.worker, 403, "not_participant", None)
    no_consent = helpers.arrival(task, "no-consent", consent=False)
    cases["no-consent"] = (no_consent.worker, 403, "consent_missing", no_consent)
    quiz_open = helpers.arrival(task, "quiz-open")
    answer_quiz(quiz_open, quiz, right=False)
    cases["quiz-open"] = (quiz_open.worker, 403, "quiz_not_passed", quiz_open)
    failed = helpers.arrival(task, "failed")
    answer_quiz(failed, quiz, right=False)
    answer_quiz(failed, quiz, right=False)
    cases["failed"] = (failed.worker, 403, "quiz_failed", None)
    cases["local"] = (helpers.worker("local"), 403, "not_participant", None)

    url = reverse("games:lobby", kwargs={"round_id": round_.pk})
    for name, (worker, status, reason, session) in cases.items():
        log_in(client, worker)
        response = client.get(url)
        assert (name, response.status_code, refusal_reason(response)) == (name, status, reason)
        assert (name, next_step_session(response)) == (name, session)
    assert LobbyEntry.objects.count() == 0

    passed = helpers.arrival(task, "passed")
    answer_quiz(passed, quiz, right=True)
    log_in(client, passed.worker)
    assert client.get(url).status_code == 200
    assert list(LobbyEntry.objects.values_list("worker", "status")) == [
        (passed.worker.pk, "waiting")
    ]


@pytest.mark.django_db
def test_a_closed_lobby_admits_nobody_until_a_researcher_opens_it(client, clock):
    round_ = play_round(lobby_open=False)
    worker = helpers.participant(round_, "early")
    log_in(client, worker)
    url = reverse("games:lobby", kwargs={"round_id": round_.pk})
    response = client.get(url)
    assert (response.status_code, refusal_reason(response)) == (409, "lobby_closed")
    assert "is closed at the moment" in response.content.decode()
    assert lobby.set_lobby_open(round_, True) == []
    assert client.get(url).status_code == 200
    clock.advance(60)
    (ended,) = lobby.set_lobby_open(round_, False)
    ended.refresh_from_db()
    # Closing ends the waits, paid: 60 s at 0.20 a minute.
    assert (ended.worker, ended.status, ended.waited_seconds) == (worker, "left", 60.0)
    assert str(ended.earnings.get().amount) == "0.20"
    assert Round.objects.get(pk=round_.pk).lobby_open is False
    assert client.get(url).status_code == 409


@pytest.mark.django_db
def test_the_local_entry_exists_in_the_demo_only(client, settings, admin_user):
    round_ = play_round()
    url = reverse("games:play_local_entry", kwargs={"round_id": round_.pk})
    settings.PLAY_LOCAL_ENTRY = False
    client.force_login(admin_user)  # not even for researchers and admins
    assert client.get(url).status_code == 404
    assert client.post(url, {"name": "dev", "system": "HH"}).status_code == 404
    settings.PLAY_LOCAL_ENTRY = True
    response = client.post(url, {"name": "dev", "system": "HH"})
    lobby_url = reverse("games:lobby", kwargs={"round_id": round_.pk})
    assert (response.status_code, response["Location"]) == (302, f"{lobby_url}?system=HH")
    assert client.get(response["Location"]).status_code == 200
    entry = LobbyEntry.objects.get()
    assert (entry.worker.platform, entry.system.name) == ("local", "HH")
    settings.PLAY_LOCAL_ENTRY = False  # a local worker left over from the demo is refused
    response = client.get(lobby_url)
    assert (response.status_code, refusal_reason(response)) == (403, "not_participant")


@pytest.mark.django_db
def test_a_crowdworker_cannot_choose_the_system(client, settings):
    settings.PLAY_LOCAL_ENTRY = True
    helpers.tangrams()
    round_ = helpers.round_with(helpers.study(), "HH", "CONTROL")
    log_in(client, helpers.participant(round_, "crowd"))
    lobby_url = reverse("games:lobby", kwargs={"round_id": round_.pk})
    assert client.get(f"{lobby_url}?system=CONTROL").status_code == 200
    assert LobbyEntry.objects.get().system is None


@pytest.mark.django_db
def test_the_demo_opens_its_rounds_and_keeps_a_lobby_closed_by_a_researcher(settings, tmp_path):
    settings.MEDIA_ROOT, settings.TANGRAM_DIR = str(tmp_path), ""
    call_command("load_demo", stdout=io.StringIO())
    rounds = Round.objects.filter(study__name=DEMO_STUDY).order_by("index")
    assert [r.lobby_open for r in rounds] == [True, True, True]
    lobby.set_lobby_open(rounds[0], False)
    call_command("load_demo", stdout=io.StringIO())
    assert [r.lobby_open for r in rounds.all()] == [False, True, True]


# ----------------------------------------------------------------------------- the socket


async def lobby_socket(round_id: int, worker) -> WebsocketCommunicator:
    cookie = await sync_to_async(helpers.session_cookie)(worker)
    return WebsocketCommunicator(
        application,
        f"/ws/play/lobby/{round_id}/",
        headers=[(b"origin", b"http://localhost"), (b"cookie", f"sessionid={cookie}".encode())],
    )


async def refused(round_id: int, worker) -> tuple[str, str, int]:
    socket = await lobby_socket(round_id, worker)
    assert await socket.connect(timeout=5) == (True, None)
    message = await socket.receive_json_from(timeout=5)
    closed = await socket.receive_output(timeout=5)
    assert (message["type"], closed["type"]) == ("refused", "websocket.close")
    return message["reason"], message["message"], closed["code"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_socket_refuses_whom_the_page_refuses_with_a_reason_and_a_close_code():
    @sync_to_async
    def setup():
        round_ = play_round()
        task = helpers.crowd_task(round_)
        other = helpers.round_with(helpers.study("other study"), "HH")
        return (
            round_,
            helpers.arrival(helpers.crowd_task(other), "elsewhere").worker,
            helpers.arrival(task, "no-consent", consent=False).worker,
            helpers.participant(round_, "fine"),
        )

    round_, elsewhere, no_consent, fine = await setup()
    assert await refused(round_.pk, elsewhere) == (
        "not_participant",
        "You did not arrive for this game round. Please open the study through the link your "
        "crowdsourcing platform gave you for it.",
        4403,
    )
    reason, message, code = await refused(round_.pk, no_consent)
    assert (reason, message, code) == (
        "consent_missing",
        "You have not given your consent to this study yet.",
        4403,
    )
    await sync_to_async(lobby.arrive)(round_, fine)
    await sync_to_async(lobby.set_lobby_open)(round_, False)
    reason, _, code = await refused(round_.pk, fine)
    assert (reason, code) == ("lobby_closed", 4409)
    waiting = await sync_to_async(LobbyEntry.objects.filter(status="waiting").count)()
    assert waiting == 0


@pytest.mark.django_db
def test_the_local_entry_offers_another_person_only_in_rounds_with_human_pairs(client, settings):
    from tests.factories import make_study, make_system

    settings.PLAY_LOCAL_ENTRY = True
    study = make_study("entry-words")
    models_only = make_system(study, 0, "B-FFT").round
    page = client.get(reverse("games:play_local_entry", args=[models_only.pk])).content.decode()
    assert "another person" not in page
    assert "This round has no human–human system (HH), so every game here is with a model." in page
    with_people = make_system(study, 1, "HH").round
    page = client.get(reverse("games:play_local_entry", args=[with_people.pk])).content.decode()
    assert 'choose "another\n  person" in both' in page
    assert "another person (open this page in a second browser)" in page
