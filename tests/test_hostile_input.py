"""Hostile input at the edges: deep JSON bodies, long values quoted in errors, big metadata."""

from __future__ import annotations

import json

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from rest_framework.test import APIClient

from config import bounded_json
from config.echo import MAX_ECHO_CHARS, clipped, shown
from evaluation.models import MetricRun
from games.actions import ActionError, parse_action
from games.jsonl_records import records_from_jsonl
from games.models import Game, Study
from games.records import MAX_METADATA_CHARS, RecordError
from tests.factories import make_user

DEEP = 10_000


@pytest.fixture
def runs_url(db):
    study = Study.objects.create(name="hostile")
    return reverse("evaluation:api-study-runs", kwargs={"pk": study.pk})


@pytest.fixture
def api(db):
    client = APIClient()
    client.force_authenticate(make_user("rita", role="researcher"))
    return client


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("[" * DEEP + "]" * DEEP, "JSON parse error - nested more than 64 levels deep"),
        ('{"a":' * DEEP + "1" + "}" * DEEP, "JSON parse error - nested more than 64 levels deep"),
        ('{"seed": ' + "9" * 5000 + "}", "JSON parse error - Exceeds the limit (4300 digits)"),
        ("{not json", "JSON parse error - Expecting property name enclosed in double quotes"),
    ],
)
def test_api_bodies_that_json_cannot_take_are_a_400(api, runs_url, body, detail):
    response = api.post(runs_url, body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail)
    assert len(response.json()["detail"]) <= len("JSON parse error - ") + MAX_ECHO_CHARS
    assert MetricRun.objects.count() == 0


def test_bounded_json_keeps_plain_json_and_counts_levels():
    assert bounded_json.loads('{"a": [1, {"b": null}]}') == {"a": [1, {"b": None}]}
    assert bounded_json.loads("[[[1]]]", max_depth=3) == [[[1]]]
    with pytest.raises(bounded_json.JSONLimitError, match="nested more than 2 levels deep"):
        bounded_json.loads("[[[1]]]", max_depth=2)
    with pytest.raises(bounded_json.JSONLimitError, match="more than 3 values"):
        bounded_json.loads("[1, 2, 3]", max_values=3)
    with pytest.raises(json.JSONDecodeError):
        bounded_json.loads("[1,")


def test_echoed_values_are_cut_to_the_echo_limit():
    assert shown("short") == "'short'"
    assert clipped("name") == "name"
    long_text = shown("x" * 100_000)
    assert len(long_text) <= MAX_ECHO_CHARS
    assert clipped("y" * 100_000) == "y" * (MAX_ECHO_CHARS - 30) + "... (100,000 characters)"
    assert len(shown([[["z" * 1000] * 1000] * 1000])) <= MAX_ECHO_CHARS


def test_a_bad_action_quotes_at_most_the_echo_limit():
    with pytest.raises(ActionError) as caught:
        parse_action("select " + "Q" * 100_000)
    assert len(str(caught.value)) < 3 * MAX_ECHO_CHARS  # the action and its bad word


def jsonl_game(**fields) -> str:
    game = {
        "game_id": "g1",
        "context": ["page1-0", "page1-1"],
        "listener_order": ["page1-1", "page1-0"],
        "targets": ["page1-0"],
        "outcome": "idle",
        "turns": [],
    }
    return json.dumps({**game, **fields}) + "\n"


def test_a_long_game_id_is_cut_in_the_error():
    with pytest.raises(RecordError) as caught:
        records_from_jsonl([jsonl_game(game_id="G" * 100_000)])
    assert str(caught.value) == (
        f"line 1: game {clipped('G' * 100_000)}: field 'game_id': longer than 64 characters"
    )


def test_a_long_value_is_cut_in_the_error():
    with pytest.raises(RecordError) as caught:
        records_from_jsonl([jsonl_game(outcome="O" * 100_000)])
    assert len(str(caught.value)) < 2 * MAX_ECHO_CHARS + 100
    assert str(caught.value).startswith("line 1: game g1: field 'outcome': 'OOOO")


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (
            {"comments": "c" * MAX_METADATA_CHARS},
            f"{MAX_METADATA_CHARS + 16:,} characters as JSON; at most {MAX_METADATA_CHARS:,}",
        ),
        ({"a": [[[[[[[[[[[1]]]]]]]]]]]}, "nested more than 10 levels deep"),
    ],
)
def test_metadata_over_the_limits_imports_nothing(db, tmp_path, metadata, message):
    path = tmp_path / "games.jsonl"
    path.write_text(jsonl_game(metadata=metadata))
    with pytest.raises(CommandError) as caught:
        call_command("import_games", str(path), "--study", "s", "--round", "0", "--system", "HH")
    assert str(caught.value) == f"nothing imported: line 1: game g1: field 'metadata': {message}"
    assert (Study.objects.count(), Game.objects.count()) == (0, 0)
