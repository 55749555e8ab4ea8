"""A small study with annotations and decoder labels, built through the ORM (tests only)."""

from __future__ import annotations

from collections.abc import Iterable

from annotation.models import TurnAnnotation
from games.models import FeedbackLabel, Game, Turn, Worker
from games.workers import hash_worker_id
from tests.factories import make_game, make_study, make_system

# Ten tangrams page9-0 … page9-9; the listener order is reversed, so page9-9 is letter A.
# Targets are page9-0, page9-1, page9-2 = letters J, I, H.
T = [f"page9-{i}" for i in range(10)]


def worker(name: str) -> Worker:
    return Worker.objects.get_or_create(
        platform=Worker.Platform.LOCAL, id_hash=hash_worker_id("local", name)
    )[0]


def annotate_turns(answers: Iterable[tuple[Turn, str, str, str]]) -> None:
    """One annotation per (turn, annotator's name, annotated action, satisfaction)."""
    for turn, who, action, satisfaction in answers:
        TurnAnnotation.objects.create(
            turn=turn, worker=worker(who), annotated_action=action, satisfaction=satisfaction
        )


def annotated_study(name: str = "annotated") -> dict:
    """Two rounds of B-FFT, one of HH; round 1 annotated (one turn by three annotators) and
    labelled by a binary and a ternary decoder."""
    study = make_study(name)
    r0 = make_system(study, 0, "B-FFT")
    r1 = make_system(study, 1, "B-FFT")
    hh = make_system(study, 1, "HH")
    games = [
        make_game(
            r0,
            [[T[0]], [T[0], T[5]], [T[0], T[1], T[2]]],
            ["pick the bird", "no", "try again"],
            outcome="successful",
            external_id=f"{name}-a",
        ),
        make_game(
            r0, [[T[5]], [T[5], T[6]]], ["left one", "reset all over"], external_id=f"{name}-b"
        ),
        make_game(
            r1,
            [[T[0]], [T[0], T[1]], [T[0], T[1], T[2]]],
            ["the bat", "yes the cat", "good, the dog"],
            outcome="successful",
            external_id=f"{name}-c",
        ),
        make_game(
            r1,
            [[T[7]], [], [T[2]]],
            ["the man", "no undo", "the other one"],
            external_id=f"{name}-d",
        ),
        make_game(
            hh, [[T[0], T[1], T[2]]], ["all three"], outcome="successful", external_id=f"{name}-e"
        ),
    ]
    c, d = games[2], games[3]
    c_turns = list(c.turns.order_by("index"))
    d_turns = list(d.turns.order_by("index"))
    # letters: page9-0 = J, page9-1 = I, page9-2 = H, page9-7 = C
    annotate_turns(
        [
            (c_turns[0], "alice", "select J", "yes"),  # matches
            (c_turns[1], "alice", "select I", "yes"),  # matches
            (c_turns[2], "alice", "select H", ""),  # matches; last turn
            (d_turns[0], "alice", "select H", "no"),  # model chose C: wrong
            (d_turns[0], "bob", "select H", "no"),
            (d_turns[0], "carol", "select C", "yes_wrong"),
            (d_turns[1], "bob", "deselect C", "yes_incomplete"),  # matches
        ]
    )
    labels = [
        (c_turns[0], "positive", "positive"),
        (c_turns[1], "positive", "neutral"),
        (d_turns[0], "negative", "negative"),
        (d_turns[1], "unparseable", "positive"),
    ]
    for turn, binary, ternary in labels:
        FeedbackLabel.objects.create(turn=turn, decoder="lexicon", kind="binary", label=binary)
        FeedbackLabel.objects.create(turn=turn, decoder="lexicon", kind="ternary", label=ternary)
    Game.objects.filter(pk__in=[g.pk for g in games]).update(status=Game.Status.ENDED)
    return {"study": study, "games": games}
