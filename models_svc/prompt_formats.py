"""Prompt formats: named, versioned renderings of the policy prompt, its target and its images.

A model trained on one rendering and prompted with another binds letters to the wrong images,
so the rendering is a setting of each System (``System.prompt_format``) and every model turn
records the format its action was produced under (``Turn.prompt_format``). Training and p_t
scoring render a turn with the turn's own format.

A format never changes once released: a different rendering gets a new name. Two exist:

- ``respect-2024``, the layout the study's released checkpoints were trained on: in the system
  message each image comes first and its letter right after it (image, ``A``, image, ``B``, …);
  actions in lower case with capital letters (``select A C``, ``deselect B select D``); the empty
  action written ``nothing``; images resized to 224×224 and never split into sub-images.
- ``platform-p1``, the platform's first layout: each letter before its image (``A <image>``),
  capitalised verbs (``Select A``), ``No change`` for the empty action, images at the processor's
  default size.

Pure: no ORM, no torch. The chat messages follow the Hugging Face content-part layout
(``{"type": "image"}`` / ``{"type": "text", "text": ...}``); the checkpoint's chat template turns
them into the prompt string.
"""

from __future__ import annotations

from dataclasses import dataclass

from games.actions import context_letters

from .interfaces import FeedbackContext, PolicyInput
from .prompts import decoder_prompt as render_decoder_prompt
from .prompts import one_line

DEFAULT_FORMAT = "respect-2024"


@dataclass(frozen=True)
class PromptFormat:
    """How one policy prompt is written and how its images are prepared.

    ``image_size`` is the side of the square every image is resized to before the processor sees
    it (None: the processor's default size); ``image_splitting`` overrides the processor's
    sub-image splitting (None: leave the processor's setting).
    """

    name: str
    version: str
    description: str
    image_first: bool
    capitalised_verbs: bool
    empty_action: str
    image_size: int | None = None
    image_splitting: bool | None = None

    @property
    def tag(self) -> str:
        """``name@version``: what a policy's version string carries."""
        return f"{self.name}@{self.version}"

    def action_text(self, action: str) -> str:
        """How the canonical ``action`` reads in this format's prompts and targets."""
        if not action:
            return self.empty_action
        return action[0].upper() + action[1:] if self.capitalised_verbs else action

    def parse_action_text(self, text: str) -> str:
        """The canonical action string of this format's action text (inverse of action_text)."""
        text = text.strip()
        if text == self.empty_action:
            return ""
        return text[0].lower() + text[1:] if text else text

    def context_message(self, size: int) -> dict:
        """The system message that letters the ``size`` context images (listener order)."""
        parts: list[dict] = []
        for letter in context_letters(size):
            if self.image_first:
                parts += [{"type": "image"}, {"type": "text", "text": letter}]
            else:
                parts += [{"type": "text", "text": f"{letter} "}, {"type": "image"}]
        return {"role": "system", "content": parts}

    def policy_messages(self, item: PolicyInput) -> list[dict]:
        """The prompt of one turn: images, then per earlier turn its state message, utterance
        and action, then the current state and utterance (the model answers the action)."""
        messages = [self.context_message(len(item.images))]
        for turn in item.history:
            messages += [
                _text("system", state_message(turn.selection)),
                _text("user", one_line(turn.utterance)),
                _text("assistant", self.action_text(turn.action)),
            ]
        messages += [
            _text("system", state_message(item.selection)),
            _text("user", one_line(item.utterance)),
        ]
        return messages

    def decoder_prompt(self, context: FeedbackContext, kind: str) -> str:
        """The text-only feedback-decoder prompt (the same wording for every format)."""
        return render_decoder_prompt(context, kind)


RESPECT_2024 = PromptFormat(
    name="respect-2024",
    version="1",
    description="The released ReSpect checkpoints' layout: image then letter, lower-case "
    "verbs, 'nothing' for the empty action, 224×224 images without splitting.",
    image_first=True,
    capitalised_verbs=False,
    empty_action="nothing",
    image_size=224,
    image_splitting=False,
)
PLATFORM_P1 = PromptFormat(
    name="platform-p1",
    version="1",
    description="The platform's first layout: letter then image, capitalised verbs, "
    "'No change' for the empty action, the processor's default image size.",
    image_first=False,
    capitalised_verbs=True,
    empty_action="No change",
)
FORMATS: dict[str, PromptFormat] = {f.name: f for f in (RESPECT_2024, PLATFORM_P1)}


class UnknownPromptFormat(ValueError):
    """A prompt-format name that is not one of ``FORMATS``."""


def get_format(name: str | None) -> PromptFormat:
    """The format called ``name`` (the default format for an empty name)."""
    key = (name or "").strip() or DEFAULT_FORMAT
    try:
        return FORMATS[key]
    except KeyError:
        raise UnknownPromptFormat(
            f"unknown prompt format {key!r}: use one of {', '.join(sorted(FORMATS))}"
        ) from None


def plain_chat_text(messages: list[dict]) -> str:
    """A prompt string for a checkpoint without a chat template (``Role: text`` lines, images as
    ``<image>``), ending where the assistant answers."""
    lines = []
    for message in messages:
        parts = "".join(
            part["text"] if part["type"] == "text" else "<image>" for part in message["content"]
        )
        lines.append(f"{message['role'].capitalize()}: {parts}")
    return "\n".join(lines) + "\nAssistant:"


def state_message(selection: tuple[str, ...] | list[str]) -> str:
    letters = sorted(selection)
    return "none is selected" if not letters else " ".join(letters) + " currently selected"


def _text(role: str, text: str) -> dict:
    return {"role": role, "content": [{"type": "text", "text": text}]}
