"""Scoring training examples: every example of a game in one forward pass (worker code: torch).

The prompt of turn t+1 extends the prompt of turn t by exactly turn t's action, the next state
and the next utterance, so one sequence ending with the last example's action holds every
example's prompt and target; causal attention makes each turn's loss, read from its own target
tokens, the loss of scoring that turn on its own. The token ids of each turn's own prompt (as a
policy acting on it tokenises it) are checked to be a prefix of the packed sequence; a group
whose tokenizer breaks that is scored one example at a time instead, never approximately.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..backends.hf_policy import HFPolicy
from ..interfaces import PolicyInput
from .examples import Example


@dataclass(frozen=True)
class TargetSpan:
    """Where one example's target tokens sit in a sequence, and what the constrained
    distribution allowed at each of its steps."""

    example: int
    start: int
    targets: tuple[int, ...]
    allowed: tuple[tuple[int, ...], ...]


@dataclass
class PackedSequence:
    """One forward pass: token ids, the (ordered) image files, and the spans read from it."""

    input_ids: list[int]
    image_paths: tuple[str, ...]
    spans: list[TargetSpan]


def policy_input(example: Example, paths: dict[str, str]) -> PolicyInput:
    return PolicyInput(
        images=example.images,
        selection=example.selection,
        utterance=example.utterance,
        history=example.history,
        image_paths=tuple(paths[name] for name in example.images),
    )


class Scorer:
    """Turns examples into sequences and scores them with a policy's model and format."""

    def __init__(self, policies: dict[str, HFPolicy], image_paths: dict[str, str]) -> None:
        self.policies = policies
        self.image_paths = image_paths
        # What the forward passes call instead of the policies' model, when set: the
        # DistributedDataParallel wrapper of that same model under torchrun.
        self.model: Any = None
        self._pixels: dict[tuple[str, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def policy(self, example: Example) -> HFPolicy:
        return self.policies[example.prompt_format]

    def prompt_ids(self, example: Example) -> list[int]:
        policy = self.policy(example)
        text = policy.prompt_text(policy_input(example, self.image_paths))
        return list(policy.processor(text=[text])["input_ids"][0])

    def span(self, example: Example, index: int, start: int) -> TargetSpan:
        policy = self.policy(example)
        targets = policy.action_tokens(example.action)
        try:
            allowed = policy.step_choices(len(example.images), example.selection, example.action)
        except ValueError as error:
            raise ValueError(f"example {example.key}: {error}") from error
        return TargetSpan(index, start, tuple(targets), tuple(tuple(a) for a in allowed))

    def single(self, example: Example, index: int) -> PackedSequence:
        ids = self.prompt_ids(example)
        span = self.span(example, index, len(ids))
        return PackedSequence(ids + list(span.targets), self._paths(example), [span])

    def packed(self, examples: Sequence[Example], indices: Sequence[int]) -> list[PackedSequence]:
        """One sequence for a group's examples (ordered by turn), or one per example when the
        tokenizer does not tokenise the prompts as prefixes of each other."""
        order = sorted(range(len(examples)), key=lambda i: len(examples[i].history))
        last = examples[order[-1]]
        full = self.single(last, indices[order[-1]])
        spans = []
        for position in order[:-1]:
            example = examples[position]
            ids = self.prompt_ids(example)
            span = self.span(example, indices[position], len(ids))
            end = len(ids) + len(span.targets)
            if full.input_ids[:end] != ids + list(span.targets):
                return [self.single(e, indices[i]) for i, e in enumerate(examples)]
            spans.append(span)
        full.spans = [*spans, *full.spans]
        return [full]

    def sequences(
        self, examples: Sequence[Example], *, packing: bool = True
    ) -> list[PackedSequence]:
        """Sequences covering every example once (packed per group when ``packing``)."""
        if not packing:
            return [self.single(example, i) for i, example in enumerate(examples)]
        groups: dict[str, list[int]] = {}
        for i, example in enumerate(examples):
            groups.setdefault(example.group, []).append(i)
        result = []
        for members in groups.values():
            result += self.packed([examples[i] for i in members], members)
        return result

    def _paths(self, example: Example) -> tuple[str, ...]:
        return tuple(self.image_paths[name] for name in example.images)

    def pixels(self, policy: HFPolicy, paths: Sequence[str]) -> dict[str, torch.Tensor]:
        """Processed images (cached per file and prompt format, since formats size images
        differently): pixel values and their attention mask."""
        image_processor = policy.processor.image_processor
        values, masks = [], []
        for path in paths:
            key = (policy.format.name, path)
            if key not in self._pixels:
                processed = image_processor(
                    [[policy.open_image(path)]], return_tensors="pt", **policy.image_options()
                )
                self._pixels[key] = (
                    processed["pixel_values"][0],
                    processed["pixel_attention_mask"][0],
                )
            value, mask = self._pixels[key]
            values.append(value)
            masks.append(mask)
        if len({tuple(v.shape) for v in values}) != 1:
            processed = image_processor(
                [[policy.open_image(p) for p in paths]],
                return_tensors="pt",
                **policy.image_options(),
            )
            return {
                "pixel_values": processed["pixel_values"],
                "pixel_attention_mask": processed["pixel_attention_mask"],
            }
        return {
            "pixel_values": torch.cat(values)[None],
            "pixel_attention_mask": torch.cat(masks)[None],
        }

    def logits(self, sequence: PackedSequence, example: Example) -> torch.Tensor:
        """The model's logits over a sequence (1 × length × vocabulary)."""
        policy = self.policy(example)
        device = policy.loaded.device
        ids = torch.tensor([sequence.input_ids], device=device)
        images = {
            key: value.to(device)
            for key, value in self.pixels(policy, sequence.image_paths).items()
        }
        dtype = next(policy.loaded.model.parameters()).dtype
        images["pixel_values"] = images["pixel_values"].to(dtype)
        model = self.model if self.model is not None else policy.loaded.model
        return model(input_ids=ids, attention_mask=torch.ones_like(ids), **images).logits


def span_logits(logits: torch.Tensor, span: TargetSpan) -> torch.Tensor:
    """The rows of ``logits`` (1 × length × vocabulary) that predict the span's targets."""
    return logits[0, span.start - 1 : span.start - 1 + len(span.targets)]
