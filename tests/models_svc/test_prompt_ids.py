"""Tokenising only what a game's prompt adds: the same ids as tokenising the whole prompt.

The tokenizers are built with the ``tokenizers`` library in the three layouts chat checkpoints
use (byte-level BPE as GPT-2 and the tiny test model; a Metaspace pre-tokenizer that prepends
"▁" to the text's first piece only, as newer Llama and Mistral files; a normaliser that
prepends "▁" and replaces spaces, as IDEFICS2's Mistral tokenizer), each with a
begin-of-sequence token added in front; every prompt's ids are compared with the tokenizer's
own ids for the whole text.
"""

from __future__ import annotations

import logging
import random

import pytest

pytestmark = pytest.mark.ml

BOUNDARY = "<end_of_utterance>"
WORDS = ["the", "bird", " man", "hat", "läuft", "über", "dog's", "  two", "A", "B", "\n", "é"]


def tokenizer(layout: str, *, append_end: bool = False):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from tokenizers.trainers import BpeTrainer
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=layout != "byte-level"))
    if layout == "byte-level":
        core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        core.decoder = decoders.ByteLevel()
    elif layout == "metaspace-first":
        core.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    else:  # the normaliser layout of IDEFICS2's tokenizer
        core.normalizer = normalizers.Sequence(
            [normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")]
        )
    specials = ["<unk>", "<s>", "</s>", BOUNDARY, "<image>"]
    alphabet = pre_tokenizers.ByteLevel.alphabet() if layout == "byte-level" else []
    trainer = BpeTrainer(vocab_size=400, special_tokens=specials, initial_alphabet=alphabet)
    rng = random.Random(0)
    corpus = [" ".join(rng.choice(WORDS) for _ in range(12)) for _ in range(300)]
    core.train_from_iterator(["User: Assistant: System: select deselect", *corpus], trainer)
    single = "<s> $A </s>" if append_end else "<s> $A"
    core.post_processor = processors.TemplateProcessing(
        single=single, special_tokens=[("<s>", 1), ("</s>", 2)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        additional_special_tokens=[BOUNDARY, "<image>"],
    )


def prompts(seed: int, turns: int) -> list[str]:
    """A game's prompts, each the one before plus an exchange (ragged spacing and all)."""
    rng = random.Random(seed)

    def said() -> str:
        return "".join(rng.choice(WORDS) + rng.choice([" ", "", "  "]) for _ in range(6))

    text = "System:<image>A<image>B" + BOUNDARY + "\nUser: " + said() + BOUNDARY + "\nAssistant:"
    result = [text]
    for _ in range(turns):
        text += f" select {rng.choice('AB')}{BOUNDARY}\n System: {said()}{BOUNDARY}"
        text += f"\nUser:{said()}{BOUNDARY}\nAssistant:"
        result.append(text)
    return result


def memo(tok, **options):
    from models_svc.backends.prompt_ids import PromptIds

    whole = lambda texts: tok(texts)["input_ids"]  # noqa: E731
    return PromptIds(tok, whole, tok.convert_tokens_to_ids(BOUNDARY), **options)


@pytest.mark.parametrize("layout", ["byte-level", "metaspace-first", "prepend-normaliser"])
def test_a_prompt_tokenised_from_its_games_last_one_has_the_whole_prompts_ids(layout):
    tok = tokenizer(layout)
    ids = memo(tok, unexpanded=["<image>"])
    games = [prompts(seed, 6) for seed in range(5)]
    for turn in range(7):
        texts = [game[turn] for game in games]
        assert ids.ids(list(range(5)), texts) == tok(texts)["input_ids"]
    assert ids.enabled
    assert ids.resumed == 6 * 5  # every turn after a game's first


def test_a_tokenizer_that_disagrees_has_the_memo_switched_off(caplog):
    tok = tokenizer("byte-level", append_end=True)  # ends every text with </s>
    ids = memo(tok)
    game = prompts(3, 3)
    with caplog.at_level(logging.WARNING, logger="models_svc.backends.prompt_ids"):
        for text in game:
            assert ids.ids(["game"], [text]) == tok([text])["input_ids"]
    assert not ids.enabled
    assert "tokenised whole" in caplog.text
    assert ids.resumed == 0


def test_new_text_with_an_image_another_game_or_a_changed_start_is_tokenised_whole():
    tok = tokenizer("metaspace-first")
    calls = []

    def whole(texts):
        calls.append(len(texts))
        return tok(texts)["input_ids"]

    from models_svc.backends.prompt_ids import PromptIds

    ids = PromptIds(tok, whole, tok.convert_tokens_to_ids(BOUNDARY), unexpanded=["<image>"])
    first, second, third = prompts(1, 2)
    ids.ids(["g"], [first])
    with_image = second + "<image>C" + BOUNDARY
    edited = "Sy" + second[1:]  # "SySystem:..."
    texts = [with_image, edited, second]
    assert ids.ids(["g", "g", "other"], texts) == tok(texts)["input_ids"]
    assert ids.resumed == 0
    assert calls == [1, 3]
    assert ids.ids(["other"], [third]) == tok([third])["input_ids"]  # from `second`'s start
    assert ids.resumed == 1


def test_only_the_most_recent_games_are_kept():
    tok = tokenizer("byte-level")
    ids = memo(tok, capacity=2)
    games = {key: prompts(seed, 1) for seed, key in enumerate("abc")}
    for key, game in games.items():
        ids.ids([key], [game[0]])
    for key in "cba":
        ids.ids([key], [games[key][1]])
    assert ids.resumed == 2  # "c" and "b"; "a" was dropped when "c" came
