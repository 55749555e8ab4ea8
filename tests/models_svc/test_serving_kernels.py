"""The two pieces that make batched serving cheap: row-wise attention for left-padded prefills
(``row_sdpa``) and two-matmul mixed-adapter LoRA (``mixed_rows``). Each must give what the
library's own path gives (transformers' ``sdpa`` with a padding mask; peft's
``adapter_names=``), row by row."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ml


def _texts():
    return ["a b c d e f g h i j k l m n o p", "hello there", "the bird with one wing up"]


def _text_batch(tokenizer):
    tokenizer.padding_side = "left"
    return tokenizer(_texts(), padding=True, return_tensors="pt")


def _last_logits(model, batch, **extra):
    import torch

    mask = batch["attention_mask"]
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        return model(**batch, position_ids=positions, **extra).logits[:, -1, :]


def test_models_load_with_row_attention_on_the_text_decoder(tiny_idefics2):
    from models_svc.backends.hf_common import load_model

    loaded = load_model(tiny_idefics2, what="listener policy", device="cpu", need_images=True)
    config = loaded.model.config
    assert config.text_config._attn_implementation == "row_sdpa"
    assert config.vision_config._attn_implementation == "sdpa"


def test_row_attention_mask_is_the_padding_mask_only_for_a_fresh_left_padded_prefill():
    import torch
    from transformers.masking_utils import causal_mask_function

    from models_svc.backends.row_attention import row_sdpa_mask

    left = torch.tensor([[False, True, True], [True, True, True]])
    hole = torch.tensor([[True, False, True], [True, True, True]])

    def mask(attention_mask, q_length=3, **extra):
        options = {"mask_function": causal_mask_function, "local_size": None} | extra
        return row_sdpa_mask(2, q_length, 3, attention_mask=attention_mask, **options)

    with torch.no_grad():
        assert mask(left) is left
        # a hole in the middle, a cache behind the queries, one query, a sliding window that
        # reaches the first token: transformers' sdpa mask
        made = mask(hole)
        assert made.shape == (2, 1, 3, 3) and not bool(made[0, 0, 2, 1])
        assert mask(left, q_offset=2) is not left
        assert mask(left, q_length=1).shape == (2, 1, 1, 3)
        assert mask(left, local_size=2).shape == (2, 1, 3, 3)
    with torch.enable_grad():  # training: transformers' mask, whatever the padding
        assert mask(left).shape == (2, 1, 3, 3)


def test_a_decoding_step_attends_for_unfinished_rows_only():
    """A finished answer's step token is masked out (``HFPolicy._sample``): its row gets no
    attention call and zeros, the others exactly what they get alone."""
    import torch

    from models_svc.backends.row_attention import _plan, _resumed_rows

    class Attention(torch.nn.Module):
        num_key_value_groups = 2

    torch.manual_seed(0)
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 0], [1, 1, 1, 1]])
    query = torch.randn(3, 4, 1, 8)
    key, value = torch.randn(3, 2, 4, 8), torch.randn(3, 2, 4, 8)
    assert [part.row for part in _plan(mask, 1, torch.float32)] == [0, 2]
    out = _resumed_rows(Attention(), query, key, value, mask, scaling=0.3)
    assert torch.equal(out[1], torch.zeros_like(out[1]))
    alone = torch.nn.functional.scaled_dot_product_attention(
        query[2:], key[2:], value[2:], scale=0.3, enable_gqa=True
    )
    assert torch.equal(out[2], alone.transpose(1, 2)[0])
    short = torch.nn.functional.scaled_dot_product_attention(
        query[:1], key[:1, :, 1:], value[:1, :, 1:], scale=0.3, enable_gqa=True
    )
    assert torch.equal(out[0], short.transpose(1, 2)[0])


def test_a_padded_batch_with_row_attention_equals_sdpa_and_each_row_alone(tiny_idefics2):
    import torch
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    from models_svc.backends.row_attention import use_row_attention

    tokenizer = AutoTokenizer.from_pretrained(tiny_idefics2)
    reference = AutoModelForImageTextToText.from_pretrained(tiny_idefics2, dtype=torch.float32)
    rows = AutoModelForImageTextToText.from_pretrained(tiny_idefics2, dtype=torch.float32)
    use_row_attention(rows)
    assert reference.config.text_config._attn_implementation == "sdpa"
    batch = _text_batch(tokenizer)
    assert not bool(batch["attention_mask"].all())  # the batch is padded
    ours = _last_logits(rows, batch)
    theirs = _last_logits(reference, batch)
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=0)
    for index, text in enumerate(_texts()):
        alone = _last_logits(reference, tokenizer([text], return_tensors="pt"))[0]
        assert torch.allclose(ours[index], alone, atol=1e-5, rtol=0)


def _peft_with_two_adapters(tiny_idefics2, tiny_lora, second_lora):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    base = AutoModelForImageTextToText.from_pretrained(tiny_idefics2, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, tiny_lora, adapter_name="one")
    model.load_adapter(second_lora, adapter_name="two")
    return model.eval()


def test_mixed_rows_equal_peft_adapter_names_row_by_row(tiny_idefics2, tiny_lora, second_lora):
    import torch
    from transformers import AutoTokenizer

    from models_svc.backends.mixed_lora import mixed_rows, row_adapters

    model = _peft_with_two_adapters(tiny_idefics2, tiny_lora, second_lora)
    batch = _text_batch(AutoTokenizer.from_pretrained(tiny_idefics2))
    names = ["two", "__base__", "one"]  # ranks 8 and 4: the stack pads with zeros
    theirs = _last_logits(model, batch, adapter_names=names)
    with mixed_rows(model, names) as fast:
        assert fast
        ours = _last_logits(model, batch)
    assert torch.allclose(ours, theirs, atol=1e-5, rtol=0)
    with model.disable_adapter():
        plain = _last_logits(model, batch)
    assert torch.equal(ours[1], plain[1])  # a base row is the base model's, exactly
    assert not torch.allclose(ours[0], plain[0], atol=1e-3)  # and the adapters do something
    with row_adapters(model, names) as extra:
        assert extra == {}
    # the layers are back to what they were: peft's own path still answers as before
    assert torch.allclose(_last_logits(model, batch, adapter_names=names), theirs, atol=0, rtol=0)


def test_mixed_rows_refuse_unknown_adapters_and_step_aside_for_lora_variants(
    tiny_idefics2, tiny_lora, second_lora
):
    from models_svc.backends.mixed_lora import mixed_rows, row_adapters

    model = _peft_with_two_adapters(tiny_idefics2, tiny_lora, second_lora)
    with (
        pytest.raises(ValueError, match="no adapter named three"),
        row_adapters(model, ["one", "three"]),
    ):
        pass
    layer = next(m for m in model.modules() if hasattr(m, "lora_variant"))
    layer.lora_variant["one"] = object()  # as DoRA registers itself
    with mixed_rows(model, ["one"]) as fast:
        assert not fast
    with row_adapters(model, ["one"]) as extra:
        assert extra == {"adapter_names": ["one"]}
    with mixed_rows(model, ["two"]) as fast:
        assert fast


@pytest.mark.parametrize("sliding", [False, True])
def test_decoding_into_room_keeps_what_concatenating_keeps(sliding):
    """``make_room``'s layers hold and return the very keys and values the library's dynamic
    layers do, step by step, and a step past the room (or a window about to be reached) falls
    back to the library's update."""
    import torch
    from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer

    from models_svc.backends.decode_room import RoomyLayer, RoomySlidingLayer, make_room

    class Cache:  # what make_room reads of a DynamicCache
        def __init__(self, layers):
            self.layers = layers

    def layer():
        return DynamicSlidingWindowLayer(sliding_window=12) if sliding else DynamicLayer()

    torch.manual_seed(0)
    prompt = torch.randn(3, 2, 5, 4), torch.randn(3, 2, 5, 4)
    theirs, ours = layer(), layer()
    theirs.update(*prompt)
    ours.update(*prompt)
    cache = Cache([ours])
    make_room(cache, 2)
    ours = cache.layers[0]
    assert type(ours) is (RoomySlidingLayer if sliding else RoomyLayer)
    for step in range(4):  # two steps into the room, then two past it
        new = torch.randn(3, 2, 1, 4), torch.randn(3, 2, 1, 4)
        expected, got = theirs.update(*new), ours.update(*new)
        assert all(torch.equal(e, g) for e, g in zip(expected, got, strict=True))
        assert ours.get_seq_length() == theirs.get_seq_length() == 6 + step
        assert ours.get_mask_sizes(1) == theirs.get_mask_sizes(1)
    near_window = Cache([layer()])
    near_window.layers[0].update(torch.randn(1, 1, 9, 4), torch.randn(1, 1, 9, 4))
    make_room(near_window, 3)
    assert type(near_window.layers[0]) is (RoomyLayer if not sliding else DynamicSlidingWindowLayer)
