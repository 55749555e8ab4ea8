"""CLIP in a worker: tangram embeddings and the zero-shot CLIP listener (imports torch).

``load_clip`` accepts a Hugging Face CLIP directory (``config.json`` of model_type ``clip``) or
an open_clip directory (``open_clip_config.json`` and its weights file), e.g. the
tangram-fine-tuned CLIP of the KILOGRAM authors converted to either layout.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence

import torch

from games.actions import Action, context_letters, format_action

from ..checkpoints import fingerprint, inspect_checkpoint
from ..interfaces import CheckpointError, PolicyDecision, PolicyInput
from .hf_common import resolve_device
from .images import tangram_on_white


class ClipModel:
    """Normalised image and text embeddings from either CLIP flavour."""

    def __init__(self, path: str, *, device: str = "auto") -> None:
        info = inspect_checkpoint(path, "CLIP model")
        self.path = path
        self.version = fingerprint(path)
        self.device = resolve_device(device)
        self._lock = threading.Lock()
        self._image_cache: dict[str, torch.Tensor] = {}
        if info.is_open_clip:
            self._load_open_clip(path)
        elif info.model_type == "clip":
            self._load_hf(path)
        else:
            raise CheckpointError(
                f"CLIP model: {path} holds a {info.model_type!r} model; expected a CLIP checkpoint "
                "(Hugging Face model_type 'clip', or an open_clip directory)"
            )

    def _load_hf(self, path: str) -> None:
        from transformers import CLIPModel, CLIPProcessor

        try:
            # PreTrainedModel.to is functools.wraps(nn.Module.to); mypy does not bind it as a method
            self.model = CLIPModel.from_pretrained(path).to(self.device).eval()  # type: ignore[arg-type]
            self.processor = CLIPProcessor.from_pretrained(path)
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointError(f"CLIP model: cannot load {path}: {exc}") from exc
        self.flavour = "hf"
        self.logit_scale = float(self.model.logit_scale.detach().exp())

    def _load_open_clip(self, path: str) -> None:
        import open_clip

        try:
            model, preprocess = open_clip.create_model_from_pretrained(
                f"local-dir:{path}", device=self.device
            )
            self.tokenizer = open_clip.get_tokenizer(f"local-dir:{path}")
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise CheckpointError(f"CLIP model: cannot load open_clip {path}: {exc}") from exc
        self.model, self.preprocess = model.eval(), preprocess
        self.flavour = "open_clip"
        self.logit_scale = float(model.logit_scale.detach().exp())

    def _features(self, output) -> torch.Tensor:
        """Projected embeddings whether a model returns a tensor or a pooled-output object."""
        if isinstance(output, torch.Tensor):
            return output
        return output.pooler_output

    def image_embeddings(self, paths: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """(n, d) L2-normalised image embeddings, cached per file path in this process."""
        missing = [p for p in dict.fromkeys(paths) if p not in self._image_cache]
        with self._lock, torch.inference_mode():
            for start in range(0, len(missing), batch_size):
                chunk = missing[start : start + batch_size]
                images = [tangram_on_white(p) for p in chunk]
                if self.flavour == "hf":
                    pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
                    features = self._features(
                        self.model.get_image_features(pixel_values=pixels.to(self.device))
                    )
                else:
                    pixels = torch.stack([self.preprocess(image) for image in images])
                    features = self.model.encode_image(pixels.to(self.device))
                features = torch.nn.functional.normalize(features.float(), dim=-1).cpu()
                for path, row in zip(chunk, features, strict=True):
                    self._image_cache[path] = row
        return torch.stack([self._image_cache[p] for p in paths])

    def text_embeddings(self, texts: Sequence[str]) -> torch.Tensor:
        with self._lock, torch.inference_mode():
            if self.flavour == "hf":
                tokens = self.processor.tokenizer(
                    list(texts), padding=True, truncation=True, max_length=77, return_tensors="pt"
                )
                features = self._features(self.model.get_text_features(**tokens.to(self.device)))
            else:
                features = self.model.encode_text(self.tokenizer(list(texts)).to(self.device))
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu()


_models: dict[tuple[str, str], ClipModel] = {}
_models_lock = threading.Lock()


def load_clip(path: str, *, device: str = "auto") -> ClipModel:
    """One ClipModel per path and device in this process (embedder and listener share it)."""
    with _models_lock:
        key = (path, device)
        if key not in _models:
            _models[key] = ClipModel(path, device=device)
        return _models[key]


class ClipEmbedder:
    def __init__(self, clip: ClipModel) -> None:
        self.clip = clip
        self.name = f"clip:{clip.path}"
        self.version = clip.version

    def embed(self, image_paths: Sequence[str]) -> list[list[float]]:
        return self.clip.image_embeddings(list(image_paths)).tolist()


CORRECTION = re.compile(
    r"\b(?:no|nope|not|wrong|incorrect|undo|deselect|unselect|un-select|remove|uncheck|"
    r"take (?:it|that|this) (?:off|away)|try again|the other one|instead|oops)\b",
    re.IGNORECASE,
)
DESELECT_ONLY = re.compile(
    r"^\W*(?:please\s+)?(?:deselect|unselect|un-select|remove|undo|uncheck)\b(?!.*\b(?:and|then|select|pick|choose)\b)",
    re.IGNORECASE,
)


class ClipListener:
    """Zero-shot CLIP listener.

    Explicit correction cues (no, wrong, undo, deselect, try again, the other one, ...) with a
    non-empty selection deselect the images the previous turn selected that are still selected
    (else the selected image most similar to the utterance); an utterance that only asks to
    deselect stops there. Otherwise one unselected image is selected (never one just
    deselected), sampled from the softmax of CLIP's scaled image-text similarities at the
    policy temperature; the probability returned is that softmax's value (deselection is
    deterministic). With everything selected it deselects the least similar image.
    """

    def __init__(self, clip: ClipModel, temperature: float = 1.0) -> None:
        self.clip = clip
        self.name = f"clip:{clip.path}"
        self.version = clip.version
        self.temperature = temperature

    def act(self, inputs: Sequence[PolicyInput]) -> list[PolicyDecision]:
        if not inputs:
            return []
        texts = self.clip.text_embeddings([item.utterance or " " for item in inputs])
        decisions = []
        for item, text in zip(inputs, texts, strict=True):
            paths = [p for p in item.image_paths if p is not None]
            if len(paths) != len(item.image_paths) or len(paths) != len(item.images):
                raise ValueError("the CLIP listener needs an image file for every tangram")
            images = self.clip.image_embeddings(paths)
            similarities = images @ text
            decisions.append(self._decide(item, similarities))
        return decisions

    def _decide(self, item: PolicyInput, similarities: torch.Tensor) -> PolicyDecision:
        letters = context_letters(len(item.images))
        selected = set(item.selection)
        deselect: set[str] = set()
        if selected and CORRECTION.search(item.utterance):
            if item.history:
                last = item.history[-1].action
                words = last.split(" select ")[-1].split() if "select" in last else []
                deselect = {w for w in words if w in letters and w in selected}
            if not deselect:
                ranked = sorted(
                    selected, key=lambda letter: -float(similarities[letters.index(letter)])
                )
                deselect = {ranked[0]}
            if DESELECT_ONLY.search(item.utterance):
                action = Action(deselect=frozenset(deselect))
                return PolicyDecision(format_action(action), 1.0)
        candidates = [i for i, letter in enumerate(letters) if letter not in selected]
        if not candidates:
            worst = min(range(len(letters)), key=lambda i: float(similarities[i]))
            return PolicyDecision(format_action(Action(deselect=frozenset({letters[worst]}))), 1.0)
        logits = similarities[candidates] * self.clip.logit_scale / self.temperature
        probs = torch.softmax(logits.double(), dim=0)
        generator = torch.Generator().manual_seed(
            int.from_bytes(hashlib.sha256(item.seed.encode()).digest()[:8], "little")
        )
        choice = int(torch.multinomial(probs.float(), 1, generator=generator))
        action = Action(
            deselect=frozenset(deselect), select=frozenset({letters[candidates[choice]]})
        )
        return PolicyDecision(format_action(action), float(probs[choice]))
