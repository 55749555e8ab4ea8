"""Synthetic interaction data for the model-service benchmarks (no database, no downloads)."""

from __future__ import annotations

import random
from pathlib import Path

from models_svc.tiny_models import SHAPE_WORDS

FEEDBACK = (
    "yes",
    "good",
    "great",
    "correct",
    "no",
    "not that one",
    "wrong",
    "undo that",
    "try again",
    "the other one",
    "almost",
    "okay",
    "nope",
    "deselect that",
    "perfect",
    "now",
    "next",
)
ACTIONS = ("select A", "select B D", "deselect C", "deselect B select E", "select J", "")


def game_images(game: int, image_dir: Path) -> tuple[list[str], list[Path]]:
    """The 10 tangram names of benchmark game ``game`` and their image files (written once)."""
    from models_svc.tiny_models import write_tangram_pngs

    names = [f"bench{game}-{i}" for i in range(10)]
    paths = [image_dir / f"{name}.png" for name in names]
    if not paths[0].exists():
        write_tangram_pngs(image_dir, names, size=128)
    return names, paths


def utterance(rng: random.Random) -> str:
    """A speaker utterance of about 8.5 words (the paper's mean), some with feedback cues."""
    length = max(1, int(rng.gauss(8.5, 3)))
    words = [rng.choice(SHAPE_WORDS) for _ in range(length)]
    if rng.random() < 0.6:
        words.insert(0, rng.choice(FEEDBACK) + ",")
    return " ".join(words)


def feedback_contexts(count: int, seed: int = 0):
    from models_svc.interfaces import FeedbackContext

    rng = random.Random(seed)
    return [
        FeedbackContext(
            utterance=utterance(rng),
            action=rng.choice(ACTIONS),
            follow_up=utterance(rng),
            previous_action=None if i % 7 == 0 else rng.choice(ACTIONS),
        )
        for i in range(count)
    ]
