"""CLIP embeddings (Hugging Face and open_clip layouts), the similarity matrix they feed, and
the zero-shot CLIP listener."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from games.actions import is_valid_for, parse_action
from games.models import Tangram
from models_svc.interfaces import CheckpointError, PastTurn, PolicyInput
from models_svc.models import EmbeddingSet
from models_svc.selectors import similarity_matrix

from .conftest import NAMES

pytestmark = pytest.mark.ml


def reference_image_embeddings(flavour: str, path: str, images: list[str]) -> np.ndarray:
    """Embeddings computed straight from the library, without models_svc."""
    import torch
    from PIL import Image

    pictures = [Image.open(p).convert("RGB") for p in images]
    with torch.no_grad():
        if flavour == "hf":
            from transformers import CLIPModel, CLIPProcessor

            model, processor = CLIPModel.from_pretrained(path), CLIPProcessor.from_pretrained(path)
            out = model.get_image_features(**processor(images=pictures, return_tensors="pt"))
            features = out if isinstance(out, torch.Tensor) else out.pooler_output
        else:
            import open_clip

            model, preprocess = open_clip.create_model_from_pretrained(f"local-dir:{path}")
            features = model.encode_image(torch.stack([preprocess(p) for p in pictures]))
    features = features.numpy().astype(np.float64)
    return features / np.linalg.norm(features, axis=1, keepdims=True)


@pytest.mark.parametrize("flavour", ["hf", "open_clip"])
@pytest.mark.django_db
def test_embed_tangrams_feeds_the_similarity_matrix(flavour, request, tangram_images, settings):
    path = request.getfixturevalue("tiny_hf_clip" if flavour == "hf" else "tiny_open_clip")
    settings.TANGRAM_DIR = str(tangram_images[0].rsplit("/", 1)[0])
    for name in NAMES:
        Tangram.objects.create(name=name, split="train")
    call_command("embed_tangrams", "--embedder", f"clip:{path}")
    embedding_set = EmbeddingSet.objects.get()
    assert embedding_set.names == sorted(NAMES) and embedding_set.embedder == f"clip:{path}"
    order = ["page9-3", "page9-0", "page9-7"]
    reference = reference_image_embeddings(
        flavour, path, [tangram_images[NAMES.index(n)] for n in order]
    )
    expected = reference @ reference.T
    np.fill_diagonal(expected, 1.0)
    np.testing.assert_allclose(similarity_matrix(order), expected, atol=1e-5)
    # Re-running replaces nothing new: same version, same set.
    call_command("embed_tangrams", "--embedder", f"clip:{path}", "page9-0")
    assert EmbeddingSet.objects.count() == 1


@pytest.mark.django_db
def test_embed_errors_are_clear(tmp_path, tiny_causal_lm):
    Tangram.objects.create(name="page9-0")
    with pytest.raises(CommandError, match="does not exist"):
        call_command("embed_tangrams", "--embedder", f"clip:{tmp_path / 'none'}")
    with pytest.raises(CommandError, match="no image file"):
        call_command("embed_tangrams", "--embedder", f"clip:{tiny_causal_lm}", "page9-0")
    with pytest.raises(CommandError, match="unknown tangram"):
        call_command("embed_tangrams", "--embedder", f"clip:{tiny_causal_lm}", "page0-0")


def test_clip_rejects_other_models(tiny_causal_lm):
    from models_svc.backends.clip import ClipModel

    with pytest.raises(CheckpointError, match="expected a CLIP checkpoint"):
        ClipModel(tiny_causal_lm, device="cpu")


@pytest.fixture(scope="module")
def listener(tiny_hf_clip):
    from models_svc.backends.clip import ClipListener, ClipModel

    return ClipListener(ClipModel(tiny_hf_clip, device="cpu"))


def item(images, utterance, selection=(), history=(), seed="s"):
    return PolicyInput(
        tuple(NAMES), tuple(selection), utterance, tuple(history), tuple(images), seed
    )


def test_clip_listener_selects_by_similarity_with_exact_probability(listener, tangram_images):
    import torch

    state = item(tangram_images, "a bird with wings", selection=("A", "C"))
    decision = listener.act([state])[0]
    action = parse_action(decision.action, 10)
    assert not action.deselect and len(action.select) == 1
    assert is_valid_for(action, state.selection, 10)
    clip = listener.clip
    sims = clip.image_embeddings(tangram_images) @ clip.text_embeddings([state.utterance])[0]
    candidates = [i for i in range(10) if "ABCDEFGHIJ"[i] not in state.selection]
    probs = torch.softmax(sims[candidates].double() * clip.logit_scale, 0)
    chosen = candidates.index("ABCDEFGHIJ".index(next(iter(action.select))))
    assert decision.probability == pytest.approx(float(probs[chosen]), rel=1e-6)


def test_clip_listener_corrections(listener, tangram_images):
    history = [PastTurn((), "the bird", "select B")]
    retry = listener.act([item(tangram_images, "no, try again", ("B", "E"), history)])[0]
    action = parse_action(retry.action, 10)
    assert action.deselect == {"B"} and len(action.select) == 1 and "B" not in action.select
    only = listener.act([item(tangram_images, "deselect that one", ("B", "E"), history)])[0]
    assert (only.action, only.probability) == ("deselect B", 1.0)
    full = listener.act([item(tangram_images, "the bird", tuple("ABCDEFGHIJ"))])[0]
    assert full.action.startswith("deselect ") and full.probability == 1.0
