"""The feedback decoder's prompt (the paper's Figure 3), as plain text (pure).

Action strings appear in the paper's surface form (``Deselect F select G``, see
``models_svc.action_space.surface_form``). The policy prompt is rendered by a prompt format
(``models_svc.prompt_formats``).
"""

from __future__ import annotations

from .action_space import surface_form
from .interfaces import FeedbackContext

PROMPT_VERSION = "p1"

_DECODER_QUESTION = {
    "binary": "positive or negative",
    "ternary": "positive, neutral, or negative",
}
_DECODER_ANSWER = {
    "binary": "Answer a single word, Positive, or Negative.",
    "ternary": "Answer a single word, Positive, Neutral or Negative.",
}
LABEL_WORDS = {"positive": "Positive", "neutral": "Neutral", "negative": "Negative"}


def decoder_instruction(kind: str) -> str:
    """The fixed opening of the decoder prompt for ``kind`` (shared by every turn)."""
    if kind not in _DECODER_QUESTION:
        raise ValueError(f"feedback kind must be binary or ternary, not {kind!r}")
    lean = " Lean towards negative if it sounds neutral." if kind == "binary" else ""
    return (
        "Please carefully read the following conversation and answer: Is the very last "
        f"utterance from the speaker {_DECODER_QUESTION[kind]} feedback? Often negative feedback "
        "include corrections and keywords like no, not, undo, don't, with generally negative "
        "sentiment, while positive feedback often includes good, yes, correct, okay, or simply "
        f"move on to the next stage.{lean}\n(start of the conversation)\n"
    )


def decoder_prompt(context: FeedbackContext, kind: str) -> str:
    """The text-only decoder prompt over ⟨â_{t−1}, u_t, â_t, u_{t+1}⟩ (three messages on turn 0)."""
    lines = []
    if context.previous_action is not None:
        lines.append(f"Listener: {surface_form(context.previous_action)}")
    lines += [
        f"Speaker: {one_line(context.utterance)}",
        f"Listener: {surface_form(context.action)}",
        f"Speaker: {one_line(context.follow_up)}",
    ]
    return (
        decoder_instruction(kind)
        + "\n".join(lines)
        + "\n(end of the conversation)\n"
        + _DECODER_ANSWER[kind]
    )


def one_line(text: str) -> str:
    return " ".join(text.split())
