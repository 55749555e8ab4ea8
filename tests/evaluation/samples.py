"""The sample games (tests/data/samples), parsed here independently of the importer."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np

from tests.sample_files import SAMPLE_JSON, SAMPLE_PKL

# tests/data/samples/README.md, "Figures computed independently from this file".
README_FIGURES = {
    "games": 24,
    "successful": 17,
    "success_rate": 17 / 24,
    "turns": 168,
    "turns_per_game": 7.0,
    "clicks": 178,
    "correct_clicks": 132,
    "click_accuracy": 132 / 178,
    "utterance_length": 5.321,
    "reset_phrases": 0,
    "try_again_phrases": 35,
}

# tests/data/samples/README.md, "The platform's and the paper's conventions": what
# ``compute_metrics --study sample [--conventions paper]`` prints with its defaults (10,000
# resamples, seed 0); value and 95% interval, rounded as there (rates in percent).
README_CONVENTION_FIGURES = {
    "platform": {
        "click_accuracy": (74.16, [70.35, 78.57], 2),
        "utterance_length": (5.321, [5.107, 5.529], 3),
        "try_again_per_100": (20.83, [16.07, 25.43], 2),
        "vocabulary_size": 56,
    },
    "paper": {
        "click_accuracy": (74.16, [70.43, 78.71], 2),
        "utterance_length": (5.381, [5.164, 5.587], 3),
        "try_again_per_100": (20.83, [15.89, 25.28], 2),
        "vocabulary_size": 56,
    },
}


def load_json() -> dict:
    return json.loads(SAMPLE_JSON.read_text())


def load_pickle() -> dict:
    with SAMPLE_PKL.open("rb") as handle:
        return pickle.load(handle)  # noqa: S301 - the project's own sample file


def image(name: str) -> str:
    return name.rsplit(".", 1)[0]


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def game_arrays(games: dict):
    """Per game (listener order): success, target mask, and per turn before/after masks."""
    out = []
    for record in games.values():
        order = [image(x) for x in record["context_listener"]]
        position = {name: i for i, name in enumerate(order)}
        targets = np.zeros(len(order), dtype=bool)
        targets[[position[image(t)] for t in record["targets"]]] = True
        before, after = [], []
        state = np.zeros(len(order), dtype=bool)
        for clicks in record["clicks"]:
            new = np.zeros(len(order), dtype=bool)
            new[[position[image(x)] for x in clicks]] = True
            before.append(state)
            after.append(new)
            state = new
        out.append(
            {
                "successful": record["end"] == "successful",
                "targets": targets,
                "order": order,
                "before": np.array(before),
                "after": np.array(after),
                "utterances": [u for u in record["chat"]],
            }
        )
    return out
