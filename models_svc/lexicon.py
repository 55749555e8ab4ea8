"""The lexicon feedback decoder: cue words and a few rules over the window (CPU, deterministic).

It reads the decoder's window ⟨â_{t−1}, u_t, â_t, u_{t+1}⟩ the way the decoder prompt describes
feedback: corrections and no, not, undo, don't are negative; good, yes, correct, okay "or simply
move on to the next stage" are positive. Text is read lower-cased, with curly quotes made
straight, elongations shortened ("nooo" reads "no", "goood" "good") and one typo forgiven in
common cue words ("wrnog", "corect", "agian"; ``TYPO_TOLERANT``).

1. An empty u_{t+1} (or only whitespace) carries no feedback: ``unparseable``, score None.
2. Cues in u_{t+1}:

   - negative: corrections, negations and retries (no, not, wrong, undo, don't, deselect,
     remove, try again, again, another, the other one, start over, ...);
   - positive: approval (good, yes, correct, okay, great, perfect, alright, spot on, ...);
     after an approval, a moving-on connector opening a clause (now, next, also, then, and,
     moving on, ...) adds a half; "now the other one" / "and another" are moving on, not retries;
   - partial: almost, close, half, one more, only one, one of those, still need, ...;
   - contrast: in ``X but Y`` the clause after the last but/however/though decides (X does, if
     Y has no cue), and an opinion in X opposite to Y's adds one partial;
   - a negated approval (not right, not quite) is a correction; "right" as a direction
     (facing right, on the right) is no approval;
   - corrections about an earlier pick are not about this turn: when u_{t+1} refers to an
     earlier pick (when I said, earlier, before, still a ..., the others) after its first
     approval, its corrections are dropped ("Good. Deselect the one you chose when I said the
     swan" is positive); with no approval at all, such a correction counts as moving on (a
     half), unless u_{t+1} opens with a plain negation ("no, the one from before").

3. When u_{t+1} has no approval, correction or partial cue, the window decides. Content words are
   an utterance's description: no cue, request or function words; attribute words (left, big,
   triangle, leg, ...) weigh half; plurals and one typo forgiven. The head noun of a
   description is its last content word before a post-modifier ("the tall swan with a long
   neck": swan). â_t *did what u_t asked* (``acted``) unless it is empty, or u_t asked for a
   deselection and â_t made none (or also selected, when u_t asked for nothing else), or u_t
   corrected the last pick and â_t took back nothing â_{t−1} selected, or u_t described
   something and â_t selected nothing. In order:

   - the rest: u_t asked for several things ("the bird and the fish"), â_t selected fewer, and
     every content word of u_{t+1} names one of them, not all: positive (one, plus a half for a
     connector; the listener did part of the job and nothing wrong);
   - rephrase: u_{t+1} names a head noun of u_t again, or more than half of its content words
     (by weight, against the smaller side) are u_t's: negative (one; the speaker is asking for
     the same thing again). After a connector ("now the lady") only a near repeat counts: more
     than half of both sides' words;
   - otherwise, if â_t did not do what u_t asked: no evidence;
   - a connector with no description ("next!"): positive (a half);
   - moving on: u_{t+1} describes something else: positive (one, plus a half for a connector)
     when it opens with a connector; without one, when it shares no content word with u_t and
     u_t was a fresh request (it described something, with no correction or partial cue, and
     â_t did not take back â_{t−1}'s pick) or only asked to deselect (and â_t only
     deselected). A silent description after a correction or a retry is no evidence: it may as
     well be the old request again, which the window does not show.

4. After the empty action there is nothing to approve: positive evidence is dropped.

Labels from evidence: when u_{t+1} has both approvals and corrections, their smaller count is
added to the partial evidence. Binary: positive iff positive evidence beats negative plus
partial evidence, else negative (so ties and windows with no evidence lean negative, as the
paper's prompt asks). Ternary: the largest of partial (neutral), negative and positive evidence
wins, ties in that order; no evidence at all is neutral. So ternary neutral is kept for partial
satisfaction the speaker says out loud (almost, only one is right, good but deselect the bird)
and for windows the rules cannot read; an approval with more to do ("good, now also the fish")
and asking for the rest of a request are positive. The score is the winning label's share of
the evidence (binary 0.5 and ternary 1/3 when there is none).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from .interfaces import (
    KIND_LABELS,
    LABEL_NEGATIVE,
    LABEL_NEUTRAL,
    LABEL_POSITIVE,
    LABEL_UNPARSEABLE,
    FeedbackContext,
    FeedbackResult,
)

VERSION = "lexicon-2"

NEGATIVE_CUES = (
    "no", "nope", "nah", "not", "wrong", "incorrect", "undo", "don't", "dont", "do not", "isn't",
    "isnt", "is not", "wasn't", "wasnt", "didn't", "didnt", "deselect", "de-select", "unselect",
    "un-select", "uncheck", "unclick", "remove", "take off", "take it off", "take away",
    "get rid", "try", "once more", "again", "another", "a different one", "different one",
    "the other one", "other one", "not that", "not this", "oops", "mistake", "instead", "reset",
    "restart", "start over", "from scratch", "all over", "clear", "go back", "put it back",
    "put back", "never mind", "nevermind", "bad", "missed", "miss", "none of", "neither", "nor",
    "why", "stop", "still wrong",
)  # fmt: skip
POSITIVE_CUES = (
    "yes", "yeah", "yep", "yup", "yay", "good", "great", "correct", "right", "perfect", "nice",
    "ok", "okay", "alright", "all right", "awesome", "excellent", "exactly", "well done",
    "thanks", "thank you", "thx", "got it", "you got it", "that's it", "thats it",
    "that's the one", "thats the one", "there you go", "there it is", "spot on", "bingo", "sweet",
    "cool", "amazing", "super", "fantastic", "brilliant", "wonderful", "lovely", "done",
    "keep it", "keep that", "keep those", "good job", "nailed", "that works", "works too",
)  # fmt: skip
MOVING_ON_CUES = (
    "now", "next", "also", "then", "and", "lastly", "finally", "plus", "moving on", "after that",
    "next up", "the next",
)  # fmt: skip
PARTIAL_CUES = (
    "almost", "close", "closer", "nearly", "partly", "partially", "half", "one more",
    "some of", "one of them", "one of those", "one of these", "only one", "just one",
    "one is wrong", "one is right", "not all", "not quite", "missing", "still need",
    "keep going", "so far", "halfway", "sort of", "kind of",
)  # fmt: skip
UNDO_CUES = (
    "deselect", "de-select", "unselect", "un-select", "uncheck", "unclick", "remove", "undo",
    "take off", "take it off", "take away", "get rid",
)  # fmt: skip
# Words that say what is asked for or how, not which image: left out of the content words.
FUNCTION_WORDS = (
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "it's", "one", "ones",
    "thing", "things", "shape", "image", "picture", "pic", "figure", "i", "i'm", "me", "my",
    "we", "us", "our", "you", "your", "u", "he", "she", "they", "them", "his", "her", "is",
    "are", "was", "were", "be", "am", "do", "does", "did", "can", "could", "would", "will",
    "should", "need", "want", "like", "looks", "look", "looking", "pick", "click", "select",
    "choose", "find", "grab", "get", "go", "take", "tap", "press", "hit", "mark", "try",
    "please", "pls", "plz", "or", "but", "so", "with", "of", "on", "in", "at", "to", "for",
    "from", "by", "as", "into", "onto", "over", "there", "there's", "theres", "here", "here's",
    "which", "what", "who", "some", "any", "all", "just", "only", "very", "really", "too",
    "well", "kinda", "sorta", "bit", "more", "other", "same", "still", "yet", "lol", "haha",
    "hmm", "um", "uh", "oh", "ah", "hey", "hi", "hello", "ty", "let's", "lets", "has", "have",
    "having", "kind", "sort", "similar", "supposed", "says", "said", "meant", "mean",
    "pretty", "quite", "maybe", "probably", "actually", "sorry", "one's", "what's", "where's",
    "something", "anything", "someone", "each", "every",
)  # fmt: skip
# Description words shared by many images (positions, sizes, simple shapes, body parts).
ATTRIBUTE_WORDS = frozenset(
    (
        "left", "right", "up", "down", "top", "bottom", "side", "sideways", "upside", "facing",
        "pointing", "big", "small", "little", "tall", "short", "long", "tiny", "large", "huge",
        "fat", "skinny", "thin", "wide", "narrow", "round", "pointy", "square", "triangle",
        "head", "leg", "arm", "tail", "neck", "body", "foot", "feet", "hand", "ear", "wing",
    )
)  # fmt: skip


def _alternatives(items: Sequence[str]) -> str:
    """A regex for any of ``items`` (a space matches any whitespace), laid out as a trie so the
    matcher never tries two alternatives that start alike (longer items are tried first)."""
    trie: dict = {}
    for item in items:
        node = trie
        for char in item:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_regex(trie)


def _trie_regex(node: dict) -> str:
    branches = [
        (r"\s+" if char == " " else re.escape(char)) + _trie_regex(child)
        for char, child in sorted(node.items())
        if char
    ]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" not in node:
        return body
    return ("(?:" + body + ")" if len(branches) == 1 else body) + "?"


def _cue_pattern(items: Sequence[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + _alternatives(items) + r")\b")


NEGATIVE = _cue_pattern(NEGATIVE_CUES)
POSITIVE = _cue_pattern(POSITIVE_CUES)
PARTIAL = _cue_pattern(PARTIAL_CUES)
UNDO_REQUEST = _cue_pattern(UNDO_CUES)
ANY_CUE = _cue_pattern((*NEGATIVE_CUES, *POSITIVE_CUES, *PARTIAL_CUES, "k"))
MOVING_ON = re.compile(r"(?:^|[.!?,;:]|\s-\s)\W*(?:" + _alternatives(MOVING_ON_CUES) + r")\b")
LONE_K = re.compile(r"^\W*k+\b")
NEGATED_APPROVAL = re.compile(
    r"\bnot\s+(?:quite|right|correct|good|it|exactly|that)\b|\bno\s+good\b"
)
# "right" as a direction ("facing right", "on the right", "right side") is no approval.
DIRECTIONAL_RIGHT = re.compile(
    r"\b(?:the|to|on|at|top|bottom|upper|lower|far|facing|pointing|looking|leaning|turned|"
    r"tilted|tilting|going|turning|and)\s+right\b|\bright\s+(?:side|corner|of|hand|facing|one)\b"
)
CONTRAST = re.compile(r"\b(?:but|however|though|although|except)\b")
# "now the other one": the second of two asked-for images, not a retry.
OTHER_AS_NEXT = re.compile(r"\b(?:now|and|also|next|then)\s+(?:the\s+other(?:\s+one)?|another)\b")
EARLIER_PICK = re.compile(
    r"\bwhen\s+i\s+(?:said|asked|wrote|typed|told|meant)\b"
    r"|\b(?:earlier|before|previous|previously|last\s+time|at\s+first|first\s+time)\b"
    r"|\byou\s+(?:picked|chose|selected|clicked|took|got)\s+(?:for|when|earlier|first)\b"
    r"|\bstill\s+(?:a|an|one)\b|\b(?:one\s+of\s+)?the\s+others\b|\bother\s+ones\b"
)
# Every match of EARLIER_PICK contains one of these (a cheap test before the regex).
EARLIER_HINTS = ("when", "earlier", "before", "previous", "last", "first", "you", "still", "other")
PLAIN_NEGATION = re.compile(r"\W*(?:no|nope|nah|not|wrong|incorrect|oops)\b")
ITEM_BREAK = re.compile(r"\band\b|\bplus\b|[&+]")
ITEM_HINT = re.compile(r"and|plus|[&+]")
TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'"})
ELONGATED = re.compile(r"[a-z]*([a-z])\1{2,}[a-z]*")
RUN = re.compile(r"([a-z])\1{2,}")
TRIPLE = re.compile(r"([a-z])\1\1")

CUE_WORDS = frozenset(
    word
    for phrases in (NEGATIVE_CUES, POSITIVE_CUES, MOVING_ON_CUES, PARTIAL_CUES)
    for phrase in phrases
    for word in phrase.split()
)
STOP_WORDS = frozenset(FUNCTION_WORDS) | CUE_WORDS
# Cue words read through one typo (see ``typo_variants``), and the real words such a typo would
# hide (left as they are).
TYPO_TOLERANT = (
    "not", "wrong", "nope", "incorrect", "deselect", "unselect", "uncheck", "unclick", "remove",
    "again", "another", "different", "mistake", "undo", "oops", "isnt", "didnt", "dont",
    "correct", "perfect", "great", "awesome", "excellent", "exactly", "thanks", "yeah", "okay",
    "alright", "brilliant", "wonderful", "fantastic", "amazing", "bingo", "almost", "nearly",
    "half", "only",
)  # fmt: skip
REAL_WORDS = frozenset(
    (
        "note", "knot", "snot", "treat", "greet", "gain", "remote", "wring", "wrung", "prong",
        "dot", "don", "loops", "hoops", "coops", "early", "yearly", "dearly", "dingo", "bongo",
    )
)  # fmt: skip
REPHRASE_SHARE = 0.5
# Words after which a description goes on about its head noun ("swan with a long neck").
POST_MODIFIERS = frozenset(
    (
        "with", "without", "facing", "holding", "on", "in", "at", "that", "who", "which",
        "looking", "pointing", "carrying", "having", "has", "from", "near", "under", "above",
        "over", "by", "wearing", "is", "are",
    )
)  # fmt: skip
# Long words ending in -ing that are things, not poses after a head noun.
ING_NOUNS = frozenset(("string", "spring", "building", "painting", "ceiling", "earring", "viking"))


@dataclass(frozen=True)
class Cues:
    """Cue evidence in one utterance: approvals (``positive``), corrections, partial cues, and
    whether its (deciding) clause opens with a moving-on connector."""

    positive: float
    negative: float
    partial: float
    moving_on: bool


class Said(NamedTuple):
    """What an utterance describes: content words and head noun per requested thing (split at
    and / plus), all content words and their total weight, and whether it asks for a
    deselection."""

    items: tuple[tuple[str, ...], ...]
    heads: tuple[str, ...]
    words: tuple[str, ...]
    weight: float
    undo: bool


def _shorten(match: re.Match[str]) -> str:
    word = match.group(0)
    once = RUN.sub(r"\1", word)
    return once if once in CUE_WORDS else RUN.sub(r"\1\1", word)


def typo_variants(word: str) -> set[str]:
    """Words one swap or insertion away from ``word``, one deletion away when it has four
    letters or more, one substitution away when it has five or more."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    variants = {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    variants |= {a + c + b for a, b in splits for c in letters}
    if len(word) >= 4:
        variants |= {a + b[1:] for a, b in splits if b}
    if len(word) >= 5:
        variants |= {a + c + b[1:] for a, b in splits if b for c in letters}
    return variants - {word}


def _typo_map() -> dict[str, str]:
    known = STOP_WORDS | ATTRIBUTE_WORDS | REAL_WORDS
    typos: dict[str, str] = {}
    for word in TYPO_TOLERANT:
        for variant in typo_variants(word) - known:
            typos.setdefault(variant, word)
    return typos


TYPOS = _typo_map()
TYPO_KEYS = frozenset(TYPOS)


def _untypo(match: re.Match[str]) -> str:
    return TYPOS.get(match.group(0), match.group(0))


@lru_cache(maxsize=65536)
def normalize(text: str) -> str:
    """Lower case, straight quotes, letter runs of three or more shortened, typos of the cue
    words in ``TYPO_TOLERANT`` corrected (see the module)."""
    text = text.lower()
    if not text.isascii():
        text = text.translate(QUOTES)
    if TRIPLE.search(text):
        text = ELONGATED.sub(_shorten, text)
    if TYPO_KEYS.isdisjoint(TOKEN.findall(text)):
        return text
    return TOKEN.sub(_untypo, text)


def _count(pattern: re.Pattern[str], text: str) -> float:
    return float(len(pattern.findall(text)))


def about_an_earlier_pick(text: str) -> bool:
    """Whether the corrections in a follow-up are about an earlier pick, not this turn's: it
    refers to an earlier pick (``EARLIER_PICK``) after its first approval, or, with no approval
    but a correction, anywhere, as long as it does not open with a plain negation ("no, the one
    from before")."""
    if not any(hint in text for hint in EARLIER_HINTS) or EARLIER_PICK.search(text) is None:
        return False
    approval = POSITIVE.search(text)
    correction = NEGATIVE.search(text)
    if approval is None:
        return correction is not None and not PLAIN_NEGATION.match(text)
    if correction is not None and correction.start() < approval.start():
        return False
    return EARLIER_PICK.search(text, approval.end()) is not None


def _opinion(clause: str) -> tuple[float, float, float]:
    """Approval, correction and partial cue counts of one clause."""
    positive = _count(POSITIVE, clause)
    if positive:
        positive = max(0.0, positive - _count(NEGATED_APPROVAL, clause))
    if LONE_K.match(clause):
        positive += 1
    return positive, _count(NEGATIVE, clause), _count(PARTIAL, clause)


@lru_cache(maxsize=65536)
def cues(text: str) -> Cues:
    """Cue evidence of a normalized utterance (rule 2 of the module docstring)."""
    if "other" in text:
        text = OTHER_AS_NEXT.sub(" next ", text)
    if "right" in text:
        text = DIRECTIONAL_RIGHT.sub(" ", text)
    if not ANY_CUE.search(text):
        return Cues(0.0, 0.0, 0.0, MOVING_ON.search(text) is not None)
    if about_an_earlier_pick(text):
        return Cues(max(0.5, _count(POSITIVE, text)), 0.0, 0.0, MOVING_ON.search(text) is not None)
    parts = CONTRAST.split(text)
    clause = parts[-1]
    positive, negative, partial = _opinion(clause)
    if len(parts) > 1 and not positive + negative + partial:
        clause = text
        positive, negative, partial = _opinion(text)
    elif len(parts) > 1 and (
        POSITIVE.search(parts[0]) and negative > 0 or NEGATIVE.search(parts[0]) and positive > 0
    ):
        partial += 1
    return Cues(positive, negative, partial, MOVING_ON.search(clause) is not None)


def _stem(word: str) -> str:
    """A plural read as its singular ("legs": leg; not "glass")."""
    if len(word) > 3 and word[-1] == "s" and word[-2] != "s":
        return word[:-1]
    return word


def _ends_head(token: str) -> bool:
    """Whether ``token``, after some content words, starts a post-modifier."""
    return token in POST_MODIFIERS or (
        len(token) >= 6 and token.endswith("ing") and token not in ING_NOUNS
    )


def describe(text: str) -> tuple[tuple[str, ...], str]:
    """Content words of one description and its head noun: the last content word before a
    post-modifier ("the tall swan with a long neck": swan), what follows "like" when nothing
    came before it, else the last content word ("" when there is none)."""
    words: list[str] = []
    head = ""
    start = 0  # where the words that may hold the head begin
    for token in TOKEN.findall(text):
        if token == "like" and not head:
            start = len(words)
            continue
        if not head and len(words) > start and _ends_head(token):
            head = words[-1]
        if token in STOP_WORDS:
            continue
        word = _stem(token)
        if word not in STOP_WORDS:
            words.append(word)
    return tuple(words), head or (words[-1] if len(words) > start else "")


@lru_cache(maxsize=16384)
def typo_keys(word: str) -> frozenset[str]:
    """``word`` and, for words of three letters or more, ``word`` less any one letter: two words
    one typo apart always share a key (a cheap test before ``same_word``)."""
    if len(word) < 3:
        return frozenset((word,))
    return frozenset((word, *(word[:i] + word[i + 1 :] for i in range(len(word)))))


@lru_cache(maxsize=16384)
def _all_typo_keys(words: tuple[str, ...]) -> frozenset[str]:
    return frozenset().union(*map(typo_keys, words))


def _weight(word: str) -> float:
    return 0.5 if word in ATTRIBUTE_WORDS else 1.0


@lru_cache(maxsize=65536)
def said(text: str) -> Said:
    """What a normalized utterance describes (see ``Said``)."""
    parts = ITEM_BREAK.split(text) if ITEM_HINT.search(text) else (text,)
    described = [d for d in map(describe, parts) if d[0]]
    words = tuple(dict.fromkeys(w for item, _ in described for w in item))
    return Said(
        items=tuple(item for item, _ in described),
        heads=tuple(head for _, head in described if head),
        words=words,
        weight=sum(map(_weight, words)),
        undo=UNDO_REQUEST.search(text) is not None,
    )


def _one_edit_apart(a: str, b: str) -> bool:
    """Whether two different words are one substitution, insertion, deletion or swap apart
    (words under four letters only by a swap, an insertion or a deletion)."""
    if len(a) == len(b):
        diffs = [i for i in range(len(a)) if a[i] != b[i]]
        if len(diffs) == 1:
            return len(a) >= 4
        i, j = diffs[0], diffs[-1]
        return len(diffs) == 2 and j == i + 1 and a[i] == b[j] and a[j] == b[i]
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    if len(long_) - len(short) != 1:
        return False
    i = 0
    while i < len(short) and short[i] == long_[i]:
        i += 1
    return short[i:] == long_[i + 1 :]


def same_word(a: str, b: str) -> bool:
    """Equal, or (both at least three letters) one typo apart."""
    return a == b or len(a) >= 3 and len(b) >= 3 and _one_edit_apart(a, b)


def _found(word: str, other: Sequence[str]) -> bool:
    """Whether ``word`` is in ``other``, up to one typo (``same_word``)."""
    if word in other:
        return True
    size = len(word)
    if size < 3:
        return False
    first, last = word[0], word[-1]
    # One typo keeps the first or the last letter of a word of three letters or more.
    return any(
        (o[0] == first or o[-1] == last) and abs(len(o) - size) < 2 and same_word(word, o)
        for o in other
    )


@dataclass(frozen=True)
class Overlap:
    """How much of a follow-up's content words (by weight, up to a typo) an utterance has: over
    the smaller and over the larger of the two total weights."""

    of_smaller: float
    of_larger: float


def overlap(follow_up: Said, utterance: Said) -> Overlap:
    """The overlap of a follow-up's content words with an utterance's."""
    if not follow_up.words or not utterance.words:
        return Overlap(0.0, 0.0)
    other = utterance.words
    keys = None
    matched = 0.0
    for word in follow_up.words:
        if word not in other:
            keys = keys or _all_typo_keys(other)
            if typo_keys(word).isdisjoint(keys) or not _found(word, other):
                continue
        matched += _weight(word)
    smaller, larger = sorted((follow_up.weight, utterance.weight))
    return Overlap(matched / smaller, matched / larger)


def rephrases(follow_up: Said, utterance: Said, shared: Overlap, *, moving_on: bool) -> bool:
    """Whether a follow-up asks for what the utterance asked for (``shared`` is their overlap):
    a head noun again, or more than half of the content words (by weight, of the smaller side)
    again. After a moving-on connector ("now the lady") only a near repeat counts: more than
    half of the larger side."""
    if moving_on:
        return shared.of_larger > REPHRASE_SHARE
    if any(_found(head, utterance.heads) for head in follow_up.heads):
        return True
    return shared.of_smaller > REPHRASE_SHARE


def _letters(action: str, part: str) -> set[str]:
    """Letters after ``part`` (``select`` or ``deselect``) in a canonical action string."""
    words = action.split()
    if part not in words:
        return set()
    letters = words[words.index(part) + 1 :]
    return set(letters[: letters.index("select")] if "select" in letters else letters)


def asks_for_the_rest(follow_up: Said, utterance: Said, action: str) -> bool:
    """u_t asked for several things, â_t selected fewer, and u_{t+1} asks again for some of
    them but not all: each thing it asks for has all its content words in one thing u_t asked
    for, and fewer things than u_t."""
    items = utterance.items
    if not len(follow_up.items) < len(items) or not 0 < len(_letters(action, "select")) < len(
        items
    ):
        return False
    return all(
        any(all(_found(w, item) for w in asked_again) for item in items)
        for asked_again in follow_up.items
    )


def acted(context: FeedbackContext, utterance: Said, corrects: bool) -> bool:
    """Whether â_t did what u_t asked for. Never the empty action. When u_t asks for a
    deselection, â_t deselects (and does nothing else when u_t asks for nothing else); when
    u_t corrects the last pick (``corrects``), â_t takes back something â_{t−1} selected;
    otherwise, when u_t describes something, â_t selects."""
    selected = _letters(context.action, "select")
    deselected = _letters(context.action, "deselect")
    if not selected and not deselected:
        return False
    if utterance.undo and (not deselected or selected and not utterance.words):
        return False
    earlier = _letters(context.previous_action or "", "select")
    if corrects and earlier:
        return bool(earlier & deselected)
    return bool(selected) or utterance.undo or not utterance.words


def replaces_last_pick(context: FeedbackContext) -> bool:
    """Whether â_t deselects something â_{t−1} selected (the listener redoing its last pick)."""
    if not context.previous_action:
        return False
    earlier = _letters(context.previous_action, "select")
    return bool(earlier & _letters(context.action, "deselect"))


def silence_moves_on(
    context: FeedbackContext, shared: Overlap, asked: Said, asked_cues: Cues
) -> bool:
    """Whether a follow-up that only describes something (no cue at all) reads as moving on:
    it shares no content word with u_t (``shared`` is their overlap), and u_t was a fresh
    request (it described something, with no correction or partial cue, and â_t did not take
    back â_{t−1}'s pick) or a plain request to deselect that â_t carried out by deselecting
    only. After a correction or a retry, the next description may as well be the old request
    again, which the window does not show."""
    if shared.of_smaller:
        return False
    if asked.undo and not asked.words:
        return not _letters(context.action, "select")
    fresh = not (asked_cues.negative or asked_cues.partial)
    return bool(asked.words) and fresh and not replaces_last_pick(context)


def window_evidence(context: FeedbackContext, follow_up: str, found: Cues) -> tuple[float, float]:
    """Positive and negative evidence from the window (rule 3 of the module docstring), for a
    normalized follow-up whose cues are ``found``; nothing when the cues carry an opinion."""
    if found.positive or found.negative or found.partial:
        return 0.0, 0.0
    follow = said(follow_up)
    utterance = normalize(context.utterance)
    asked = said(utterance)
    connector = 0.5 if found.moving_on else 0.0
    if follow.words and asks_for_the_rest(follow, asked, context.action):
        return 1.0 + connector, 0.0
    shared = overlap(follow, asked)
    if follow.words and rephrases(follow, asked, shared, moving_on=found.moving_on):
        return connector, 1.0
    asked_cues = cues(utterance)
    if not acted(context, asked, asked_cues.negative > 0):
        return 0.0, 0.0
    if not follow.words:
        return connector, 0.0
    if connector or silence_moves_on(context, shared, asked, asked_cues):
        return 1.0 + connector, 0.0
    return 0.0, 0.0


def _label(positive: float, negative: float, partial: float, kind: str) -> FeedbackResult:
    total = positive + negative + partial
    if kind == "binary":
        if positive > negative + partial:
            return FeedbackResult(LABEL_POSITIVE, positive / total)
        return FeedbackResult(LABEL_NEGATIVE, (negative + partial) / total if total else 0.5)
    if total == 0:
        return FeedbackResult(LABEL_NEUTRAL, 1 / 3)
    ranked = sorted(
        [(partial, 2, LABEL_NEUTRAL), (negative, 1, LABEL_NEGATIVE), (positive, 0, LABEL_POSITIVE)],
        reverse=True,
    )
    weight, _, label = ranked[0]
    return FeedbackResult(label, weight / total)


def evidence(context: FeedbackContext) -> tuple[float, float, float] | None:
    """Positive, negative and partial evidence of a window; None when u_{t+1} is empty."""
    follow_up = normalize(context.follow_up)
    if not follow_up.strip():
        return None
    found = cues(follow_up)
    positive, negative = window_evidence(context, follow_up, found)
    positive += found.positive
    negative += found.negative
    partial = found.partial
    if found.positive and found.negative:
        partial += min(found.positive, found.negative)
    elif found.positive and found.moving_on:
        positive += 0.5
    if not context.action:
        positive = 0.0
    return positive, negative, partial


def decide(context: FeedbackContext, kind: str) -> FeedbackResult:
    """Label one window as ``kind`` (binary or ternary); see the module docstring for the rules."""
    found = evidence(context)
    if found is None:
        return FeedbackResult(LABEL_UNPARSEABLE, None)
    return _label(*found, kind)


class LexiconDecoder:
    """The zero-setup decoder (``lexicon``); ``version`` changes whenever its rules do."""

    name = "lexicon"
    version = VERSION

    def decode(self, contexts: Sequence[FeedbackContext], kind: str) -> list[FeedbackResult]:
        if kind not in KIND_LABELS:
            raise ValueError(f"feedback kind must be binary or ternary, not {kind!r}")
        return [decide(context, kind) for context in contexts]
