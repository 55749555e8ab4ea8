"""The transformers listener policy: constrained sampling, exact probabilities, LoRA adapters."""

from __future__ import annotations

import pytest

from games.actions import is_valid_for, parse_action
from models_svc.action_space import valid_actions
from models_svc.interfaces import CheckpointError, PastTurn, PolicyInput

from .conftest import NAMES

pytestmark = pytest.mark.ml

SELECTIONS = [(), ("B", "C"), ("A", "D", "J"), tuple("ABCDEFGHIJ")]


@pytest.fixture(scope="module")
def policy(tiny_idefics2):
    from models_svc.backends.hf_policy import HFPolicy

    return HFPolicy(tiny_idefics2, device="cpu")


def inputs(images, count, size=10):
    history = (
        PastTurn((), "the bird", "select B"),
        PastTurn(("B",), "no the other one", "deselect B select C"),
    )
    return [
        PolicyInput(
            images=tuple(NAMES[:size]),
            selection=SELECTIONS[i % len(SELECTIONS)] if size == 10 else (("A",) if i % 2 else ()),
            utterance=f"the man with a hat {i}",
            history=history[: i % 3],
            image_paths=tuple(images[:size]),
            seed=f"seed-{i}",
        )
        for i in range(count)
    ]


def test_respect_2024_prompt_is_the_released_checkpoints_layout(policy, tangram_images):
    item = inputs(tangram_images, 3)[2]
    images = "".join(f"<image>{letter}" for letter in "ABCDEFGHIJ")
    assert policy.prompt_text(item) == (
        f"System:{images}<end_of_utterance>\n"
        "System: none is selected<end_of_utterance>\n"
        "User: the bird<end_of_utterance>\n"
        "Assistant: select B<end_of_utterance>\n"
        "System: B currently selected<end_of_utterance>\n"
        "User: no the other one<end_of_utterance>\n"
        "Assistant: deselect B select C<end_of_utterance>\n"
        "System: A D J currently selected<end_of_utterance>\n"
        "User: the man with a hat 2<end_of_utterance>\n"
        "Assistant:"
    )
    assert policy.format.action_text("") == "nothing"
    assert policy.open_image(tangram_images[0]).size == (224, 224)
    assert policy.act([item])[0].prompt_format == "respect-2024"


def test_platform_p1_prompt_letters_images_in_listener_order(tiny_idefics2, tangram_images):
    from models_svc.backends.hf_policy import HFPolicy

    policy = HFPolicy(tiny_idefics2, device="cpu", prompt_format="platform-p1")
    text = policy.prompt_text(inputs(tangram_images, 3)[2])
    assert text.startswith("System: A <image>B <image>C <image>")
    assert "System: none is selected<end_of_utterance>\nUser: the bird<end_of_utterance>\n" in text
    assert "Assistant: Select B<end_of_utterance>\nSystem: B currently selected" in text
    assert (
        "Assistant: Deselect B select C<end_of_utterance>\nSystem: A D J currently selected" in text
    )
    assert text.endswith("User: the man with a hat 2<end_of_utterance>\nAssistant:")


def test_every_sampled_action_is_valid_and_its_probability_is_the_models(policy, tangram_images):
    items = inputs(tangram_images, 8)
    decisions = policy.act(items)
    assert len(decisions) == len(items)
    for item, decision in zip(items, decisions, strict=True):
        assert is_valid_for(parse_action(decision.action, 10), item.selection, 10)
        assert 0 < decision.probability <= 1
        assert decision.probability == pytest.approx(policy.score(item, decision.action), rel=1e-4)


def test_constrained_distribution_sums_to_one_over_valid_actions(policy, tangram_images):
    for item in inputs(tangram_images, 2, size=3):
        actions = list(valid_actions(item.selection, 3))
        assert len(actions) == 7
        total = sum(policy.score(item, action) for action in actions)
        assert total == pytest.approx(1.0, abs=1e-5)
        with pytest.raises(ValueError, match="not a valid action"):
            policy.score(item, "select A" if "A" in item.selection else "deselect A")


def test_sampling_is_seeded_and_batch_independent(policy, tangram_images):
    items = inputs(tangram_images, 4)
    together = policy.act(items)
    alone = [policy.act([item])[0] for item in items]
    assert [d.action for d in together] == [d.action for d in alone]
    for a, b in zip(together, alone, strict=True):
        assert a.probability == pytest.approx(b.probability, rel=1e-4)


def test_lora_adapter_changes_the_policy(tiny_idefics2, tiny_lora, policy, tangram_images):
    from models_svc.backends.hf_policy import HFPolicy

    adapted = HFPolicy(tiny_idefics2, adapter=tiny_lora, device="cpu")
    assert adapted.name == f"hf:{tiny_idefics2}+lora:{tiny_lora}"
    item = inputs(tangram_images, 1)[0]
    decision = adapted.act([item])[0]
    assert decision.probability == pytest.approx(adapted.score(item, decision.action), rel=1e-4)
    assert adapted.score(item, decision.action) != pytest.approx(
        policy.score(item, decision.action), rel=1e-3
    )


def test_adapter_with_the_released_target_modules_loads_and_changes_outputs(
    tiny_idefics2, policy, tangram_images, tmp_path
):
    """The released adapters target the text model, the modality projection and the perceiver
    resampler (q/k/v/o and gate/up/down projections): that pattern must match the current
    transformers IDEFICS2 classes, and an adapter saved with it must load and act."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from models_svc.backends.hf_policy import HFPolicy
    from models_svc.training.config import LORA_TARGETS

    torch.manual_seed(3)
    model = get_peft_model(
        AutoModelForImageTextToText.from_pretrained(tiny_idefics2),
        LoraConfig(r=8, lora_alpha=8, lora_dropout=0.1, target_modules=LORA_TARGETS),
    )
    adapted_modules = {
        name.split(".lora_A")[0] for name, _ in model.named_parameters() if ".lora_A" in name
    }
    for part in ("text_model", "modality_projection", "perceiver_resampler"):
        assert any(part in name for name in adapted_modules), part
    projections = {name.rsplit(".", 1)[-1] for name in adapted_modules}
    assert projections == {
        "q_proj",
        "k_proj",
        "v_proj",
        "o_proj",
        "gate_proj",
        "up_proj",
        "down_proj",
    }
    assert not any("vision_model" in name for name in adapted_modules)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.5)
    model.save_pretrained(tmp_path / "released-layout")
    adapted = HFPolicy(tiny_idefics2, adapter=str(tmp_path / "released-layout"), device="cpu")
    item = inputs(tangram_images, 1)[0]
    assert adapted.score(item, "select C") != pytest.approx(
        policy.score(item, "select C"), rel=1e-3
    )


def test_bad_checkpoints_are_clear_errors(tmp_path, tiny_causal_lm, tiny_idefics2):
    from models_svc.backends.hf_policy import HFPolicy

    with pytest.raises(CheckpointError, match="does not exist"):
        HFPolicy(str(tmp_path / "missing"))
    with pytest.raises(CheckpointError, match="reads no images"):
        HFPolicy(tiny_causal_lm)
    with pytest.raises(CheckpointError, match="not a PEFT adapter"):
        HFPolicy(tiny_idefics2, adapter=tiny_causal_lm)


def test_missing_image_file_is_named(policy):
    item = PolicyInput(images=tuple(NAMES), selection=(), utterance="x", image_paths=(None,) * 10)
    with pytest.raises(ValueError, match="no image file for tangram"):
        policy.act([item])


def test_cached_image_features_match_the_processor_path(policy, tangram_images):
    from models_svc.backends.hf_policy import HFPolicy

    assert policy._can_cache_images()
    plain = HFPolicy.from_loaded(policy.loaded, policy.name, "x")
    plain._cache_images = False
    for item in inputs(tangram_images, 3):
        decision = policy.act([item])[0]
        assert plain.act([item])[0].action == decision.action
        assert plain.score(item, decision.action) == pytest.approx(decision.probability, rel=1e-4)


def test_a_format_sets_image_splitting_on_its_own_processor_copy(tiny_idefics2):
    from models_svc.backends.hf_common import load_model
    from models_svc.backends.hf_policy import HFPolicy

    loaded = load_model(tiny_idefics2, what="test", device="cpu", need_images=True)
    loaded.processor.image_processor.do_image_splitting = True  # as IDEFICS2-8B ships
    released = HFPolicy.from_loaded(loaded, "x", "x", prompt_format="respect-2024")
    platform = HFPolicy.from_loaded(loaded, "x", "x", prompt_format="platform-p1")
    assert released.loaded.processor.image_processor.do_image_splitting is False
    assert platform.loaded.processor.image_processor.do_image_splitting is True
    assert loaded.processor.image_processor.do_image_splitting is True
    assert released.loaded.model is loaded.model


@pytest.mark.parametrize("name", ["respect-2024", "platform-p1"])
def test_prompts_render_as_the_processors_chat_template_call(tiny_idefics2, tangram_images, name):
    """``chat_text`` renders the compiled template directly (the full call copies and
    normalises the conversation, milliseconds per turn): the same text for every format."""
    from models_svc.backends.hf_policy import HFPolicy
    from models_svc.prompt_formats import get_format

    policy = HFPolicy(tiny_idefics2, device="cpu", prompt_format=name)
    processor = policy.loaded.processor
    for item in inputs(tangram_images, 6):
        messages = get_format(name).policy_messages(item)
        expected = processor.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=False
        )
        assert policy.prompt_text(item) == expected
    assert processor._respect_direct_chat is True


def test_a_template_that_renders_otherwise_keeps_the_full_call():
    from models_svc.backends.hf_common import chat_text

    class Owner:
        chat_template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
        special_tokens_map: dict = {}
        calls = 0

        def apply_chat_template(self, messages, **options):
            self.calls += 1
            return "rendered by the full call"

    owner = Owner()
    messages = [{"role": "user", "content": "hello"}]
    assert chat_text(None, owner, messages) == "rendered by the full call"
    assert owner._respect_direct_chat is False
    assert chat_text(None, owner, messages) == "rendered by the full call"
    assert owner.calls == 2
