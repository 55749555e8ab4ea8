"""The study's inputs as read from the database, and the metrics on a hand-checked study."""

from __future__ import annotations

import numpy as np
import pytest

from annotation.models import TurnAnnotation
from evaluation import selectors, services
from evaluation.stats.inputs import IDENTITY_SIMILARITY
from games.models import Game

from .builders import annotated_study, worker

pytestmark = pytest.mark.django_db


def test_inputs_of_the_annotated_study():
    built = annotated_study()
    inputs = selectors.study_input(built["study"])
    assert [(g.round_index, g.system, g.n_games) for g in inputs.groups] == [
        (0, "B-FFT", 2),
        (1, "B-FFT", 2),
        (1, "HH", 1),
    ]
    r1 = inputs.groups[1]
    assert r1.annotations is not None and len(r1.annotations.turn) == 7
    assert sorted(r1.labels) == ["binary", "ternary"]
    assert r1.labels["binary"].decoder == "lexicon"
    assert inputs.similarity is None and inputs.similarity_label == IDENTITY_SIMILARITY
    assert inputs.groups[0].annotations is None


def test_hand_checked_metrics_of_the_annotated_study():
    run = services.create_metric_run(annotated_study()["study"], resamples=200)
    results = services.execute_metric_run(run.pk).results
    r0, r1, hh = results["rows"]
    assert r0["success_rate"]["value"] == 0.5 and r0["turns_per_game"]["value"] == 2.5
    # r0: game a: +J ok, +E wrong, −E ok +I ok +H ok → 4/5; game b: +E, +D wrong → 0/2
    assert (r0["clicks"], r0["correct_clicks"]) == (7, 4)
    assert (r0["reset_phrases"], r0["try_again_phrases"]) == (1 + 1, 1)  # reset, all over
    assert hh["turns_per_game"]["value"] == 1.0 and hh["click_accuracy"]["value"] == 1.0
    # r1 annotations: turns c0, c1, c2 match (weight 1 each); d0 by three: model C vs H, H, C
    # → 1/3 match; d1 matches. Exact match = (3 + 1/3 + 1) / 5.
    assert r1["annotated_turns"] == 5 and r1["annotations"] == 7
    assert r1["exact_match"]["value"] == pytest.approx((3 + 1 / 3 + 1) / 5, abs=1e-15)
    # satisfaction answered on 4 turns (c2 is the last turn): c0 yes, c1 yes, d0 (no, no,
    # yes_wrong) → 1/3, d1 yes_incomplete → 1
    assert r1["positive_feedback"]["value"] == pytest.approx((1 + 1 + 1 / 3 + 1) / 4, abs=1e-15)
    # identity similarity: matches score 1, d0: C vs H → 0 for two annotators, 1 for carol
    assert r1["sim"]["value"] == pytest.approx((3 + 1 / 3 + 1) / 5, abs=1e-15)
    assert r1["sim_neg_fb"]["value"] == 0.0
    assert r1["negative_feedback_turns"] == pytest.approx(2 / 3, abs=1e-4)
    ternary = r1["decoder"]["ternary"]
    # items (weights): c0 pos/pos (1), c1 pos/neutral (1), d0 neg ×2 + neutral (yes_wrong) /
    # negative (1/3 each), d1 neutral (yes_incomplete) / positive (1)
    assert ternary["confusion"] == [
        [1, 1, 0, 0],
        [1, 0, pytest.approx(1 / 3, abs=1e-4), 0],
        [0, 0, pytest.approx(2 / 3, abs=1e-4), 0],
    ]
    assert ternary["accuracy"]["value"] == pytest.approx((1 + 2 / 3) / 4, abs=1e-12)
    binary = r1["decoder"]["binary"]  # neutral counts as positive; d1 is unparseable
    assert binary["confusion"][0] == [2, pytest.approx(1 / 3, abs=1e-4), 1]
    assert binary["confusion"][1] == [0, pytest.approx(2 / 3, abs=1e-4), 0]
    (agreement,) = results["agreement"]
    assert agreement["items"] == 1 and agreement["annotators"] == 3
    assert agreement["correctness"]["percent"]["value"] == 0.0
    assert agreement["satisfaction"]["percent"]["value"] == 0.0


def test_only_submitted_non_gold_annotations_count():
    from django.utils import timezone

    from annotation.models import AnnotationBatch, Assignment, BatchItem

    built = annotated_study("filtered")
    study, game = built["study"], built["games"][2]
    turn = game.turns.get(index=0)
    batch = AnnotationBatch.objects.create(
        name="b", study=study, round=game.round, system=game.system
    )
    now = timezone.now()
    for position, (gold, status) in enumerate(
        [(True, "submitted"), (False, "active"), (False, "submitted")]
    ):
        item = BatchItem.objects.create(
            batch=batch, game=built["games"][position], position=position, is_gold=gold
        )
        assignment = Assignment.objects.create(
            item=item,
            batch=batch,
            worker=worker(f"w{position}"),
            status=status,
            step_started_at=now,
            last_activity_at=now,
        )
        TurnAnnotation.objects.create(
            turn=turn,
            worker=assignment.worker,
            assignment=assignment,
            annotated_action="select A",
            satisfaction="no",
        )
    inputs = selectors.study_input(study)
    group = inputs.groups[1]
    raters = set(group.annotations.rater)
    assert worker("w2").id_hash in raters  # submitted, regular item
    assert worker("w0").id_hash not in raters  # gold item
    assert worker("w1").id_hash not in raters  # assignment still active


def test_games_that_did_not_end_are_left_out_and_bad_annotations_named():
    built = annotated_study("partial")
    Game.objects.filter(pk=built["games"][4].pk).update(status=Game.Status.PLAYING, outcome="")
    inputs = selectors.study_input(built["study"])
    assert [g.system for g in inputs.groups] == ["B-FFT", "B-FFT"]
    TurnAnnotation.objects.filter(pk=TurnAnnotation.objects.first().pk).update(
        annotated_action="select Z"
    )
    with pytest.raises(
        selectors.UnusableStudyData,
        match=r"annotation of game partial-c turn 0 by "
        r"worker [0-9a-f]{12}: annotated_action",
    ):
        selectors.study_input(built["study"])
    run = services.create_metric_run(built["study"], resamples=100)
    failed = services.execute_metric_run(run.pk)
    assert failed.status == "failed" and "annotated_action" in failed.error
    assert failed.results is None


def test_embedding_similarity_is_used_when_available(monkeypatch):
    built = annotated_study("embedded")
    import models_svc.selectors as model_selectors

    def fake(names):
        matrix = np.full((len(names), len(names)), 0.5)
        np.fill_diagonal(matrix, 1.0)
        return matrix

    monkeypatch.setattr(model_selectors, "similarity_matrix", fake)
    inputs = selectors.study_input(built["study"])
    assert inputs.similarity_label == "cosine similarity of image embeddings"
    run = services.create_metric_run(built["study"], resamples=100)
    r1 = services.execute_metric_run(run.pk).results["rows"][1]
    # d0 for alice and bob: C vs H → f = 0.5
    assert r1["sim"]["value"] == pytest.approx((3 + (0.5 + 0.5 + 1) / 3 + 1) / 5, abs=1e-15)
