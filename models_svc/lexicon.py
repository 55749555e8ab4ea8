"""The lexicon feedback decoder: cue words and a few rules (CPU, deterministic, no weights).

It reads the follow-up utterance u_{t+1} the way the decoder prompt describes feedback:

- negative cues: corrections and negations (no, not, wrong, undo, don't, deselect, unselect,
  remove, try again, the other one, start over, ...);
- positive cues: approval (good, yes, correct, okay, great, perfect, ...) and moving on
  (now, next, also, then, another, and);
- partial cues (almost, close, nearly, one more, half, ...) mark neutral in the ternary kind;
- contrast: in ``X but Y`` the clause after the last ``but``/``however``/``though`` decides;
- a negated approval (``not right``, ``not quite``) is a correction.

Evidence is counted per cue (moving on counts half); an utterance with both positive and negative
cues adds their smaller count to the partial evidence. Binary: positive iff positive evidence
beats negative plus partial evidence, else negative (so ties and utterances without any cue lean
negative, as the paper's prompt asks). Ternary: the largest of partial (neutral), negative and
positive evidence wins, ties in that order; no cue at all is neutral. The score is the winning
label's share of the evidence (binary 0.5 and ternary 1/3 when there is none).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .interfaces import (
    KIND_LABELS,
    LABEL_NEGATIVE,
    LABEL_NEUTRAL,
    LABEL_POSITIVE,
    FeedbackContext,
    FeedbackResult,
)

VERSION = "lexicon-1"


def _words(*items: str) -> str:
    return "|".join(
        sorted((re.escape(i).replace(r"\ ", r"\s+") for i in items), key=len, reverse=True)
    )


NEGATIVE = re.compile(
    r"\b(?:"
    + _words(
        "no",
        "nope",
        "nah",
        "not",
        "wrong",
        "incorrect",
        "undo",
        "don't",
        "dont",
        "do not",
        "isn't",
        "isnt",
        "is not",
        "wasn't",
        "didn't",
        "deselect",
        "de-select",
        "unselect",
        "un-select",
        "uncheck",
        "unclick",
        "remove",
        "take off",
        "take away",
        "get rid",
        "try again",
        "try one more time",
        "the other one",
        "not that",
        "not this",
        "oops",
        "mistake",
        "instead",
        "reset",
        "restart",
        "start over",
        "from scratch",
        "all over",
        "clear",
        "drop",
        "never mind",
        "nevermind",
        "bad",
        "missed",
        "miss",
        "none of",
        "neither",
        "nor",
        "why",
        "stop",
        "back",
    )
    + r")\b",
)
POSITIVE = re.compile(
    r"\b(?:"
    + _words(
        "yes",
        "yeah",
        "yep",
        "yup",
        "yay",
        "good",
        "great",
        "correct",
        "right",
        "perfect",
        "nice",
        "ok",
        "okay",
        "k",
        "awesome",
        "excellent",
        "exactly",
        "well done",
        "thanks",
        "thank you",
        "got it",
        "that's it",
        "thats it",
        "there you go",
        "bingo",
        "sweet",
        "cool",
        "amazing",
        "super",
        "fantastic",
        "brilliant",
        "wonderful",
        "yes!",
        "done",
        "keep it",
        "keep that",
        "keep those",
        "good job",
        "nailed",
    )
    + r")\b",
)
MOVING_ON = re.compile(r"^\W*(?:now|next|also|then|and|another|lastly|finally|plus)\b")
PARTIAL = re.compile(
    r"\b(?:"
    + _words(
        "almost",
        "close",
        "closer",
        "nearly",
        "partly",
        "partially",
        "half",
        "one more",
        "some of",
        "one of them",
        "not all",
        "not quite",
        "missing",
        "still need",
        "keep going",
        "so far",
        "halfway",
        "sort of",
        "kind of",
    )
    + r")\b",
)
NEGATED_APPROVAL = re.compile(
    r"\bnot\s+(?:quite|right|correct|good|it|exactly|that)\b|\bno\s+good\b"
)
# "right" as a direction ("on the right", "right side") is no approval.
DIRECTIONAL_RIGHT = re.compile(
    r"\b(?:the|to|on|at|top|bottom|upper|lower|far)\s+right\b|\bright\s+(?:side|corner|of|hand|facing|one)\b",
)
CONTRAST = re.compile(r"\b(?:but|however|though|although|except)\b")


def evidence(text: str) -> tuple[float, float, float]:
    """Positive, negative and partial evidence in one utterance (after contrast is resolved)."""
    text = text.lower()
    parts = CONTRAST.split(text)
    clause = parts[-1] if len(parts) > 1 and parts[-1].strip() else text
    mixed = len(parts) > 1
    cleaned = DIRECTIONAL_RIGHT.sub(" ", clause)
    negative = float(len(NEGATIVE.findall(cleaned)))
    positive = float(len(POSITIVE.findall(cleaned)))
    partial = float(len(PARTIAL.findall(cleaned)))
    negated = len(NEGATED_APPROVAL.findall(cleaned))
    positive = max(0.0, positive - negated)
    if MOVING_ON.search(cleaned) and negative == 0:
        positive += 0.5
    if mixed:
        head = DIRECTIONAL_RIGHT.sub(" ", parts[0])
        if POSITIVE.search(head) and negative > 0 or NEGATIVE.search(head) and positive > 0:
            partial += 1
    return positive, negative, partial


def decide(text: str, kind: str) -> FeedbackResult:
    """Label one follow-up utterance; see the module docstring for the rules."""
    positive, negative, partial = evidence(text)
    if positive and negative:
        partial += min(positive, negative)
    total = positive + negative + partial
    if kind == "binary":
        if positive > negative + partial:
            return FeedbackResult(LABEL_POSITIVE, positive / total)
        return FeedbackResult(LABEL_NEGATIVE, (negative + partial) / total if total else 0.5)
    if total == 0:
        return FeedbackResult(LABEL_NEUTRAL, 1 / 3)
    ranked = sorted(
        [(partial, 2, LABEL_NEUTRAL), (negative, 1, LABEL_NEGATIVE), (positive, 0, LABEL_POSITIVE)],
        reverse=True,
    )
    weight, _, label = ranked[0]
    return FeedbackResult(label, weight / total)


class LexiconDecoder:
    name = "lexicon"
    version = VERSION

    def decode(self, contexts: Sequence[FeedbackContext], kind: str) -> list[FeedbackResult]:
        if kind not in KIND_LABELS:
            raise ValueError(f"feedback kind must be binary or ternary, not {kind!r}")
        return [decide(context.follow_up, kind) for context in contexts]
