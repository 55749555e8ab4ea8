"""Token ids of a game's prompt, its shared start with the game's last prompt tokenised once.

A listener prompt grows by one exchange per turn, so turn t's text starts with turn t−1's up to
the end of its last message. Tokenising the whole prompt every turn (about a thousand tokens
with the image runs) costs more than a batched turn's forward passes on a small model; this
memo tokenises only the text after the last message end the two prompts share.

Why that is exact: a Hugging Face tokenizer cuts its input at added special tokens before it
normalises, pre-tokenises or splits anything, and then handles every piece between them on its
own. The message-end token (the policy's stop token, e.g. ``<end_of_utterance>``) is such a
token, so the ids of a text are the ids of its pieces in order. The one thing a piece's ids can
depend on besides its own characters is whether it opens the text (a Metaspace pre-tokenizer
with ``prepend_scheme="first"`` prepends "▁" only there) and the token before it (``lstrip``
and ``rstrip`` of that token): the new part is therefore tokenised behind the message-end token
it follows in the full text, without special tokens (the full text's begin-of-sequence token
is already in the stored ids), and that one leading id is dropped. The first resumed prompt of
each memo is also tokenised whole and compared; a tokenizer that disagrees (say one that appends
an end-of-sequence token) has the memo switched off, with a warning.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

logger = logging.getLogger(__name__)

Whole = Callable[[list[str]], list[list[int]]]  # prompts to ids, as the processor tokenises them


@dataclass(frozen=True)
class _Start:
    """A prompt's text and ids up to and including its last message end."""

    text: str
    ids: list[int]


class PromptIds:
    """Each key's (a game's) last prompt start, ``capacity`` keys kept, least recent dropped."""

    def __init__(
        self,
        tokenizer,
        whole: Whole,
        boundary_id: int,
        *,
        unexpanded: Sequence[str] = (),
        capacity: int = 4096,
    ) -> None:
        """``whole`` tokenises full prompts (the processor, which also expands image
        placeholders); a text after the shared start that holds one of ``unexpanded`` (those
        placeholders) is tokenised whole."""
        self.tokenizer = tokenizer
        self.whole = whole
        self.boundary_id = boundary_id
        self.boundary = tokenizer.convert_ids_to_tokens(boundary_id)
        self.unexpanded = tuple(unexpanded)
        self.capacity = capacity
        # The exactness argument holds for a boundary the tokenizer cuts at: an added token.
        self.enabled = self.boundary in tokenizer.get_added_vocab()
        self._checked = False
        self.resumed = 0  # prompts tokenised from a kept start (for tests and benchmarks)
        self._starts: OrderedDict[Hashable, _Start] = OrderedDict()

    def ids(self, keys: Sequence[Hashable], texts: Sequence[str]) -> list[list[int]]:
        """Token ids of ``texts`` (``keys[i]`` names the game of ``texts[i]``), each as
        ``whole`` would give them; every prompt's start is kept for its key's next one."""
        found = self._resumed(keys, texts) if self.enabled else {}
        if found and not self._checked:
            found = self._checked_against_whole(texts, found)
        self.resumed += len(found)
        missing = [row for row in range(len(texts)) if row not in found]
        if missing:
            found |= dict(zip(missing, self.whole([texts[r] for r in missing]), strict=True))
        result = [list(found[row]) for row in range(len(texts))]
        for key, text, ids in zip(keys, texts, result, strict=True):
            self._keep(key, text, ids)
        return result

    def _resumed(self, keys: Sequence[Hashable], texts: Sequence[str]) -> dict[int, list[int]]:
        """Ids of the rows whose text starts with their key's kept start, by row."""
        tails: dict[int, str] = {}
        for row, (key, text) in enumerate(zip(keys, texts, strict=True)):
            start = self._starts.get(key)
            if start is not None and text.startswith(start.text):
                tail = text[len(start.text) :]
                if not any(mark in tail for mark in self.unexpanded):
                    tails[row] = tail
        if not tails:
            return {}
        pieces = self.tokenizer(
            [self.boundary + tail for tail in tails.values()], add_special_tokens=False
        )["input_ids"]
        return {
            row: self._starts[keys[row]].ids + piece[1:]
            for row, piece in zip(tails, pieces, strict=True)
            if piece[:1] == [self.boundary_id]
        }

    def _checked_against_whole(
        self, texts: Sequence[str], found: dict[int, list[int]]
    ) -> dict[int, list[int]]:
        """The first resumed rows compared with their whole tokenisation; on any difference
        the memo is switched off and nothing resumed is used."""
        self._checked = True
        rows = list(found)
        whole = self.whole([texts[row] for row in rows])
        if all(list(w) == found[row] for row, w in zip(rows, whole, strict=True)):
            return found
        self.enabled = False
        self._starts.clear()
        logger.warning(
            "prompt ids: this tokenizer does not tokenise a prompt's new text behind %r as it "
            "does within the whole prompt; every prompt is tokenised whole",
            self.boundary,
        )
        return {}

    def _keep(self, key: Hashable, text: str, ids: list[int]) -> None:
        """Keep ``text`` up to its last boundary and the ids up to the boundary's id, when the
        boundary is one id per occurrence (else keep nothing for ``key``)."""
        if not self.enabled:
            return
        cut = text.rfind(self.boundary)
        if cut < 0 or ids.count(self.boundary_id) != text.count(self.boundary):
            self._starts.pop(key, None)
            return
        last = len(ids) - 1 - ids[::-1].index(self.boundary_id)
        self._starts[key] = _Start(text[: cut + len(self.boundary)], ids[: last + 1])
        self._starts.move_to_end(key)
        while len(self._starts) > self.capacity:
            self._starts.popitem(last=False)
