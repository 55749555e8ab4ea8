"""The listener policy on a Hugging Face image-text-to-text checkpoint (optionally with LoRA).

Per turn it builds the prompt of its prompt format (``models_svc.prompt_formats``; images
lettered in listener order), then samples an
answer token by token at the configured temperature, restricted at each step to tokens that
continue some valid action string for the current selection followed by the end-of-answer token
(a token trie over the 2^n − 1 valid actions). The probability returned is the product of the
per-step probabilities under that constrained, temperature-scaled distribution: exactly the
probability with which the action was sampled, the p_t that training's importance weights need.
``score`` recomputes that probability for any valid action by teacher forcing.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

import torch

from ..action_space import valid_action_list
from ..checkpoints import fingerprint
from ..interfaces import CheckpointError, PolicyDecision, PolicyInput
from ..prompt_formats import DEFAULT_FORMAT, get_format
from .hf_common import LoadedModel, chat_text, load_model, stop_token_ids
from .images import tangram_on_white
from .mixed_lora import row_adapters
from .sampling import BASE_ROW, TrieNode, _action_of, _generator, adapter_hooks

logger = logging.getLogger(__name__)


class HFPolicy:
    _shared: Any = None  # a model_cache.BaseEntry when the policy runs on a shared base
    prefix_cache: Any = None  # a prefix_cache.PrefixCache when served (weights never change)

    def __init__(
        self,
        path: str,
        *,
        adapter: str | None = None,
        device: str = "auto",
        dtype: str = "auto",
        temperature: float = 1.0,
        prompt_format: str = DEFAULT_FORMAT,
    ) -> None:
        loaded = load_model(
            path,
            what="listener policy",
            device=device,
            dtype=dtype,
            need_images=True,
            adapter=adapter,
        )
        name = f"hf:{path}" + (f"+lora:{adapter}" if adapter else "")
        paths = [path, adapter] if adapter else [path]
        self._setup(loaded, name, fingerprint(*paths), temperature, prompt_format)

    @classmethod
    def from_loaded(
        cls,
        loaded: LoadedModel,
        name: str,
        fingerprint_: str,
        *,
        temperature: float = 1.0,
        prompt_format: str = DEFAULT_FORMAT,
        shared: Any = None,
    ) -> HFPolicy:
        """A policy around a model already in memory (a model being trained; benchmarks with
        random full-size weights; ``shared``: a ``model_cache.BaseEntry`` whose model, base or
        peft-wrapped with many adapters, the policy reads at each call)."""
        policy = cls.__new__(cls)
        policy._shared = shared
        policy._setup(loaded, name, fingerprint_, temperature, prompt_format)
        return policy

    def _setup(
        self,
        loaded: LoadedModel,
        name: str,
        fingerprint_: str,
        temperature: float,
        prompt_format: str,
    ) -> None:
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        self.loaded = loaded
        self.name = name
        self.format = get_format(prompt_format)
        processor = loaded.processor
        splitting = self.format.image_splitting
        if processor is not None and splitting is not None:
            # The processor writes one or five image-token runs per image from this attribute,
            # so the format sets it (on a copy: policies of other formats may share the model).
            processor = copy.copy(processor)
            processor.image_processor = copy.copy(processor.image_processor)
            processor.image_processor.do_image_splitting = splitting
            self.loaded = dataclasses.replace(loaded, processor=processor)
        self.version = f"{fingerprint_}-{self.format.tag}"
        self.temperature = temperature
        tokenizer = self.loaded.tokenizer
        stops = stop_token_ids(tokenizer)
        if not stops:
            raise CheckpointError(f"listener policy: {name} has no end-of-answer token (EOS)")
        self.stop_id = stops[0]
        self._tries: dict[tuple[int, frozenset[str]], TrieNode] = {}
        self._action_ids: dict[str, list[int]] = {}
        self.loaded.tokenizer.padding_side = "left"

    @property
    def processor(self) -> Any:
        """The model's processor (a listener policy reads images, so it needs one)."""
        if self.loaded.processor is None:
            raise CheckpointError(f"listener policy: {self.name} has no processor")
        return self.loaded.processor

    # -- prompts and the action trie ------------------------------------------------------------

    def prompt_text(self, item: PolicyInput) -> str:
        return chat_text(
            self.loaded.tokenizer, self.loaded.processor, self.format.policy_messages(item)
        )

    def action_tokens(self, action: str) -> list[int]:
        """Token ids of an action as the model writes it after the prompt, ending with stop."""
        return self.action_token_lists([action])[0]

    def action_token_lists(self, actions: Sequence[str]) -> list[list[int]]:
        """``action_tokens`` of many actions, tokenised in one batch and remembered (there are
        3^n − 1 action strings over n images, each tokenised once per policy)."""
        cache = self._action_ids
        missing = [action for action in dict.fromkeys(actions) if action not in cache]
        if missing:
            tokenizer = self.loaded.tokenizer
            base = tokenizer("Assistant:", add_special_tokens=False)["input_ids"]
            encoded = tokenizer(
                ["Assistant: " + self.format.action_text(a) for a in missing],
                add_special_tokens=False,
            )["input_ids"]
            for action, ids in zip(missing, encoded, strict=True):
                if ids[: len(base)] != base:
                    raise CheckpointError("the tokenizer merges the answer into 'Assistant:'")
                cache[action] = [*ids[len(base) :], self.stop_id]
        return [cache[action] for action in actions]

    def trie(self, size: int, selection: Sequence[str]) -> TrieNode:
        key = (size, frozenset(selection))
        if key not in self._tries:
            actions = valid_action_list(frozenset(selection), size)
            root = TrieNode()
            lists = self.action_token_lists(actions)
            root.longest = max(len(ids) for ids in lists)
            for action, ids in zip(actions, lists, strict=True):
                node = root
                for token in ids:
                    node = node.children.setdefault(token, TrieNode())
                node.action = action
            if len(self._tries) >= 256:
                self._tries.clear()
            self._tries[key] = root
        return self._tries[key]

    def step_choices(self, size: int, selection: Sequence[str], action: str) -> list[list[int]]:
        """The tokens the constrained distribution allows at each step of writing ``action``
        (the children of the trie nodes along its path), without building the trie; raises
        ValueError when the action is not valid for the selection."""
        target = self.action_tokens(action)
        live = self.action_token_lists(valid_action_list(frozenset(selection), size))
        choices = []
        for step, token in enumerate(target):
            allowed = list(dict.fromkeys(ids[step] for ids in live))
            if token not in allowed:
                raise ValueError(f"{action!r} is not a valid action for selection {selection}")
            choices.append(allowed)
            live = [ids for ids in live if ids[step] == token]
        return choices

    # -- model inputs ---------------------------------------------------------------------------

    def _model(self):
        """The model to run: the shared base's current one (peft-wrapped once an adapter is
        attached), else this policy's own."""
        return self._shared.loaded.model if self._shared is not None else self.loaded.model

    def _base_model(self):
        model = self._model()
        return model.get_base_model() if hasattr(model, "get_base_model") else model

    def _can_cache_images(self) -> bool:
        """Whether the model takes precomputed image features (IDEFICS2 and kin do)."""
        if not hasattr(self, "_cache_images"):
            import inspect

            base = self._base_model()
            self._cache_images = (
                hasattr(base, "get_image_features")
                and "mm_encoder_outputs" in inspect.signature(base.forward).parameters
                and not getattr(self.processor.image_processor, "do_image_splitting", False)
            )
        return self._cache_images

    def image_features(self, paths: Sequence[str], adapter: str | None = None) -> torch.Tensor:
        """Encoder outputs per image file (vision model and connector, under ``adapter`` where
        the model has several), cached by adapter, path and modification time: the 10 images of
        a game are encoded once, not on every turn."""
        import os

        cache = self.__dict__.setdefault("_image_cache", {})
        rows = []
        for path in paths:
            key = (adapter, path, os.stat(path).st_mtime_ns)
            if key not in cache:
                processed = self.processor.image_processor(
                    [[self.open_image(path)]], return_tensors="pt", **self.image_options()
                )
                with torch.inference_mode(), adapter_hooks(self._model(), adapter, 1):
                    output = self._base_model().get_image_features(
                        pixel_values=processed["pixel_values"].to(self.loaded.device),
                        pixel_attention_mask=processed["pixel_attention_mask"].to(
                            self.loaded.device
                        ),
                    )
                features = output if isinstance(output, torch.Tensor) else output.pooler_output
                if len(cache) >= 4096:
                    cache.clear()
                cache[key] = features[0]
            rows.append(cache[key])
        return torch.stack(rows)

    def _encode(
        self,
        items: Sequence[PolicyInput],
        suffixes: Sequence[list[int]] | None = None,
        adapters: Sequence[str] | None = None,
    ):
        """Model inputs for a batch (left padded), each prompt followed by its suffix ids."""
        processor = self.processor
        texts = [self.prompt_text(item) for item in items]
        images = [self._checked_paths(item) for item in items]
        if self._can_cache_images():
            from transformers.modeling_outputs import BaseModelOutputWithPooling

            batch = dict(processor(text=texts, padding=True, return_tensors="pt"))
            per_row: Sequence[str | None] = adapters or [None] * len(items)
            features = torch.cat(
                [self.image_features(p, a) for p, a in zip(images, per_row, strict=True)]
            )
            extra = {
                "mm_encoder_outputs": {"image": BaseModelOutputWithPooling(pooler_output=features)}
            }
        else:
            batch = dict(
                processor(
                    text=texts,
                    images=[[self.open_image(p) for p in paths] for paths in images],
                    padding=True,
                    return_tensors="pt",
                    **self.image_options(),
                )
            )
            extra = {}
        if suffixes is not None:
            if len(items) != 1:
                raise ValueError("suffixes are only supported for one input at a time")
            tail = torch.tensor([suffixes[0]], dtype=batch["input_ids"].dtype)
            batch["input_ids"] = torch.cat([batch["input_ids"], tail], 1)
            batch["attention_mask"] = torch.cat([batch["attention_mask"], torch.ones_like(tail)], 1)
        device = self.loaded.device
        return {key: value.to(device) for key, value in batch.items()} | extra

    @staticmethod
    def _checked_paths(item: PolicyInput) -> list[str]:
        paths = list(item.image_paths) or [None] * len(item.images)
        missing = [name for name, path in zip(item.images, paths, strict=False) if path is None]
        if missing or len(paths) != len(item.images):
            raise ValueError(f"no image file for tangram(s): {', '.join(missing)}")
        return [str(path) for path in paths]

    def open_image(self, path: str):
        """The image file on white (transparent tangrams), resized as the format says."""
        from PIL import Image

        rgb = tangram_on_white(path)
        side = self.format.image_size
        return rgb.resize((side, side), Image.Resampling.BICUBIC) if side else rgb

    def image_options(self) -> dict:
        """Image-processor options of the prompt format (its image size)."""
        options: dict = {}
        if self.format.image_size:
            side = self.format.image_size
            options["size"] = {"longest_edge": side, "shortest_edge": side}
        return options

    @staticmethod
    def _positions(mask: torch.Tensor) -> torch.Tensor:
        return (mask.cumsum(-1) - 1).clamp(min=0)

    def _step_distribution(self, logits: torch.Tensor, node: TrieNode):
        allowed = list(node.children)
        scaled = logits[allowed].float() / self.temperature
        return allowed, torch.softmax(scaled, dim=-1)

    # -- acting ---------------------------------------------------------------------------------

    def act(
        self,
        inputs: Sequence[PolicyInput],
        *,
        greedy: bool = False,
        adapters: Sequence[str] | None = None,
    ) -> list[PolicyDecision]:
        """Sample one valid action per input (``greedy``: the most probable token at each step,
        as checkpoint selection decodes), with its probability under the constrained
        distribution. ``adapters`` names each row's adapter on a shared base (``__base__``:
        none); rows of different adapters share each forward pass. With a ``prefix_cache``,
        rows whose prompt starts with a stored one run their new tokens only."""
        if not inputs:
            return []
        if self.prefix_cache is None or not self._can_cache_images():
            return self._sample(inputs, adapters, self._encode(inputs, adapters=adapters), greedy)
        return self._act_resuming(inputs, adapters, greedy)

    def _act_resuming(
        self, inputs: Sequence[PolicyInput], adapters: Sequence[str] | None, greedy: bool
    ) -> list[PolicyDecision]:
        """``act`` through the prefix cache: rows with a stored prefix in one batch, the others
        (a game's first turn) in another, every row's prompt stored for its next turn."""
        from .prefix_cache import continuation

        cache = self.prefix_cache
        rows: Sequence[str | None] = adapters or [None] * len(inputs)
        keys = [self._prefix_key(item, row) for item, row in zip(inputs, rows, strict=True)]
        texts = [self.prompt_text(item) for item in inputs]
        ids = [torch.tensor(row, dtype=torch.long) for row in self._prompt_ids().ids(keys, texts)]
        hits = [cache.lookup(key, row_ids) for key, row_ids in zip(keys, ids, strict=True)]
        decisions: list[Any] = [None] * len(inputs)
        for resumed in (False, True):
            picked = [i for i, hit in enumerate(hits) if (hit is not None) == resumed]
            if not picked:
                continue
            part = [inputs[i] for i in picked]
            part_rows = [adapters[i] for i in picked] if adapters else None
            if resumed:
                part_hits = [hits[i] for i in picked]
                suffixes = [ids[i][hit.length :] for i, hit in zip(picked, part_hits, strict=True)]
                batch = continuation(
                    part_hits,
                    suffixes,
                    self.loaded.tokenizer.pad_token_id,
                    self._base_model().config,
                    self.loaded.device,
                )
                cache.count(sum(h.length for h in part_hits), sum(len(s) for s in suffixes))
            else:
                batch = self._encode(part, adapters=part_rows)
                cache.count(0, sum(len(ids[i]) for i in picked))
            store = [(keys[i], ids[i]) for i in picked]
            for index, decision in zip(
                picked, self._sample(part, part_rows, batch, greedy, store), strict=True
            ):
                decisions[index] = decision
        return decisions

    def _prompt_ids(self):
        """The memo that tokenises only what a game's prompt adds to its last one (served
        policies, alongside the prefix cache)."""
        if not hasattr(self, "_prompt_memo"):
            from .prompt_ids import PromptIds

            processor = self.processor
            image = getattr(processor, "image_token", None)  # expanded by the processor
            self._prompt_memo = PromptIds(
                self.loaded.tokenizer,
                lambda texts: processor(text=texts)["input_ids"],
                self.stop_id,
                unexpanded=[str(image)] if image else [],
            )
        return self._prompt_memo

    def _prefix_key(self, item: PolicyInput, adapter: str | None) -> tuple:
        """What a stored prompt's keys and values depend on besides its tokens."""
        import os

        paths = self._checked_paths(item)
        return (adapter or BASE_ROW, tuple((p, os.stat(p).st_mtime_ns) for p in paths))

    def _sample(
        self,
        inputs: Sequence[PolicyInput],
        adapters: Sequence[str] | None,
        batch: dict[str, Any],
        greedy: bool,
        store: Sequence[tuple[Any, torch.Tensor]] = (),
    ) -> list[PolicyDecision]:
        """The constrained sampling loop over model inputs ``batch`` (a prefill, then one step
        per answer token); ``store``: (key, prompt ids) per row, whose keys and values after
        the prefill go to the prefix cache."""
        from .decode_room import make_room
        from .prefix_cache import compact, row_prefix

        model = self._model()
        mask = batch["attention_mask"]
        first = {"position_ids": self._positions(mask)} | batch
        nodes = [self.trie(len(item.images), item.selection) for item in inputs]
        probabilities = [1.0] * len(inputs)
        generators = [_generator(item.seed) for item in inputs]
        done = [False] * len(inputs)
        pad = self.loaded.tokenizer.pad_token_id
        with torch.inference_mode(), row_adapters(model, adapters) as extra:
            out = model(**first, use_cache=True, logits_to_keep=1, **extra)
            if store:
                mask = compact(mask, out.past_key_values)
            for row, (key, prompt_ids) in enumerate(store):
                self.prefix_cache.store(key, row_prefix(prompt_ids, out.past_key_values, row, mask))
            make_room(out.past_key_values, max(node.longest for node in nodes))
            while True:
                logits = out.logits[:, -1, :]
                next_tokens = []
                for row, node in enumerate(nodes):
                    if done[row]:
                        next_tokens.append(pad)
                        continue
                    allowed, probs = self._step_distribution(logits[row], node)
                    if len(allowed) == 1:
                        choice = 0
                    elif greedy:
                        choice = int(torch.argmax(probs))
                    else:
                        choice = int(torch.multinomial(probs.cpu(), 1, generator=generators[row]))
                    probabilities[row] *= float(probs[choice])
                    token = allowed[choice]
                    nodes[row] = node.children[token]
                    done[row] = nodes[row].action is not None
                    next_tokens.append(token)
                if all(done):
                    break
                # A finished row's step is masked out: row-wise attention skips it.
                live = torch.tensor([[not finished] for finished in done], dtype=mask.dtype)
                mask = torch.cat([mask, live.to(mask.device)], 1)
                ids = torch.tensor(next_tokens, device=mask.device)[:, None]
                out = model(
                    input_ids=ids,
                    attention_mask=mask,
                    position_ids=self._positions(mask)[:, -1:],
                    past_key_values=out.past_key_values,
                    use_cache=True,
                    **extra,
                )
        return [
            PolicyDecision(
                _action_of(node),
                probability,
                prompt_format=self.format.name,
                temperature=None if greedy else self.temperature,
                constrained=True,
            )
            for node, probability in zip(nodes, probabilities, strict=True)
        ]

    def score(self, item: PolicyInput, action: str, *, adapter: str | None = None) -> float:
        """The probability that ``act`` samples ``action`` for ``item`` (teacher forcing)."""
        root = self.trie(len(item.images), item.selection)
        tokens = self.action_tokens(action)
        adapters = [adapter] if adapter else None
        batch = self._encode([item], [tokens], adapters=adapters)
        start = batch["input_ids"].shape[1] - len(tokens)
        model = self._model()
        with torch.inference_mode(), row_adapters(model, adapters) as extra:
            logits = model(
                **batch, position_ids=self._positions(batch["attention_mask"]), **extra
            ).logits[0]
        node, probability = root, 1.0
        for offset, token in enumerate(tokens):
            if token not in node.children:
                raise ValueError(f"{action!r} is not a valid action for selection {item.selection}")
            allowed, probs = self._step_distribution(logits[start - 1 + offset], node)
            probability *= float(probs[allowed.index(token)])
            node = node.children[token]
        return probability


__all__ = ["HFPolicy"]
