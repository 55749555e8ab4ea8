"""Utility pages, dashboards and exports as a researcher reads them (test client, PostgreSQL)."""

from __future__ import annotations

import json
import logging

import pytest
from django.urls import reverse
from django.utils.html import escape

from evaluation import csv_exports, figures, services, tables
from games.listeners import RANDOM_POLICY, listener_label
from games.models import Game, System
from tests.evaluation.builders import annotated_study
from tests.factories import make_game, make_study, make_system, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher_client(client):
    client.force_login(make_user("rita", role="researcher"))
    return client


@pytest.fixture
def done_run():
    study = annotated_study("pages")["study"]
    return services.execute_metric_run(services.create_metric_run(study, resamples=200).pk)


# 403 and 404 ---------------------------------------------------------------------------------


def test_refused_page_shows_the_views_message_a_way_back_and_logs_one_line(client, caplog):
    study = make_study("closed")
    client.force_login(make_user("pat"))
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get(reverse("evaluation:study", kwargs={"pk": study.pk}))
    html = response.content.decode()
    assert response.status_code == 403
    assert '<p id="refusal-message">Only researchers may see this page.</p>' in html
    assert '<a href="/" id="back-home">Back to the studies</a>' in html
    assert 'class="site-header"' in html  # extends base.html
    records = [r for r in caplog.records if r.name == "django.request"]
    assert [r.getMessage() for r in records] == [
        f"Forbidden (Permission denied): {response.request['PATH_INFO']}"
    ]
    formatted = logging.getLogger("django.request").handlers or logging.getLogger().handlers
    assert formatted, "the console handler is configured"
    assert "\n" not in formatted[0].format(records[0])  # one line, no traceback


def test_missing_page_shows_the_views_message_and_a_way_back(researcher_client):
    response = researcher_client.get(reverse("games:game", kwargs={"pk": 999_999}))
    html = response.content.decode()
    assert response.status_code == 404
    assert '<p id="refusal-message">No such game.</p>' in html
    assert '<a href="/" id="back-home">Back to the studies</a>' in html
    unknown = researcher_client.get("/no/such/page/")
    assert unknown.status_code == 404
    assert (
        '<p id="refusal-message">There is nothing at /no/such/page/.</p>'
        in unknown.content.decode()
    )


# Evaluation figures and tables ---------------------------------------------------------------


def test_a_line_never_joins_a_system_across_a_round_it_missed():
    assert figures.deployed_runs([0, 2], [0, 1, 2]) == [[0], [1]]
    assert figures.deployed_runs([0, 1, 2], [0, 1, 2]) == [[0, 1, 2]]
    assert figures.deployed_runs([0, 2], [0, 2]) == [[0, 1]]
    rows = [
        {"round": 0, "system": "CONTROL", "games": 3, "success_rate": {"value": 0.2, "ci": [0, 1]}},
        {"round": 1, "system": "B-FFT", "games": 3, "success_rate": {"value": 0.5, "ci": [0, 1]}},
        {"round": 2, "system": "B-FFT", "games": 3, "success_rate": {"value": 0.6, "ci": [0, 1]}},
        {"round": 2, "system": "CONTROL", "games": 3, "success_rate": {"value": 0.3, "ci": [0, 1]}},
    ]
    axes = figures.by_round_figure({"rows": rows}, "success_rate").axes[0]
    drawn = sorted(list(map(float, line.get_xdata())) for line in axes.get_lines())
    assert [0.0, 2.0] not in drawn
    assert [1.0, 2.0] in drawn  # B-FFT, deployed in rounds 1 and 2
    assert axes.get_legend_handles_labels()[1] == ["B-FFT", "CONTROL"]


def test_language_figure_plots_the_per_100_rates_the_tables_show(done_run):
    results = done_run.results
    grid = figures.language_figure(results).axes
    assert [a.get_ylabel() for a in grid] == [
        "Vocabulary size",
        "Utterance length\n(words)",
        "Reset phrases\nper 100 utterances",
        "Try-again phrases\nper 100 utterances",
    ]
    b_fft = {r["round"]: r for r in results["rows"] if r["system"] == "B-FFT"}
    line = next(x for x in grid[2].get_lines() if list(x.get_xdata()) == [0, 1])
    assert list(line.get_ydata()) == [
        b_fft[0]["reset_per_100"]["value"],
        b_fft[1]["reset_per_100"]["value"],
    ]


def test_decoder_figure_is_sized_to_its_heatmaps(done_run):
    figure = figures.decoder_figure(done_run.results)
    # one round × system, binary (2 classes) above ternary (3), at most 4 decoder columns
    assert tuple(figure.get_size_inches()) == (3.78, 5.75)


def test_dashboard_confusion_header_accuracy_row_and_sim_range(researcher_client, done_run):
    html = researcher_client.get(
        reverse("evaluation:study", kwargs={"pk": done_run.study.pk})
    ).content.decode()
    assert "＼" not in html
    assert "<th>annotated \\ decoder</th>" in html
    panel = html.split('data-kind="binary">', 1)[1].split("</div>", 1)[0]
    accuracy = done_run.results["rows"][1]["decoder"]["binary"]["accuracy"]
    assert (
        '<table class="small decoder-accuracy"><tbody><tr><th>Accuracy</th><td class="num">'
        f"{tables.fmt(accuracy['value'], percent=True)}"
    ) in panel
    assert (
        '<table class="small decoder-classes"><thead><tr><th></th><th class="num">positive</th>'
        in panel
    )
    assert f'<span id="sim-range">{escape(tables.SIM_RANGE)}</span>' in html
    assert "It runs from −100% to 100%" in tables.SIM_RANGE
    assert 'class="figure natural" data-section="language"' in html
    assert 'class="figure natural" data-section="decoder"' in html


def test_agreement_json_downloads_as_a_file(client, done_run):
    client.force_login(make_user("ada", role="admin"))
    url = reverse("evaluation:export", kwargs={"run_id": done_run.pk, "name": "agreement.json"})
    response = client.get(url)
    assert response["Content-Disposition"] == (
        f'attachment; filename="pages-run{done_run.pk}-agreement.json"'
    )
    assert json.loads(response.content)["run"] == done_run.pk


def test_empty_exports_say_why(client, researcher_client):
    study = make_study("bare")
    make_game(make_system(study), [["page9-0"]], ["the one"])
    run = services.execute_metric_run(services.create_metric_run(study, resamples=200).pk)
    turn_level = researcher_client.get(
        reverse("evaluation:section_csv", kwargs={"run_id": run.pk, "section": "turn_level"})
    ).content.decode()
    assert turn_level.splitlines() == [
        "round,system,games,metric,value,ci_low,ci_high",
        f"# {csv_exports.EMPTY_REASONS['turn_level']}",
    ]
    client.force_login(make_user("ada", role="admin"))
    agreement = client.get(
        reverse("evaluation:export", kwargs={"run_id": run.pk, "name": "agreement.csv"})
    ).content.decode()
    assert agreement.splitlines()[1] == f"# {csv_exports.EMPTY_REASONS['agreement']}"
    body = json.loads(
        client.get(
            reverse("evaluation:export", kwargs={"run_id": run.pk, "name": "agreement.json"})
        ).content
    )
    assert (
        body["agreement"] == [] and body["empty_reason"] == csv_exports.EMPTY_REASONS["agreement"]
    )


def test_batch_agreement_json_is_an_attachment_and_empty_csv_says_why(client):
    from annotation.api.admins import NO_AGREEMENT_ITEMS
    from tests.annotation.conftest import make_batch

    study = make_study("batch")
    system = make_system(study, 1, "B-FFT")
    make_game(system, [["page9-0"]], ["the one"])
    batch = make_batch(system, 1)
    client.force_login(make_user("ada", role="admin"))
    url = f"/annotation/api/batches/{batch.pk}/agreement/"
    response = client.get(url, {"as": "json"}, HTTP_ACCEPT="text/html")
    assert response["Content-Type"] == "application/json"
    assert (
        response["Content-Disposition"] == f'attachment; filename="agreement-batch-{batch.pk}.json"'
    )
    assert json.loads(response.content)["empty_reason"] == NO_AGREEMENT_ITEMS
    answers = client.get(url, {"as": "csv"}).content.decode().splitlines()
    assert answers[-1] == f"# {NO_AGREEMENT_ITEMS}" and len(answers) == 2


# Live play -----------------------------------------------------------------------------------


def test_live_dashboard_counts_the_turns_of_imported_games_and_links_replays(researcher_client):
    study = make_study("live")
    game = make_game(make_system(study), [["page9-0"], ["page9-1"], [], ["page9-2"]])
    assert game.turn_index == 0 and game.status == Game.Status.ENDED
    data = researcher_client.get(reverse("games:play_live_data", args=[study.pk])).json()
    assert [(g["id"], g["turns"], g["replay"]) for g in data["ended"]] == [
        (game.pk, 4, f"/games/{game.pk}/")
    ]
    assert data["ended"][0]["listener"] == RANDOM_POLICY


def test_live_page_tables_say_when_they_are_empty(researcher_client):
    study = make_study("quiet")
    html = researcher_client.get(reverse("games:play_live", args=[study.pk])).content.decode()
    assert '<td colspan="4">No one is waiting in the lobby.</td>' in html
    assert '<td colspan="6">No game is being played.</td>' in html
    assert '<td colspan="6">No game has ended yet.</td>' in html


def test_model_listeners_say_what_they_are(researcher_client, settings):
    study = make_study("labels")
    model = make_system(study, 0, "B-FFT")
    human = make_system(study, 0, System.HUMAN)
    assert listener_label(human) == "human listeners"
    model.policy_checkpoint = "random"
    assert listener_label(model) == "random policy: clicks at random, not a trained model"
    model.policy_checkpoint = "hf:/models/base+lora:/runs/7/adapter"
    assert listener_label(model) == "hf checkpoint base with LoRA adapter 7/adapter"
    model.policy_checkpoint = ""
    model.save()
    settings.MODELS_SVC = {**settings.MODELS_SVC, "POLICY": "random"}
    game = make_game(model, [["page9-0"]])
    page = researcher_client.get(reverse("games:game", kwargs={"pk": game.pk})).content.decode()
    assert f'<span class="muted" id="listener-label">({RANDOM_POLICY})</span>' in page
    study_page = researcher_client.get(reverse("games:study", kwargs={"pk": study.pk}))
    assert f'B-FFT <span class="muted">({RANDOM_POLICY})</span>' in study_page.content.decode()


def test_demo_systems_describe_their_random_listeners():
    from games.demo import DEMO_SYSTEMS, demo_description

    control = next(s for s in DEMO_SYSTEMS if s.name == "CONTROL")
    assert demo_description(control) == (
        "The initial policy π_θ0. Demo listener: a random policy, not a trained model."
    )
    human = next(s for s in DEMO_SYSTEMS if s.name == System.HUMAN)
    assert demo_description(human) == "Human listeners (reference)."
