"""The round board's reads: each step's state and the reason a disabled button gives."""

from __future__ import annotations

import pytest

from evaluation.board.selectors import label_sets, round_board
from evaluation.board.steps import DONE, READY, RUNNING, WAITING
from evaluation.models import MetricRun
from evaluation.selectors import data_stamp
from games.models import Round
from models_svc.models import DecodeRun, ModelCheckpoint, TrainingRun
from models_svc.selectors import feedback_windows, label_coverage, study_turns
from models_svc.services import decode_study
from tests.factories import make_game, make_study, make_system, make_user

from .builders import PICKS, UTTERANCES, finish_run, letters_round

pytestmark = pytest.mark.django_db


def board_of(round_: Round):
    return round_board(Round.objects.select_related("study").get(pk=round_.pk), is_last=True)


def test_a_round_without_games_waits_for_them_at_every_step():
    round_ = make_system(make_study("empty"), 0, "B-FFT").round
    assert board_of(round_).collect.state == WAITING  # a new round's lobby is closed
    round_.lobby_open = True
    round_.save(update_fields=["lobby_open"])
    board = board_of(round_)
    assert [(key, state) for key, _, state in board.steps] == [
        ("collect", RUNNING),
        ("decode", WAITING),
        ("annotate", WAITING),
        ("metrics", WAITING),
        ("train", WAITING),
        ("next_round", WAITING),
    ]
    assert board.next_step == "Collect games"
    assert board.decode.blocked == "collect games first: the round has no games"
    assert board.annotate.targets[0].blocked == "no ended game of B-FFT to annotate yet"
    assert board.metrics.blocked == "collect games first: round 0 has no ended game"
    assert board.train.targets[0].blocked == "collect games first: nothing to learn from yet"
    assert board.train.blocked.startswith("needs a base checkpoint: register an hf:PATH policy")
    assert board.next_round.blocked == "train first: no finished run for B-FFT"


def test_decoding_counts_the_turns_it_labels_and_training_waits_for_all_of_them():
    round_ = letters_round("letters")
    board = board_of(round_)
    assert board.collect.state == DONE
    assert [
        (s.name, s.ended, s.playing, s.planned, s.decode_when_lobby_closes, s.kind)
        for s in board.collect.systems
    ] == [("B-FFT", 2, 0, 0, False, "binary"), ("CONTROL", 0, 0, 0, False, "")]
    coverage = board.decode.coverage
    assert [(c.decoder, c.kind, c.labelled, c.decodable) for c in coverage] == [
        ("lexicon", "binary", 0, 4)
    ]
    assert board.decode.state == READY and board.decode.blocked == ""
    assert board.next_step == "Decode feedback"
    assert board.train.targets[0].blocked == "decode first: 0 of 4 turns labelled (binary, lexicon)"
    assert board.metrics.warning.startswith("Feedback is not fully decoded yet")

    decode_study(round_.study, decoder_spec="lexicon", kind="binary")
    board = board_of(round_)
    assert board.decode.coverage[0].labelled == 4 and board.decode.state == DONE
    assert board.train.targets[0].blocked == ""
    assert board.metrics.warning == ""
    assert board.next_step == "Compute metrics"


def test_label_coverage_counts_the_turns_the_decoder_windows_cover():
    system = make_system(make_study("windows"), 0, "B-FFT")
    make_game(system, PICKS, ["pick A", "   ", "yes, then I"])
    make_game(system, PICKS, UTTERANCES)
    make_game(system, PICKS[:1], ["pick A"])
    windows = feedback_windows(study_turns(system.round.study_id, 0))
    coverage = label_coverage(system.round.study_id, 0, "lexicon", "binary")
    assert (coverage.labelled, coverage.decodable) == (0, len(windows)) == (0, 3)


def test_earlier_rounds_a_system_learns_from_must_be_decoded_too():
    study = make_study("lineage")
    control = make_system(study, 0, "CONTROL")
    make_system(study, 0, "HH")
    make_game(control, PICKS, UTTERANCES)
    later = make_system(study, 1, "B-FFT")
    make_system(study, 1, "T-RL")
    make_game(later, PICKS, UTTERANCES)
    round_zero, round_one = later.round.study.rounds.order_by("index")
    assert label_sets(round_zero) == [("lexicon", "binary"), ("lexicon", "ternary")]
    assert label_sets(round_one) == [("lexicon", "binary"), ("lexicon", "ternary")]
    decode_study(study, decoder_spec="lexicon", kind="binary", round_index=1)
    blocked = {t.system.name: t.blocked for t in board_of(round_one).train.targets}
    assert blocked == {
        "B-FFT": "decode round 0 first: 0 of 2 turns labelled (binary, lexicon)",
        "T-RL": "decode round 0 first: 0 of 2 turns labelled (ternary, lexicon)",
    }
    for kind in ("binary", "ternary"):
        decode_study(study, decoder_spec="lexicon", kind=kind, round_index=0)
    blocked = {t.system.name: t.blocked for t in board_of(round_one).train.targets}
    # T-RL played no game of its own in round 1: the round's B-FFT turns are not its to learn
    assert blocked == {"B-FFT": "", "T-RL": "collect games first: nothing to learn from yet"}


def test_runs_under_way_disable_their_buttons(tmp_path, django_capture_on_commit_callbacks):
    round_ = letters_round("busy")
    study = round_.study
    DecodeRun.objects.create(study=study, round_index=0, decoder="lexicon", kind="ternary")
    board = board_of(round_)
    assert board.decode.state == RUNNING and board.active
    decode_study(study, decoder_spec="lexicon", kind="binary")
    from models_svc.training.runs import launch_training_run

    with django_capture_on_commit_callbacks(execute=False):
        run = launch_training_run(
            study, 0, "B-FFT", base=f"hf:{tmp_path}", overrides={"rehearse_seed_set": False}
        )
    board = board_of(round_)
    assert board.train.state == RUNNING
    assert board.train.targets[0].blocked == f"run #{run.pk} is under way (epoch 0, step 0/0)"
    metric = MetricRun.objects.create(study=study, message="waiting for a worker")
    assert board_of(round_).metrics.blocked == (
        f"metric run {metric.pk} is under way (0%: waiting for a worker)"
    )


def test_metrics_are_done_until_the_data_changes():
    round_ = letters_round("metrics")
    study = round_.study
    MetricRun.objects.create(
        study=study, status=MetricRun.Status.DONE, results={}, data_stamp=data_stamp(study)
    )
    assert board_of(round_).metrics.state == DONE
    decode_study(study, decoder_spec="lexicon", kind="binary")
    metrics = board_of(round_).metrics
    assert metrics.stale and metrics.state == READY


def test_a_registered_base_checkpoint_unblocks_training_and_a_finished_run_the_next_round():
    round_ = letters_round("bases")
    decode_study(round_.study, decoder_spec="lexicon", kind="binary")
    ModelCheckpoint.objects.create(kind="policy", spec="hf:/m/base", status="ready")
    ModelCheckpoint.objects.create(kind="policy", spec="hf:/m/base+lora:/m/a", status="ready")
    ModelCheckpoint.objects.create(kind="policy", spec="hf:/m/gone", status="missing")
    board = board_of(round_)
    assert board.train.bases == ["hf:/m/base"]
    assert board.train.blocked == "" and board.train.state == READY
    finish_run(round_, "B-FFT")
    board = board_of(round_)
    assert board.train.state == DONE
    assert board.next_round.blocked == "" and board.next_round.state == READY
    assert board.next_step == "Compute metrics"


def test_the_page_shows_each_reason_under_its_disabled_button(client):
    client.force_login(make_user("rita", role="researcher"))
    round_ = make_system(make_study("page"), 0, "B-FFT").round
    page = client.get(f"/studies/{round_.study_id}/board/").content.decode()
    assert "Next step: <strong>Collect games</strong>" in page
    assert "Waiting: collect games first: the round has no games." in page
    assert "Waiting: train first: no finished run for B-FFT." in page
    assert '<button type="submit" class="next-round" disabled>Open round 1</button>' in page
    assert '<button type="submit" class="metrics" disabled>Compute metrics</button>' in page
    assert "data-board-refresh" not in page


def test_the_board_is_for_researchers_only(client):
    study = make_study("private")
    response = client.get(f"/studies/{study.pk}/board/")
    assert response.status_code == 302 and response.url.startswith("/accounts/login/")
    client.force_login(make_user("walter"))
    assert client.get(f"/studies/{study.pk}/board/").status_code == 403
    assert client.post(f"/studies/{study.pk}/board/lobby/", {"round_index": 0}).status_code == 403


def test_finished_runs_count_per_round():
    round_ = letters_round("per-round")
    decode_study(round_.study, decoder_spec="lexicon", kind="binary")
    other = Round.objects.create(study=round_.study, index=1)
    make_system(round_.study, 1, "B-FFT")
    finish_run(other, "B-FFT")
    train = board_of(round_).train
    assert train.targets[0].finished is None and train.state == WAITING  # no base checkpoint
    assert TrainingRun.objects.count() == 1


def test_the_annotate_step_counts_each_batch_s_complete_games():
    from annotation.creation import create_batch

    round_ = letters_round("batches")
    batch = create_batch(
        study=round_.study,
        round_index=0,
        system_name="B-FFT",
        name="first batch",
        games=1,
        redundancy_fraction=0.0,
        task_options={"prolific_completion_code": "C0DE42"},
    )
    rows = board_of(round_).annotate.batches
    assert [(row.batch.pk, row.complete, row.games) for row in rows] == [(batch.pk, 0, 1)]
