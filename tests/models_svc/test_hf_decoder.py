"""The Hugging Face feedback decoder on tiny random checkpoints (loaded like real ones)."""

from __future__ import annotations

import json
import math

import pytest

from models_svc.interfaces import CheckpointError, FeedbackContext

pytestmark = pytest.mark.ml

CONTEXTS = [
    FeedbackContext("the bird", "select A", "yes, now the house", None),
    FeedbackContext(
        "no, the other bird", "deselect A select B", "great! the man with a hat", "select A"
    ),
    FeedbackContext("the man", "select C", "no", "deselect A select B"),
    FeedbackContext("a tall house with a chimney on top", "", "try again", "select C"),
    FeedbackContext("x", "select D E", "the other one please, the one on the left", None),
]


@pytest.fixture(scope="module", params=["idefics2", "causal_lm"])
def decoder(request):
    from models_svc.backends.hf_decoder import HFDecoder

    path = request.getfixturevalue(f"tiny_{request.param}")
    return HFDecoder(path, device="cpu", batch_size=2)


def brute_force_logprob(decoder, context, kind, label) -> float:
    """log P(label tokens | full prompt), one unbatched, uncached forward pass."""
    import torch

    tokenizer, model = decoder.loaded.tokenizer, decoder.loaded.model
    prompt = tokenizer(decoder.prompt_text(context, kind))["input_ids"]
    label_ids = decoder.label_ids(kind)[label]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + label_ids])).logits[0].float()
    logprobs = torch.log_softmax(logits, -1)
    return sum(float(logprobs[len(prompt) - 1 + j, t]) for j, t in enumerate(label_ids))


@pytest.mark.parametrize("kind", ["binary", "ternary"])
def test_scores_equal_the_models_label_probabilities(decoder, kind):
    results = decoder.decode(CONTEXTS, kind)
    labels = ("positive", "negative") if kind == "binary" else ("positive", "neutral", "negative")
    assert len(results) == len(CONTEXTS)
    for context, result in zip(CONTEXTS, results, strict=True):
        row = result.extra["logprobs"]
        assert set(row) == set(labels)
        for label in labels:
            assert row[label] == pytest.approx(
                brute_force_logprob(decoder, context, kind, label), abs=2e-4
            )
        best = max(labels, key=row.get)
        assert result.label == best
        assert result.score == pytest.approx(
            math.exp(row[best]) / sum(math.exp(row[label]) for label in labels), rel=1e-6
        )
        assert json.loads(result.raw_output).keys() == {label.capitalize() for label in labels}


def test_label_words_span_several_tokens_in_the_tiny_tokenizer(decoder):
    # Guards the multi-token path: the test tokenizer splits label words and shares a first token.
    ids = decoder.label_ids("ternary")
    assert all(len(tokens) > 1 for tokens in ids.values())
    assert ids["neutral"][0] == ids["negative"][0]


def test_batching_does_not_change_results(decoder):
    together = decoder.decode(CONTEXTS, "ternary")
    alone = [decoder.decode([context], "ternary")[0] for context in CONTEXTS]
    for a, b in zip(together, alone, strict=True):
        assert a.label == b.label
        for label, value in a.extra["logprobs"].items():
            assert value == pytest.approx(b.extra["logprobs"][label], abs=1e-4)


def test_generate_mode_records_unparseable_answers(tiny_causal_lm):
    from models_svc.backends.hf_decoder import HFDecoder

    decoder = HFDecoder(tiny_causal_lm, device="cpu", mode="generate")
    results = decoder.decode(CONTEXTS[:3], "binary")
    # A random tiny model writes no label word: each answer is kept verbatim and marked.
    assert [r.label for r in results] == ["unparseable"] * 3
    assert all(r.raw_output and r.score is None for r in results)
    assert decoder.version.endswith("-generate")


def test_missing_and_incompatible_checkpoints_are_clear(tmp_path, tiny_hf_clip):
    from models_svc.backends.hf_decoder import HFDecoder

    with pytest.raises(CheckpointError, match="does not exist"):
        HFDecoder(str(tmp_path / "nope"))
    with pytest.raises(CheckpointError, match="no config.json"):
        HFDecoder(str(tmp_path))
    with pytest.raises(CheckpointError, match="'clip' model, neither a causal LM"):
        HFDecoder(tiny_hf_clip)


@pytest.mark.django_db
def test_decode_feedback_command_with_a_checkpoint(tiny_idefics2, settings):
    from django.core.management import call_command

    from games.models import FeedbackLabel
    from models_svc.checkpoints import fingerprint
    from tests.factories import make_game, make_study, make_system

    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu"}
    study = make_study("hf-study")
    make_game(make_system(study), [["page9-9"], ["page9-8"], []], ["a", "no", "yes"])
    spec = f"hf:{tiny_idefics2}"
    call_command("decode_feedback", "--study", "hf-study", "--decoder", spec, "--kind", "ternary")
    call_command("decode_feedback", "--study", "hf-study", "--decoder", spec, "--kind", "ternary")
    labels = list(FeedbackLabel.objects.order_by("turn__index"))
    assert [label.turn.index for label in labels] == [0, 1]
    assert {(label.decoder, label.model_version) for label in labels} == {
        (spec, f"{fingerprint(tiny_idefics2)}-p1-score")
    }
    assert all(label.label in ("positive", "neutral", "negative") for label in labels)
    assert all(0 < label.score <= 1 for label in labels)
