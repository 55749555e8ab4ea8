"""Scripting a study through the REST API: from an imported study to a batch, and the schema."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from annotation.models import AnnotationBatch, Quiz
from games.models import Game, Study, Tangram
from tests.factories import make_user
from tests.sample_files import SAMPLE_JSON

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher():
    client = APIClient()
    client.force_login(make_user("res", role="researcher"))
    return client


def test_a_researcher_scripts_a_batch_from_an_imported_study(researcher):
    if not SAMPLE_JSON.exists():
        pytest.fail(f"the shared sample file is missing: {SAMPLE_JSON}")
    data = json.loads(SAMPLE_JSON.read_text())
    names = {image.rsplit(".", 1)[0] for game in data.values() for image in game["context"]}
    Tangram.objects.bulk_create([Tangram(name=name, split="train") for name in sorted(names)])
    call_command(
        "import_games", str(SAMPLE_JSON), study="imported", round=0, system="B-FFT", verbosity=0
    )
    study = Study.objects.get(name="imported")
    assert Game.objects.filter(study=study).count() == 24
    quiz = researcher.post(
        "/annotation/api/quizzes/",
        {
            "name": "survey quiz",
            "pass_mark": 50,
            "questions": [
                {
                    "text": "Who sees the targets?",
                    "choices": ["speaker", "listener"],
                    "correct_choice": 0,
                }
            ],
        },
        format="json",
    )
    assert quiz.status_code == 201
    response = researcher.post(
        "/annotation/api/batches/",
        {
            "name": "round 0 B-FFT",
            "study": study.pk,
            "round": 0,
            "system": "B-FFT",
            "games": 20,
            "seed": 3,
            "task": {"quiz": quiz.json()["id"], "prolific_completion_code": "ABC123"},
        },
        format="json",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["progress"]["games"] == 20
    assert body["progress"]["redundant_games"] == 1  # 5% of 20
    assert body["progress"]["annotations_wanted"] == 22  # 19 x 1 + 1 x 3
    assert body["task"]["prolific_url"].endswith(f"/annotation/prolific/{body['task']['key']}/")
    batch = AnnotationBatch.objects.get()
    assert batch.task.quiz == Quiz.objects.get() and batch.created_by.username == "res"
    detail = researcher.get(f"/annotation/api/batches/{batch.pk}/").json()
    assert detail["progress"] == body["progress"] and detail["gold_accuracy"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"games": 0}, "games"),
        ({"system": "T-RL"}, "system"),
        ({"games": 99}, "games"),
        ({"name": "<script>x</script>"}, "name"),
    ],
)
def test_bad_batch_requests_name_the_field(researcher, system, change, field):
    from .conftest import add_games

    add_games(system, 3)
    body = {
        "name": "b",
        "study": system.round.study.pk,
        "round": 0,
        "system": "B-FFT",
        "games": 2,
    } | change
    response = researcher.post("/annotation/api/batches/", body, format="json")
    assert response.status_code == 400
    assert field in response.json() or response.json().get("field") == field
    assert not AnnotationBatch.objects.exists()


def test_quiz_questions_are_validated(researcher):
    response = researcher.post(
        "/annotation/api/quizzes/",
        {
            "name": "q",
            "pass_mark": 50,
            "questions": [{"text": "x", "choices": ["a", "b"], "correct_choice": 2}],
        },
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "is not one of the choices",
        "field": "questions[0].correct_choice",
    }
    assert not Quiz.objects.exists()


def test_the_openapi_schema_describes_the_annotation_api(researcher):
    schema = researcher.get("/api/schema/", {"format": "json"}).json()
    for path in (
        "/annotation/api/work/answer/",
        "/annotation/api/batches/",
        "/annotation/api/batches/{id}/agreement/",
        "/annotation/api/payments/",
    ):
        assert path in schema["paths"], path
    assert schema["components"]["securitySchemes"]["workerToken"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-Worker-Token",
    }
    answer = schema["paths"]["/annotation/api/work/answer/"]["post"]
    assert answer["security"] == [{"workerToken": []}]


def test_the_batch_page_creates_a_batch_and_shows_progress_and_links(client, system):
    from .conftest import add_games

    add_games(system, 4)
    client.force_login(make_user("res", role="researcher"))
    form = {
        "name": "page batch",
        "study": system.round.study.pk,
        "round": 0,
        "system": "B-FFT",
        "games": 3,
        "redundancy_fraction": "0.34",
        "redundancy_count": 3,
        "gold_interval": 0,
        "task.games_per_session": 2,
        "task.prolific_completion_code": "PAGE1",
        "seed": 1,
    }
    response = client.post("/annotation/", form)
    batch = AnnotationBatch.objects.get()
    assert response["Location"] == f"/annotation/batches/{batch.pk}/"
    assert batch.task.prolific_completion_code == "PAGE1" and batch.task.games_per_session == 2
    assert sorted(batch.items.values_list("required_annotations", flat=True)) == [1, 1, 3]
    page = client.get(response["Location"]).content.decode()
    assert f"/annotation/prolific/{batch.task.key}/?PROLIFIC_PID={{{{%PROLIFIC_PID%}}}}" in page
    assert "Agreement (admins)" not in page  # researchers do not get the export links
    bad = client.post("/annotation/", form | {"games": 9, "name": "again"})
    assert bad.status_code == 400 and "only 4 games are eligible" in bad.content.decode()
    assert AnnotationBatch.objects.count() == 1


def at_most(limit: int) -> list[str]:
    return [f"Ensure this value is less than or equal to {limit}."]


@pytest.mark.parametrize(
    ("change", "errors"),
    [
        ({"seed": 10**300}, {"seed": at_most(2**63 - 1)}),
        (
            {"task": {"mturk_max_assignments": 10**18}},
            {"task": {"mturk_max_assignments": at_most(2**31 - 1)}},
        ),
        ({"round": 10**18}, {"round": at_most(2**15 - 1)}),
        ({"games": 10**18}, {"games": at_most(2**31 - 1)}),
    ],
)
def test_integers_beyond_their_columns_are_refused_naming_the_field(
    researcher, system, change, errors
):
    """Not a 500 "integer out of range" from the database: a 400 naming the field."""
    from .conftest import add_games

    add_games(system, 3)
    body = {"name": "b", "study": system.round.study.pk, "round": 0, "system": "B-FFT"}
    response = researcher.post("/annotation/api/batches/", body | change, format="json")
    assert (response.status_code, response.json()) == (400, errors)
    assert not AnnotationBatch.objects.exists()
