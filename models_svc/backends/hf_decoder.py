"""Feedback decoding with a Hugging Face checkpoint, by scoring the label words.

Every turn gets the label whose word (``Positive``/``Neutral``/``Negative``, as the model would
write it after the prompt) has the highest log-probability, and a confidence: that label's
probability renormalised over the kind's labels. Turns are scored in batches; the instruction
shared by all prompts is run once and its key/value cache reused for every batch, so each turn
costs only its own conversation tokens. Multi-token label words are scored exactly, with one
extra small forward pass over the label tokens on top of the cache.

``mode="generate"`` instead lets the model write an answer (greedy, a few tokens) and parses the
first word; answers that are no label are recorded as ``unparseable``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import torch

from ..checkpoints import fingerprint
from ..interfaces import KIND_LABELS, LABEL_UNPARSEABLE, FeedbackContext, FeedbackResult
from ..prompts import LABEL_WORDS, PROMPT_VERSION, decoder_instruction, decoder_prompt
from .hf_common import LoadedModel, chat_text, continuation_ids, load_model


class HFDecoder:
    def __init__(
        self,
        path: str,
        *,
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 32,
        mode: str = "score",
    ) -> None:
        loaded = load_model(path, what="feedback decoder", device=device, dtype=dtype)
        self._setup(loaded, f"hf:{path}", fingerprint(path), batch_size=batch_size, mode=mode)

    @classmethod
    def from_loaded(
        cls,
        loaded: LoadedModel,
        name: str,
        fingerprint_: str,
        *,
        batch_size: int = 32,
        mode: str = "score",
    ) -> HFDecoder:
        """A decoder around a model already in memory (benchmarks with random full-size weights)."""
        decoder = cls.__new__(cls)
        decoder._setup(loaded, name, fingerprint_, batch_size=batch_size, mode=mode)
        return decoder

    def _setup(
        self, loaded: LoadedModel, name: str, fingerprint_: str, *, batch_size: int, mode: str
    ) -> None:
        if mode not in ("score", "generate"):
            raise ValueError(f"decoder mode must be score or generate, not {mode!r}")
        self.loaded = loaded
        self.name = name
        self.version = f"{fingerprint_}-{PROMPT_VERSION}-{mode}"
        self.batch_size = batch_size
        self.mode = mode
        self._label_ids: dict[str, dict[str, list[int]]] = {}
        self._prefix: dict[str, tuple[list[int], object]] = {}

    # -- prompts -------------------------------------------------------------------------------

    def prompt_text(self, context: FeedbackContext, kind: str) -> str:
        messages = [
            {"role": "user", "content": [{"type": "text", "text": decoder_prompt(context, kind)}]}
        ]
        return chat_text(self.loaded.tokenizer, self.loaded.processor, messages)

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.loaded.tokenizer(list(texts), add_special_tokens=True)["input_ids"]

    def label_ids(self, kind: str) -> dict[str, list[int]]:
        """Token ids of each label word as the model would write it after the prompt."""
        if kind not in self._label_ids:
            sample = self.prompt_text(FeedbackContext("a", "select A", "b"), kind)
            self._label_ids[kind] = {
                label: continuation_ids(self.loaded.tokenizer, sample, " " + LABEL_WORDS[label])
                for label in KIND_LABELS[kind]
            }
        return self._label_ids[kind]

    def _shared_prefix(self, kind: str) -> tuple[list[int], object]:
        """Token ids of the instruction every prompt of ``kind`` starts with, and their cache."""
        if kind not in self._prefix:
            a = self._encode([self.prompt_text(FeedbackContext("x", "select A", "y"), kind)])[0]
            b = self._encode([self.prompt_text(FeedbackContext("q q", "", "r", "select B"), kind)])[
                0
            ]
            instruction = self._encode([decoder_instruction(kind)])[0]
            length = 0
            while length < min(len(a), len(b)) - 1 and a[length] == b[length]:
                length += 1
            length = min(length, len(instruction) + 8) - 1
            prefix = a[:length]
            cache = None
            if length > 0:
                ids = torch.tensor([prefix], device=self.loaded.device)
                with torch.inference_mode():
                    cache = self.loaded.model(input_ids=ids, use_cache=True).past_key_values
            self._prefix[kind] = (prefix, cache)
        return self._prefix[kind]

    # -- decoding ------------------------------------------------------------------------------

    def decode(self, contexts: Sequence[FeedbackContext], kind: str) -> list[FeedbackResult]:
        if kind not in KIND_LABELS:
            raise ValueError(f"feedback kind must be binary or ternary, not {kind!r}")
        if not contexts:
            return []
        prompts = self._encode([self.prompt_text(c, kind) for c in contexts])
        if self.mode == "generate":
            return self._generate(prompts, kind)
        logprobs = self.label_logprobs(prompts, kind)
        return [self._result(row, kind) for row in logprobs]

    def _result(self, row: dict[str, float], kind: str) -> FeedbackResult:
        labels = KIND_LABELS[kind]
        best = max(labels, key=lambda label: (row[label], -labels.index(label)))
        total = math.log(sum(math.exp(row[label] - row[best]) for label in labels)) + row[best]
        confidence = math.exp(row[best] - total)
        raw = json.dumps({LABEL_WORDS[label]: round(row[label], 6) for label in labels})
        return FeedbackResult(best, confidence, raw, {"logprobs": row})

    def label_logprobs(self, prompts: list[list[int]], kind: str) -> list[dict[str, float]]:
        """log P(label word | prompt) for each prompt (token ids) and each label of ``kind``."""
        prefix, cache = self._shared_prefix(kind)
        results: dict[int, dict[str, float]] = {}
        can_share = [p[: len(prefix)] == prefix and len(p) > len(prefix) for p in prompts]
        order = sorted(range(len(prompts)), key=lambda i: (not can_share[i], len(prompts[i])))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            shared = all(can_share[i] for i in chunk)
            skip = len(prefix) if shared and cache is not None else 0
            rows = self._score_batch(
                [prompts[i][skip:] for i in chunk], cache if skip else None, skip, kind
            )
            for i, row in zip(chunk, rows, strict=True):
                results[i] = row
        return [results[i] for i in range(len(prompts))]

    def _score_batch(self, suffixes, prefix_cache, prefix_len: int, kind: str):
        device = self.loaded.device
        model = self.loaded.model
        batch = len(suffixes)
        width = max(len(s) for s in suffixes)
        pad = self.loaded.tokenizer.pad_token_id
        ids = torch.full((batch, width), pad, dtype=torch.long)
        mask = torch.zeros((batch, width), dtype=torch.long)
        for row, suffix in enumerate(suffixes):
            ids[row, width - len(suffix) :] = torch.tensor(suffix)
            mask[row, width - len(suffix) :] = 1
        ids, mask = ids.to(device), mask.to(device)
        positions = (prefix_len + mask.cumsum(-1) - 1).clamp(min=prefix_len)
        full_mask = torch.cat(
            [torch.ones((batch, prefix_len), dtype=torch.long, device=device), mask], 1
        )
        past = _expand_cache(prefix_cache, batch) if prefix_cache is not None else None
        label_ids = self.label_ids(kind)
        longest = max(len(t) for t in label_ids.values())
        with torch.inference_mode():
            out = model(
                input_ids=ids,
                attention_mask=full_mask,
                position_ids=positions,
                past_key_values=past,
                use_cache=longest > 1,
                logits_to_keep=1,
            )
            first = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)
            scores = {label: first[:, tokens[0]].clone() for label, tokens in label_ids.items()}
            if longest > 1:
                self._score_rest(
                    out.past_key_values, full_mask, positions[:, -1], label_ids, scores
                )
        return [{label: float(scores[label][row]) for label in label_ids} for row in range(batch)]

    def _score_rest(self, cache, mask, last_position, label_ids, scores) -> None:
        """Add log P(tokens 2.. of each longer label | prompt, earlier label tokens)."""
        longer = [label for label, tokens in label_ids.items() if len(tokens) > 1]
        batch = mask.shape[0]
        k = len(longer)
        steps = max(len(label_ids[label]) for label in longer) - 1
        device = mask.device
        pad = self.loaded.tokenizer.pad_token_id
        feed = torch.full((batch * k, steps), pad, dtype=torch.long, device=device)
        feed_mask = torch.zeros((batch * k, steps), dtype=torch.long, device=device)
        for j, label in enumerate(longer):
            tokens = label_ids[label][:-1]
            feed[j::k, : len(tokens)] = torch.tensor(tokens, device=device)
            feed_mask[j::k, : len(tokens)] = 1
        cache.batch_repeat_interleave(k)
        attention = torch.cat([mask.repeat_interleave(k, 0), feed_mask], 1)
        positions = (
            last_position.repeat_interleave(k, 0)[:, None] + 1 + torch.arange(steps, device=device)
        )
        out = self.loaded.model(
            input_ids=feed, attention_mask=attention, position_ids=positions, past_key_values=cache
        )
        logprobs = torch.log_softmax(out.logits.float(), dim=-1)
        for j, label in enumerate(longer):
            rest = label_ids[label][1:]
            target = torch.tensor(rest, device=device)
            picked = logprobs[j::k, : len(rest), :].gather(-1, target.expand(batch, -1)[..., None])
            scores[label] += picked.squeeze(-1).sum(-1)

    def _generate(self, prompts: list[list[int]], kind: str) -> list[FeedbackResult]:
        tokenizer = self.loaded.tokenizer
        results = []
        words = {LABEL_WORDS[label].lower(): label for label in KIND_LABELS[kind]}
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            width = max(len(p) for p in chunk)
            ids = torch.full((len(chunk), width), tokenizer.pad_token_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for row, prompt in enumerate(chunk):
                ids[row, width - len(prompt) :] = torch.tensor(prompt)
                mask[row, width - len(prompt) :] = 1
            with torch.inference_mode():
                out = self.loaded.model.generate(
                    input_ids=ids.to(self.loaded.device),
                    attention_mask=mask.to(self.loaded.device),
                    max_new_tokens=4,
                    do_sample=False,
                    pad_token_id=tokenizer.pad_token_id,
                )
            for row in out[:, width:]:
                text = tokenizer.decode(row, skip_special_tokens=True).strip()
                word = text.split()[0].strip(".,!:;\"'").lower() if text.split() else ""
                label = words.get(word, LABEL_UNPARSEABLE)
                results.append(FeedbackResult(label, None, text))
        return results


def _expand_cache(cache, batch: int):
    """A fresh cache holding ``batch`` copies (views) of a batch-1 prefix cache."""
    from transformers import DynamicCache

    layers = [
        (layer.keys.expand(batch, -1, -1, -1), layer.values.expand(batch, -1, -1, -1))
        for layer in cache.layers
    ]
    return DynamicCache(ddp_cache_data=layers)
