"""Model prompts of the paper (Figure 3, Figure 12), as plain text and chat messages (pure).

Action strings appear in the paper's surface form (``Deselect F select G``, see
``models_svc.action_space.surface_form``); images are lettered in the listener's order.
"""

from __future__ import annotations

from games.actions import context_letters

from .action_space import surface_form
from .interfaces import FeedbackContext, PolicyInput

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
        f"Speaker: {_one_line(context.utterance)}",
        f"Listener: {surface_form(context.action)}",
        f"Speaker: {_one_line(context.follow_up)}",
    ]
    return (
        decoder_instruction(kind)
        + "\n".join(lines)
        + "\n(end of the conversation)\n"
        + _DECODER_ANSWER[kind]
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def policy_messages(item: PolicyInput, *, with_images: bool = True) -> list[dict]:
    """The policy prompt as chat messages (Figure 12), ending with the current utterance.

    The system message letters the images (``A`` then its image, ...); then per earlier turn a
    state message, the speaker's utterance (user) and the listener's action (assistant); then
    the current state and utterance. Content parts follow the Hugging Face chat format.
    """
    letters = context_letters(len(item.images))
    context: list[dict] = []
    for letter in letters:
        context.append({"type": "text", "text": f"{letter} " if with_images else f"{letter} "})
        if with_images:
            context.append({"type": "image"})
    messages: list[dict] = [{"role": "system", "content": context}]
    for turn in item.history:
        messages += [
            _text("system", state_message(turn.selection)),
            _text("user", _one_line(turn.utterance)),
            _text("assistant", surface_form(turn.action)),
        ]
    messages += [
        _text("system", state_message(item.selection)),
        _text("user", _one_line(item.utterance)),
    ]
    return messages


def state_message(selection: tuple[str, ...] | list[str]) -> str:
    letters = sorted(selection)
    return "none is selected" if not letters else " ".join(letters) + " currently selected"


def _text(role: str, text: str) -> dict:
    return {"role": role, "content": [{"type": "text", "text": text}]}
