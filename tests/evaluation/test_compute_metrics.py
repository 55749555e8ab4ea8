"""``compute_metrics`` end to end: import → metric run → JSON/table, against the sample figures
and an independent computation on export files in the original layout."""

from __future__ import annotations

import copy
import json
import random

import pytest
from django.core.management.base import CommandError

from evaluation.models import MetricRun
from evaluation.stats import language

from .conftest import metrics_json, run_command
from .samples import README_FIGURES, SAMPLE_PKL, image, load_json

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
    """Plain-Python figures of one group of export records (DESIGN.md definitions)."""
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
