"""The two-phase survey through its API: order, reveal, resume, idempotency, refusals."""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from annotation.models import Assignment, TurnAnnotation
from annotation.work_queue import claim_next

from .conftest import arrive, make_batch, worker_client

pytestmark = pytest.mark.django_db
ANSWER = "/annotation/api/work/answer/"
SUBMIT = "/annotation/api/work/submit/"


@pytest.fixture
def started(system):
    batch = make_batch(
        system, 2, task_options={"prolific_completion_code": "C0DE42", "games_per_session": 2}
    )
    session = arrive(batch.task, "PID1")
    assignment = claim_next(session)
    return session, assignment, worker_client(session)


def answer(client, assignment, turn, phase, **value):
    body = {"assignment": assignment.pk, "turn": turn, "phase": phase, **value}
    return client.post(ANSWER, body, format="json")


def test_first_step_shows_images_selection_and_utterance_but_no_targets(started):
    session, assignment, client = started
    state = client.get("/annotation/api/work/").json()
    assert state["status"] == "annotating"
    game = state["game"]
    assert game["id"] == assignment.pk
    assert [i["letter"] for i in game["images"]] == list("ABCDEFGHIJ")
    assert game["images"][0]["url"] == "/tangrams/page9-9.png"
    assert game["step"] == {
        "turn": 0,
        "phase": 1,
        "utterance": "the bird",
        "selection": [],
        "last": False,
    }
    text = json.dumps(state)
    for secret in ("target", "outcome", "successful", "speaker_order", "external_id"):
        assert secret not in text


def test_phase_two_reveals_the_listeners_action_and_the_follow_up(started):
    _, assignment, client = started
    response = answer(client, assignment, 0, 1, action="select B")
    assert response.status_code == 200
    step = response.json()["game"]["step"]
    assert step == {
        "turn": 0,
        "phase": 2,
        "utterance": "the bird",
        "selection": [],
        "last": False,
        "your_action": "select B",
        "listener_action": "select A",
        "selection_after": ["A"],
        "follow_up": "now the boat",
    }


def test_next_turn_starts_from_the_listeners_selection_not_the_annotators(started):
    _, assignment, client = started
    answer(client, assignment, 0, 1, action="select B")
    step = answer(client, assignment, 0, 2, satisfaction="no").json()["game"]["step"]
    assert (step["turn"], step["phase"], step["selection"]) == (1, 1, ["A"])
    # "deselect B" would fit the annotator's own selection but not the listener's: refused.
    refused = answer(client, assignment, 1, 1, action="deselect B")
    assert refused.status_code == 400
    assert refused.json()["field"] == "action"
    assert "does not fit the selection of turn 1 (A selected)" in refused.json()["error"]


def test_last_turn_has_no_phase_two_and_leads_to_review(started):
    _, assignment, client = started
    answer(client, assignment, 0, 1, action="select A")
    answer(client, assignment, 0, 2, satisfaction="yes")
    answer(client, assignment, 1, 1, action="select B")
    answer(client, assignment, 1, 2, satisfaction="yes_wrong")
    refused = answer(client, assignment, 2, 2, satisfaction="yes")
    assert refused.status_code == 400 and refused.json()["field"] == "phase"
    state = answer(client, assignment, 2, 1, action="select C").json()
    assert state["status"] == "review"
    assert [
        (h["your_action"], h["listener_action"], h["satisfaction"])
        for h in state["game"]["history"]
    ] == [
        ("select A", "select A", "yes"),
        ("select B", "select B", "yes_wrong"),
        ("select C", "select C", ""),
    ]
    rows = TurnAnnotation.objects.filter(assignment=assignment).order_by("turn__index")
    assert [(r.annotated_action, r.satisfaction) for r in rows] == [
        ("select A", "yes"),
        ("select B", "yes_wrong"),
        ("select C", ""),
    ]
    assert all(r.phase1_seconds is not None and r.phase1_seconds >= 0 for r in rows)
    assert [r.phase2_seconds is not None for r in rows] == [True, True, False]


def test_a_double_submit_records_once_and_a_changed_answer_is_refused(started):
    _, assignment, client = started
    first = answer(client, assignment, 0, 1, action="select A")
    again = answer(client, assignment, 0, 1, action="select A")
    assert first.status_code == again.status_code == 200
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    changed = answer(client, assignment, 0, 1, action="select B")
    assert changed.status_code == 409
    assert "answers cannot be changed" in changed.json()["error"]
    assert list(TurnAnnotation.objects.values_list("annotated_action", flat=True)) == ["select A"]


def test_answers_for_turns_not_yet_reached_are_refused(started):
    _, assignment, client = started
    for turn, phase, value in [
        (1, 1, {"action": ""}),
        (0, 2, {"satisfaction": "yes"}),
        (7, 1, {"action": ""}),
    ]:
        response = answer(client, assignment, turn, phase, **value)
        assert response.status_code == 400, (turn, phase)
    assert not TurnAnnotation.objects.exists()


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ({"action": "select K"}, "action", "letter K is outside the context (A-J)"),
        ({"action": "deselect A"}, "action", "does not fit the selection"),
        ({"action": "select B A"}, "action", "must be sorted"),
        ({"action": 3}, "action", "must be an action string"),
        ({}, "action", "is missing"),
        ({"action": "", "extra": 1}, "extra", "is not a field of an answer"),
    ],
)
def test_bad_actions_are_refused_with_the_field_named(started, value, field, message):
    _, assignment, client = started
    response = answer(client, assignment, 0, 1, **value)
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert message in response.json()["error"]
    assert not TurnAnnotation.objects.exists()


def test_a_bad_satisfaction_is_refused(started):
    _, assignment, client = started
    answer(client, assignment, 0, 1, action="")
    response = answer(client, assignment, 0, 2, satisfaction="maybe")
    assert response.status_code == 400 and response.json()["field"] == "satisfaction"
    assert TurnAnnotation.objects.get().phase2_at is None


def test_the_empty_action_is_recorded_as_such(started):
    _, assignment, client = started
    assert answer(client, assignment, 0, 1, action="").status_code == 200
    assert TurnAnnotation.objects.get().annotated_action == ""


def finish(client, assignment):
    answer(client, assignment, 0, 1, action="select A")
    answer(client, assignment, 0, 2, satisfaction="yes")
    answer(client, assignment, 1, 1, action="select B")
    answer(client, assignment, 1, 2, satisfaction="yes")
    answer(client, assignment, 2, 1, action="select C")


def test_submitting_locks_answers_and_hands_out_the_next_game(started):
    session, assignment, client = started
    early = client.post(SUBMIT, {"assignment": assignment.pk}, format="json")
    assert early.status_code == 400 and "not finished" in early.json()["error"]
    finish(client, assignment)
    state = client.post(
        SUBMIT, {"assignment": assignment.pk, "comment": "clear"}, format="json"
    ).json()
    assignment.refresh_from_db()
    assert (assignment.status, assignment.comment) == ("submitted", "clear")
    assert state["status"] == "annotating" and state["game"]["id"] != assignment.pk
    assert state["games_done"] == 1
    again = client.post(SUBMIT, {"assignment": assignment.pk}, format="json")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    late = answer(client, assignment, 0, 1, action="select A")
    assert late.status_code == 409
    assert "already submitted" in late.json()["error"]


@pytest.mark.parametrize(
    ("comment", "message"),
    [
        ("x" * 1001, "at most 1000"),
        ("<script>alert(1)</script>", "HTML tags or script"),
        ('<img src=x onerror="alert(1)">', "HTML tags or script"),
    ],
)
def test_oversized_or_script_bearing_comments_are_refused(started, comment, message):
    _, assignment, client = started
    finish(client, assignment)
    response = client.post(SUBMIT, {"assignment": assignment.pk, "comment": comment}, format="json")
    assert response.status_code == 400 and message in response.json()["error"]
    assignment.refresh_from_db()
    assert assignment.status == "active" and assignment.comment == ""


def test_the_session_completes_with_the_prolific_code(started):
    session, assignment, client = started
    finish(client, assignment)
    second = client.post(SUBMIT, {"assignment": assignment.pk}, format="json").json()
    other = Assignment.objects.get(pk=second["game"]["id"])
    finish(client, other)
    state = client.post(SUBMIT, {"assignment": other.pk}, format="json").json()
    assert state["status"] == "complete"
    assert state["completion"] == {
        "kind": "redirect",
        "url": "https://app.prolific.com/submissions/complete?cc=C0DE42",
        "code": "C0DE42",
    }


def test_reload_and_second_device_resume_at_the_same_step(started, client):
    session, assignment, api = started
    answer(api, assignment, 0, 1, action="select A")
    # the same Prolific link opened on another device: same session, same step
    response = client.get(
        f"/annotation/prolific/{session.task.key}/",
        {"PROLIFIC_PID": "PID1", "STUDY_ID": "STUDY1", "SESSION_ID": "S-PID1"},
        follow=True,
    )
    state = response.context["state"]
    assert state["game"]["id"] == assignment.pk
    assert (state["game"]["step"]["turn"], state["game"]["step"]["phase"]) == (0, 2)


def test_another_workers_game_or_a_forged_token_is_refused(started, system):
    session, assignment, client = started
    intruder = arrive(session.task, "PID2")
    forged = answer(worker_client(intruder), assignment, 0, 1, action="select A")
    assert forged.status_code == 403
    bad = APIClient().get("/annotation/api/work/", HTTP_X_WORKER_TOKEN="1:forged")
    assert bad.status_code == 401
    assert bad.json() == {"detail": "The worker token is not valid."}
    assert not TurnAnnotation.objects.exists()


def test_a_stale_tab_cannot_answer_into_the_next_game(started):
    session, assignment, client = started
    finish(client, assignment)
    client.post(SUBMIT, {"assignment": assignment.pk}, format="json")
    stale = answer(client, assignment, 0, 1, action="select A")
    assert stale.status_code == 409
    assert TurnAnnotation.objects.filter(assignment__status="active").count() == 0
