"""The round board's states say what happened: a new round without games waits for its metrics,
annotation is done when the games are annotated, and opening the next round closes the lobbies
of the rounds before it."""

from __future__ import annotations

import pytest

from evaluation.board.selectors import round_board
from evaluation.board.steps import DONE, RUNNING, WAITING, AnnotateStep, BatchRow
from evaluation.models import MetricRun
from evaluation.selectors import data_stamp
from games.models import Round
from models_svc.training.runs import open_next_round
from tests.factories import make_system, make_user

from .builders import finish_run, letters_round

pytestmark = pytest.mark.django_db


def board_of(round_: Round):
    return round_board(Round.objects.select_related("study").get(pk=round_.pk), is_last=True)


def test_a_new_round_without_games_does_not_say_its_metrics_are_done():
    round_ = letters_round("metrics-new-round")
    study = round_.study
    MetricRun.objects.create(
        study=study, status=MetricRun.Status.DONE, results={}, data_stamp=data_stamp(study)
    )
    assert board_of(round_).metrics.state == DONE
    empty = make_system(study, 1, "B-FFT").round
    board = board_of(empty)
    assert board.metrics.state == WAITING
    assert board.metrics.blocked == "collect games first: round 1 has no ended game"


def test_annotation_is_done_only_when_every_batch_is_fully_annotated():
    step = AnnotateStep(batches=[BatchRow(None, complete=0, games=3)], targets=[])
    assert step.state == RUNNING
    assert AnnotateStep([BatchRow(None, complete=2, games=3)], []).state == RUNNING
    assert AnnotateStep([BatchRow(None, complete=3, games=3)], []).state == DONE
    assert AnnotateStep([BatchRow(None, complete=0, games=0)], []).state == RUNNING


def test_opening_the_next_round_closes_the_lobbies_of_the_rounds_before_it():
    round_ = letters_round("lobbies")
    study = round_.study
    Round.objects.filter(pk=round_.pk).update(lobby_open=True)
    finish_run(round_, "B-FFT")
    open_next_round(study, 0)
    states = dict(Round.objects.filter(study=study).values_list("index", "lobby_open"))
    assert states == {0: False, 1: False}


def test_the_payments_page_is_in_the_admins_menu_only(client):
    from tests.factories import make_user

    client.force_login(make_user("ada", role="admin"))
    assert '<a href="/annotation/payments/">Payments</a>' in client.get("/").content.decode()
    client.force_login(make_user("rita", role="researcher"))
    assert "/annotation/payments/" not in client.get("/").content.decode()


def test_the_api_description_names_what_the_api_has(client):
    client.force_login(make_user("researcher", role="researcher"))
    schema = client.get("/api/schema/", {"format": "json"}).json()
    description = schema["info"]["description"]
    assert "model jobs" not in description
    assert description.startswith("Metric runs of a study; annotation batches")
    paths = set(schema["paths"])
    assert "/evaluation/api/runs/{run_id}/" in paths and "/annotation/api/payments/" in paths
