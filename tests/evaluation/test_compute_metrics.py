"""``compute_metrics`` end to end: import → metric run → JSON/table, against the sample figures
and an independent computation on export files in the original layout."""

from __future__ import annotations

import copy
import json
import random
import re

import pytest
from django.core.management.base import CommandError

from evaluation.models import MetricRun
from evaluation.stats import language
from tests.factories import make_game, make_study, make_system

from .builders import T, annotate_turns
from .conftest import metrics_json, run_command
from .samples import README_CONVENTION_FIGURES, README_FIGURES, SAMPLE_PKL, image, load_json

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["json", "pickle"])
def test_sample_figures_from_import_to_json(import_sample, path):
    import_sample(path=SAMPLE_PKL) if path == "pickle" else import_sample()
    result = metrics_json("sample", resamples=2000, seed=3)
    assert result["study"] == "sample"
    (row,) = result["rows"]
    assert (row["round"], row["system"]) == (0, "B-FFT")
    assert row["games"] == README_FIGURES["games"]
    assert row["successful_games"] == README_FIGURES["successful"]
    assert row["success_rate"]["value"] == README_FIGURES["success_rate"]
    assert row["turns"] == README_FIGURES["turns"]
    assert row["turns_per_game"]["value"] == README_FIGURES["turns_per_game"]
    assert row["clicks"] == README_FIGURES["clicks"]
    assert row["correct_clicks"] == README_FIGURES["correct_clicks"]
    assert row["click_accuracy"]["value"] == README_FIGURES["click_accuracy"]
    assert round(row["utterance_length"]["value"], 3) == README_FIGURES["utterance_length"]
    assert row["reset_phrases"] == README_FIGURES["reset_phrases"]
    assert row["try_again_phrases"] == README_FIGURES["try_again_phrases"]
    low, high = row["success_rate"]["ci"]
    assert 0 <= low < 17 / 24 < high <= 1
    assert result["parameters"]["resamples"] == 2000 and result["parameters"]["seed"] == 3
    assert result["code_version"].startswith("stats ")
    assert "exact_match" not in row  # no annotations yet
    run = MetricRun.objects.get(pk=result["run"])
    assert run.status == MetricRun.Status.DONE and run.results == result


def test_same_seed_same_numbers_and_table(import_sample):
    import_sample()
    first = metrics_json("sample", resamples=500, seed=9)
    second = metrics_json("sample", resamples=500, seed=9)
    other = metrics_json("sample", resamples=500, seed=10)
    assert first["rows"] == second["rows"]
    assert first["rows"][0]["success_rate"]["ci"] != other["rows"][0]["success_rate"]["ci"]
    table = run_command("compute_metrics", study="sample", resamples=500, seed=9)
    row = first["rows"][0]
    low, high = row["success_rate"]["ci"]
    assert f"70.8 [{100 * low:.1f}, {100 * high:.1f}]" in table
    assert "500 resamples, seed 9, 95% bca intervals" in table
    assert "Platform conventions: the platform's definitions, 95% BCa intervals." in table


def test_errors_are_clear(db):
    with pytest.raises(CommandError, match="no study named 'nope'"):
        run_command("compute_metrics", study="nope")
    from games.models import Study

    Study.objects.create(name="empty")
    assert "no ended games yet" in run_command("compute_metrics", study="empty")
    with pytest.raises(CommandError, match="resamples must be between"):
        run_command("compute_metrics", study="empty", resamples=0)


def random_export(seed: int, games: int = 12) -> dict:
    """Export records in the original layout: the sample's contexts, random plays."""
    rng = random.Random(seed)
    base = load_json()
    out = {}
    phrases = ["try again", "reset", "deselect all", "the other one", "ok", "no", "left"]
    for n, record in enumerate(list(base.values())[:games]):
        record = copy.deepcopy(record)
        game_id = f"rand{seed}-{n}"
        record["_id"] = game_id
        state: list[str] = []
        clicks, chat = [], []
        for _ in range(rng.randint(1, 9)):
            changed = rng.sample(record["context"], rng.randint(0, 2))
            state = sorted(set(state) ^ set(changed))
            clicks.append(list(state))
            chat.append(" ".join(rng.choice(phrases) for _ in range(rng.randint(1, 5))))
        targets = set(record["targets"])
        record["clicks"], record["chat"] = clicks, chat
        record["turnList"] = record["turnList"][:1] * len(clicks)
        record["turn"] = len(clicks)
        record["end"] = "successful" if set(state) == targets else "unsuccessful"
        out[game_id] = record
    return out


def independent_figures(records: dict) -> dict:
    """Plain-Python figures of one group of export records (docs/metrics.md definitions)."""
    games = len(records)
    successful = sum(r["end"] == "successful" for r in records.values())
    turns = sum(len(r["chat"]) for r in records.values())
    clicks = correct = 0
    for r in records.values():
        targets = {image(t) for t in r["targets"]}
        before: set[str] = set()
        for selection in r["clicks"]:
            after = {image(x) for x in selection}
            clicks += len(after ^ before)
            correct += len((after - before) & targets) + len((before - after) - targets)
            before = after
    utterances = [u for r in records.values() for u in r["chat"]]
    words = sum(len(u.split()) for u in utterances)
    vocabulary = {w.strip(".,!?;:'\"") for u in utterances for w in u.lower().split()} - {""}
    reset = sum(u.lower().count(p) for u in utterances for p in language.RESET_PHRASES)
    again = sum(u.lower().count(p) for u in utterances for p in language.TRY_AGAIN_PHRASES)
    return {
        "games": games,
        "success_rate": successful / games,
        "turns_per_game": turns / games,
        "click_accuracy": correct / clicks,
        "utterance_length": words / len(utterances),
        "vocabulary_size": len(vocabulary),
        "reset_phrases": reset,
        "try_again_phrases": again,
    }


def test_exports_in_the_original_layout_agree_with_an_independent_computation(
    sample_tangrams, tmp_path
):
    exports = {
        (0, "B-FFT"): random_export(1),
        (1, "B-FFT"): random_export(2),
        (1, "HH"): random_export(3, games=5),
    }
    for (round_index, system), records in exports.items():
        path = tmp_path / f"{round_index}-{system}.json"
        path.write_text(json.dumps(records))
        run_command("import_games", str(path), study="real", round=round_index, system=system)
    result = metrics_json("real", resamples=300)
    assert [(r["round"], r["system"]) for r in result["rows"]] == list(exports)
    for row, records in zip(result["rows"], exports.values(), strict=True):
        expected = independent_figures(records)
        for key, value in expected.items():
            got = row[key]["value"] if isinstance(row[key], dict) else row[key]
            assert got == pytest.approx(value, abs=1e-12), key


def alphanumeric(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def paper_language(records: dict) -> dict:
    """The paper's language figures of export records: alphanumeric tokens, per turn."""
    turns = [u for r in records.values() for u in r["chat"]]
    return {
        "utterance_length": sum(len(alphanumeric(u)) for u in turns) / len(turns),
        "vocabulary_size": len({t for u in turns for t in alphanumeric(u)}),
    }


def test_exports_under_the_paper_conventions_agree_with_an_independent_computation(
    sample_tangrams, tmp_path
):
    records = random_export(4)
    path = tmp_path / "export.json"
    path.write_text(json.dumps(records))
    run_command("import_games", str(path), study="real", round=0, system="B-FFT")
    (row,) = metrics_json("real", resamples=300, conventions="paper")["rows"]
    for key, value in paper_language(records).items():
        got = row[key]["value"] if isinstance(row[key], dict) else row[key]
        assert got == pytest.approx(value, abs=1e-12), key
    (platform,) = metrics_json("real", resamples=300)["rows"]
    assert platform["utterance_length"]["value"] == pytest.approx(
        independent_figures(records)["utterance_length"], abs=1e-12
    )


def rounded(value: float, digits: int, percent: bool) -> float:
    return round(100 * value if percent else value, digits)


def test_paper_conventions_json_on_the_sample(import_sample):
    """``--conventions paper --json`` with the defaults: the samples README's figures."""
    import_sample()
    result = json.loads(
        run_command("compute_metrics", study="sample", conventions="paper", json=True)
    )
    platform = metrics_json("sample")
    assert result["parameters"]["conventions"] == "paper"
    assert result["parameters"]["method"] == "percentile"
    assert platform["parameters"]["conventions"] == "platform"
    assert platform["parameters"]["method"] == "bca"
    assert MetricRun.objects.get(pk=result["run"]).conventions == "paper"
    # the paper's language figures, computed here from the file: 904 tokens over 168 turns
    paper = paper_language(load_json())
    (row,) = result["rows"]
    assert row["utterance_length"]["value"] == pytest.approx(paper["utterance_length"], abs=1e-12)
    assert row["utterance_length"]["value"] == pytest.approx(904 / 168, abs=1e-12)
    assert row["vocabulary_size"] == paper["vocabulary_size"] == 56
    # what the conventions do not change
    (base,) = platform["rows"]
    for key in ("games", "turns", "clicks", "correct_clicks", "try_again_phrases"):
        assert row[key] == base[key], key
    for key in ("success_rate", "turns_per_game", "click_accuracy", "try_again_per_100"):
        assert row[key]["value"] == base[key]["value"], key
    for name, got in (("paper", row), ("platform", base)):
        for key, expected in README_CONVENTION_FIGURES[name].items():
            if key == "vocabulary_size":
                assert got[key] == expected
                continue
            value, (low, high), digits = expected
            percent = key == "click_accuracy"
            assert rounded(got[key]["value"], digits, percent) == value, (name, key)
            assert [rounded(x, digits, percent) for x in got[key]["ci"]] == [low, high], (name, key)
    table = run_command("compute_metrics", study="sample", conventions="paper", resamples=200)
    assert "200 resamples, seed 0, 95% percentile intervals" in table
    assert "Paper conventions (ReSpect study); differs from the platform's definitions:" in table
    assert "percentile bootstrap intervals (platform: BCa)" in table
    with pytest.raises(CommandError, match="invalid choice"):
        run_command("compute_metrics", "--conventions", "mine", study="sample")
    mixed = metrics_json("sample", resamples=200, conventions="paper", method="bca")
    assert (mixed["parameters"]["method"], mixed["parameters"]["conventions"]) == ("bca", "paper")


def hand_study() -> None:
    """Two games, five annotated turns; every difference of the conventions shows.

    Letters: the listener order is reversed, so page9-0 = J, page9-1 = I, page9-2 = H,
    page9-7 = C. Game g1 selects J, then I; game g2 selects C, deselects it (a turn without
    text), then selects H.
    """
    system = make_system(make_study("hand"), 1, "B-FFT")
    g1 = make_game(
        system,
        [[T[0]], [T[0], T[1]]],
        ["Pick the bird's wing!", "ok...ok"],
        outcome="successful",
        external_id="g1",
    )
    g2 = make_game(
        system, [[T[7]], [], [T[2]]], ["2nd-left one", "", "no, the DOG"], external_id="g2"
    )
    t1, t2 = list(g1.turns.order_by("index")), list(g2.turns.order_by("index"))
    annotate_turns(
        [
            (t1[0], "alice", "select J", "yes"),  # = model: Sim 1
            (t1[1], "alice", "select I", ""),  # = model: Sim 1; last turn, no answer
            (t2[0], "alice", "select H", "no"),  # model selected C: Sim 0 (weight ½)
            (t2[0], "bob", "select C", "yes_wrong"),  # = model: Sim 1 (weight ½)
            (t2[1], "bob", "deselect C", "yes_incomplete"),  # = model: Sim 1
            (t2[2], "alice", "select J", ""),  # model selected H: Sim 0; last turn
        ]
    )


def test_both_conventions_on_a_study_built_by_hand(db):
    hand_study()
    (platform,) = metrics_json("hand", resamples=400, seed=2)["rows"]
    paper_result = metrics_json("hand", resamples=400, seed=2, conventions="paper")
    (paper,) = paper_result["rows"]
    # Answered: g1 t0 yes (weight 1), g2 t0 no and yes_wrong (½ each), g2 t1 yes_incomplete (1):
    # 3 in all. Positive feedback, platform (any yes): (1 + ½ + 1) / 3 = 5/6;
    # paper (a plain yes): 1 / 3.
    assert platform["positive_feedback"]["value"] == pytest.approx(5 / 6, abs=1e-12)
    assert paper["positive_feedback"]["value"] == pytest.approx(1 / 3, abs=1e-12)
    # Sim −FB, platform (negative feedback: the "no", Sim 0): 0;
    # paper (answered, not a plain yes): (½·0 + ½·1 + 1·1) / (½ + ½ + 1) = 0.75.
    assert platform["sim_neg_fb"]["value"] == 0.0
    assert paper["sim_neg_fb"]["value"] == pytest.approx(0.75, abs=1e-12)
    assert (platform["negative_feedback_turns"], paper["negative_feedback_turns"]) == (0.5, 2)
    # Utterance length, platform: words 4 + 1 + 2 + 3 = 10 over 4 non-empty utterances = 2.5;
    # paper: tokens pick the bird s wing · ok ok · 2nd left one · — · no the dog
    # = 5 + 2 + 3 + 0 + 3 = 13 over 5 turns = 2.6.
    assert platform["utterance_length"]["value"] == 2.5
    assert paper["utterance_length"]["value"] == pytest.approx(2.6, abs=1e-12)
    # Vocabulary, platform: pick the bird's wing ok...ok 2nd-left one no dog = 9;
    # paper: pick the bird s wing ok 2nd left one no dog = 11.
    assert (platform["vocabulary_size"], paper["vocabulary_size"]) == (9, 11)
    # The same under both: Sim (1 + 1 + (0 + 1)/2 + 1 + 0) / 5 = 0.7, exact match likewise.
    for key in ("sim", "exact_match", "success_rate", "turns_per_game", "click_accuracy"):
        assert platform[key]["value"] == paper[key]["value"], key
    assert platform["sim"]["value"] == pytest.approx(0.7, abs=1e-12)
    # Intervals: BCa against percentile; the stored runs carry their conventions.
    assert paper_result["parameters"]["method"] == "percentile"
    low, high = paper["positive_feedback"]["ci"]
    assert 0 <= low <= 1 / 3 <= high <= 1
    assert sorted(MetricRun.objects.values_list("conventions", flat=True)) == ["paper", "platform"]
