"""Seeded synthetic MultiRef games for measuring feedback decoders (pure; no ORM, no decoder).

Games come out in the original study's export layout (a dict keyed by game id with ``context``,
``context_listener``, ``targets``, ``chat[t]``, ``clicks[t]``, ``end``), so they go through
``games.original_export.records_from_study_export`` like real exports. The simulation knows
nothing of any decoder's cue lists: its phrases are its own.

A game: ten images, three to five targets, at most ten turns. The **speaker** asks for the
targets one (sometimes two) at a time with one of several descriptions per image, and judges the
listener's last action from the selection it sees:

- right: approves and asks for the next target, or just describes the next target (moving on);
  a partly done two-image request is followed by a request for the rest; an unasked target
  picked by luck is welcomed ("oh that works too") or the request repeated; fixing an earlier
  wrong pick that was let slide mostly opens with an approval ("good. deselect the one you
  picked when I said ...");
- wrong: a blunt speaker says so (no / wrong / not that, often with a re-description or a
  request to deselect); otherwise they ask to try again / for the other one, repeat the
  request, rephrase it around the same head noun, re-describe the image in other words, let it
  slide for now (and come back later), or very rarely approve by mistake;
- empty action: a prod, or the request again; a target and a distractor picked together: a
  partial reaction ("only one is correct").

The **listener** is right with its skill (drawn per game, 0.3 to 0.92); otherwise it picks a
distractor (often keeping or swapping out the wrong pick), an unasked target, the asked image
plus a distractor, nothing, or undoes a good pick. Utterances get mixed case, varied punctuation
and keyboard typos. A game ends when the selection is the targets, so its last turn has no
follow-up.

``game_windows`` and ``quality`` score a decoder's binary positive labels against the proxy
truth of each turn (``proxy_good``), on generated games or on any parsed export.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from games.original_export import records_from_study_export
from games.records import GameRecord, TurnRecord
from models_svc.interfaces import LABEL_POSITIVE, FeedbackContext, FeedbackDecoder

HEADS = (
    "swan", "goose", "duck", "rabbit", "bunny", "cat", "dog", "fox", "horse", "camel", "giraffe",
    "dinosaur", "loch ness monster", "snake", "fish", "whale", "shark", "bird", "eagle", "chicken",
    "penguin", "turtle", "crab", "butterfly", "man", "woman", "person", "lady", "kid", "dancer",
    "runner", "ice skater", "monk", "ninja", "soldier", "king", "ghost", "robot", "angel",
    "house", "boat", "sailboat", "ship", "rocket", "airplane", "arrow", "spade", "teapot",
    "kettle", "lamp", "candle", "chair", "bench", "table", "hammer", "axe", "key", "bell", "vase",
    "cup", "hat", "crown", "tree", "mountain", "bridge", "castle", "tower", "staircase",
    "letter z", "letter k", "number 7", "diamond", "star", "heart", "bowl", "shoe", "boot",
    "umbrella", "flag", "anvil", "seal", "bear", "owl", "kangaroo", "mermaid", "wizard",
)  # fmt: skip
PRE = (
    "tall", "small", "little", "big", "fat", "skinny", "upside down", "sideways", "pointy",
    "headless", "tilted", "square headed", "round", "long", "short", "sitting", "standing",
    "kneeling", "flying", "jumping", "dancing", "running", "praying", "walking", "sleeping",
    "fancy", "chunky", "weird", "tiny", "lopsided",
)  # fmt: skip
POST = (
    "with a hat", "with a long neck", "with its arms up", "with one leg up", "facing left",
    "facing right", "with a triangle head", "with a big tail", "on one foot", "with wings",
    "holding a stick", "looking down", "with a square on top", "bending over",
    "with a pointy hat", "leaning back", "with two legs", "kicking a ball", "carrying a bag",
    "waving", "with a diamond head", "with the flat bottom", "with a beak", "stretching",
    "with a little tail", "with the big triangle", "pointing up", "with a slanted roof",
)  # fmt: skip
DETAIL = (
    "the one with the triangle on top", "it has a square for a head", "looks like its moving",
    "big triangle at the bottom", "the head is a diamond", "legs spread out",
    "the point is facing down", "it's kind of leaning", "two triangles for ears",
    "kinda looks like its flying",
)  # fmt: skip
VERBS = (
    "", "", "", "", "pick", "pick the", "click", "click on", "select", "choose", "find",
    "grab", "get", "go for", "i need", "look for", "can you pick", "please select",
    "now i need", "we need", "there's",
)  # fmt: skip
APPROVALS = (
    "yes", "yep", "yess", "good", "good job", "great", "great job", "nice", "nice one", "perfect",
    "correct", "that's right", "thats right", "ok", "okay", "awesome", "well done", "exactly",
    "you got it", "that's the one", "bingo", "sweet", "cool", "excellent", "lovely", "spot on",
    "brilliant", "alright", "good stuff", "nailed it", "yay", "wonderful", "thx", "ty",
    "there it is", "love it", "right on", "yup", "good good", "woo",
)  # fmt: skip
CONNECTORS = (
    "", "", "", "", "now", "next", "next one", "then", "and", "also", "ok now", "moving on",
    "now find", "the next is", "next up", "after that", "and now",
)  # fmt: skip
NEGATIONS = (
    "no", "nope", "nah", "not that", "not that one", "wrong", "wrong one", "that's wrong",
    "incorrect", "that is not it", "no no", "nooo", "uh no", "hmm no", "sorry no", "not quite",
    "thats not right", "not the right one", "no way", "oops no", "that isnt it",
)  # fmt: skip
UNDO_ASKS = (
    "deselect it", "deselect that", "unselect that one", "undo that", "take it off",
    "remove it", "unclick it", "get rid of that one", "uncheck it", "undo",
)  # fmt: skip
META_RETRIES = (
    "try again", "the other one", "other one", "again", "look again", "another one please",
    "try another", "one more try", "have another go", "try once more", "different one",
)  # fmt: skip
EMPTY_PRODS = (
    "hello?", "?", "please pick something", "you didn't select anything", "click one of them",
    "are you there", "pick one", "select something please", "you have to click one",
)  # fmt: skip
MIXED = (
    "one of those is right", "half right", "only one is correct", "one is right one is wrong",
    "almost, one of them is wrong", "close, but one is off",
)  # fmt: skip
EARLIER = (
    "deselect the one you picked when i said {d}", "unselect the one from when i said {d}",
    "also remove the one you chose for {d}", "the earlier one for {d} was wrong, deselect it",
    "deselect the choice you made when i said {d}", "take off the {d} one from before",
)  # fmt: skip
RESTS = ("now the {d}", "and the {d}", "the {d} too", "also the {d}", "{d} as well", "{d}")
BONUS = ("oh that works too", "that one's also right", "lucky, that's one too")
ENDS = ("", "", "", "", ".", ".", "!", "!!", "?", "...", " :)", ",")
KEYBOARD = "qwertyuiopasdfghjklzxcvbnm"

WRONG_REACTIONS = ("meta", "repeat", "elaborate", "reword", "defer")
WRONG_WEIGHTS = (25, 25, 30, 12, 8)


@dataclass(frozen=True)
class Description:
    """The ways a speaker refers to one image: main words, another take, a head noun."""

    main: str
    other: str
    head: str


Names = dict[str, Description]


@dataclass
class Speaker:
    """One speaker's habits, drawn once per game."""

    bluntness: float
    approve: float
    pairs: float
    typos: float
    shouty: float
    deferred: list[str] = field(default_factory=list)


@dataclass
class Turn:
    """What the speaker says, which targets it asks for, and whether it wants wrong picks gone."""

    utterance: str
    asked: tuple[str, ...]
    undo: bool


def _description(rng: random.Random, used_heads: set[str]) -> Description:
    """Descriptions of one target; its head noun differs from the other targets' nine in ten."""
    head = rng.choice([h for h in HEADS if h not in used_heads] or HEADS)
    if rng.random() < 0.1 and used_heads:
        head = rng.choice(sorted(used_heads))
    used_heads.add(head)
    pre = rng.choice(PRE) + " " if rng.random() < 0.45 else ""
    post = " " + rng.choice(POST) if rng.random() < 0.45 else ""
    other_head = rng.choice([h for h in HEADS if h != head])
    other = rng.choice(
        (
            f"{other_head}",
            f"{rng.choice(PRE)} {other_head}",
            f"{other_head} {rng.choice(POST)}",
            f"the one that looks like a {other_head}",
            rng.choice(DETAIL),
        )
    )
    return Description(main=f"{pre}{head}{post}", other=other, head=head)


def _typo(rng: random.Random, word: str) -> str:
    """One keyboard slip in a word of three letters or more: a swap, a drop, a double, a miss."""
    if len(word) < 3 or not word.isalpha():
        return word
    i = rng.randrange(len(word) - 1)
    kind = rng.randrange(4)
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == 1:
        return word[:i] + word[i + 1 :]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    return word[:i] + rng.choice(KEYBOARD) + word[i + 1 :]


def _surface(rng: random.Random, speaker: Speaker, text: str) -> str:
    """Casing, typos and a closing mark, as people type."""
    words = [_typo(rng, w) if rng.random() < speaker.typos else w for w in text.split()]
    text = " ".join(words) + rng.choice(ENDS)
    roll = rng.random()
    if roll < speaker.shouty:
        return text.upper()
    if roll < 0.3:
        return text[:1].upper() + text[1:]
    if roll < 0.36:
        return text.title()
    return text


def _join(rng: random.Random, *parts: str) -> str:
    """The non-empty ``parts`` as one message, with one kind of glue between them."""
    parts = tuple(p for p in parts if p)
    glue = rng.choice((". ", ", ", " ", "! ", " - "))
    return glue.join(parts)


def _refer(rng: random.Random, text: str) -> str:
    """A description with an article in front (or none), as people write it."""
    return (
        f"{rng.choice(('the ', 'the ', 'a ', ''))}{text}" if not text.startswith("the ") else text
    )


def _request(rng: random.Random, descriptions: list[Description]) -> str:
    """A request for the images of ``descriptions``, by their main descriptions."""
    things = " and ".join(_refer(rng, d.main) for d in descriptions)
    return " ".join(p for p in (rng.choice(VERBS), things) if p)


def _next_request(
    rng: random.Random, speaker: Speaker, names: Names, remaining: list[str]
) -> tuple[tuple[str, ...], str]:
    """Ask for one or two of the remaining targets."""
    count = 2 if len(remaining) > 1 and rng.random() < speaker.pairs else 1
    asked = tuple(rng.sample(remaining, count))
    return asked, _request(rng, [names[a] for a in asked])


def _lead_in(rng: random.Random, connector: str, request: str) -> str:
    """A connector ("now", "next up") glued to the request that follows it."""
    if not connector:
        return request
    return f"{connector}{rng.choice((' ', ' ', ' ', ', ', ': ', '. '))}{request}"


def _opening(rng: random.Random, speaker: Speaker, request: str, approving: bool = True) -> str:
    """A request as a satisfied speaker puts it: maybe an approval, maybe a connector."""
    approval = rng.choice(APPROVALS) if approving and rng.random() < speaker.approve else ""
    return _join(rng, approval, _lead_in(rng, rng.choice(CONNECTORS), request))


def _react_right(
    rng: random.Random, speaker: Speaker, names: Names, remaining: list[str], asked_left: list[str]
) -> Turn:
    """The speaker saw a good action: ask for the rest of the request, or for the next target."""
    if asked_left:
        rest = rng.choice(RESTS).format(d=names[asked_left[0]].main)
        opener = rng.choice(APPROVALS) if rng.random() < speaker.approve else ""
        return Turn(_join(rng, opener, rest), tuple(asked_left), False)
    asked, request = _next_request(rng, speaker, names, remaining)
    return Turn(_opening(rng, speaker, request), asked, False)


def _react_wrong(
    rng: random.Random,
    speaker: Speaker,
    names: Names,
    asked: tuple[str, ...],
    remaining: list[str],
) -> Turn:
    """The speaker saw a distractor selected (or a target dropped)."""
    if not asked:
        asked = (rng.choice(remaining),)
    described = [names[a] for a in asked]
    if rng.random() < 0.005:
        others = [t for t in remaining if t not in asked] or list(asked)
        target = rng.choice(others)
        return Turn(
            _join(rng, rng.choice(APPROVALS), _request(rng, [names[target]])), (target,), False
        )
    if rng.random() < speaker.bluntness:
        negation = rng.choice(NEGATIONS)
        roll = rng.random()
        if roll < 0.35:
            return Turn(_join(rng, negation, rng.choice(UNDO_ASKS)), (), True)
        if roll < 0.7:
            again = _request(rng, described) if rng.random() < 0.6 else described[0].other
            return Turn(_join(rng, negation, again), asked, True)
        if roll < 0.85:
            return Turn(_join(rng, negation, rng.choice(META_RETRIES)), asked, True)
        return Turn(negation, asked, True)
    reaction = rng.choices(WRONG_REACTIONS, WRONG_WEIGHTS)[0]
    if reaction == "meta":
        return Turn(rng.choice(META_RETRIES), asked, True)
    if reaction == "repeat":
        return Turn(_request(rng, described), asked, True)
    if reaction == "elaborate":
        d = described[0]
        extra = rng.choice(
            (
                f"{d.main} {rng.choice(POST)}",
                f"{d.head} {rng.choice(POST)}",
                f"{rng.choice(PRE)} {d.head}",
                f"{d.main}, {rng.choice(DETAIL)}",
            )
        )
        return Turn(_refer(rng, extra), asked, True)
    if reaction == "reword":
        return Turn(described[0].other, asked, True)
    speaker.deferred.append(described[0].main)
    others = [t for t in remaining if t not in asked]
    if not others:
        return Turn(rng.choice(META_RETRIES), asked, True)
    next_asked, request = _next_request(rng, speaker, names, others)
    return Turn(_opening(rng, speaker, request, approving=False), next_asked, False)


def _react_empty(rng: random.Random, names: Names, turn: Turn) -> Turn:
    """The listener did nothing: prod, or ask again."""
    asked = turn.asked
    if not asked:
        return Turn(
            f"{rng.choice(('please ', 'still ', 'you need to ', ''))}{rng.choice(UNDO_ASKS)}",
            (),
            True,
        )
    if rng.random() < 0.5:
        return Turn(rng.choice(EMPTY_PRODS), asked, False)
    return Turn(_request(rng, [names[a] for a in asked]), asked, False)


def _react_mixed(rng: random.Random, asked: tuple[str, ...]) -> Turn:
    """A target and a distractor were picked together: say so, maybe ask to undo."""
    text = rng.choice(MIXED)
    if rng.random() < 0.5:
        text = _join(rng, text, rng.choice(UNDO_ASKS))
    return Turn(text, asked, True)


def _listen(
    rng: random.Random,
    skill: float,
    turn: Turn,
    selection: set[str],
    targets: set[str],
    context: list[str],
) -> set[str]:
    """The listener's selection after ``turn``: what was asked with probability ``skill``, else
    a plausible mistake."""
    wrong = selection - targets
    distractors = [c for c in context if c not in targets and c not in selection]
    unasked = [c for c in context if c in targets and c not in selection | set(turn.asked)]
    if rng.random() < skill:
        after = set(selection)
        if turn.undo:
            after -= wrong
        picked = [a for a in turn.asked if a not in after]
        if len(picked) > 1 and rng.random() < 0.25:
            picked = picked[:1]
        return after | set(picked)
    roll = rng.random()
    if roll < 0.07:
        return set(selection)
    if roll < 0.12 and selection & targets:
        return selection - {rng.choice(sorted(selection & targets))}
    if roll < 0.22 and unasked:
        return selection | {rng.choice(unasked)}
    if roll < 0.3 and distractors and turn.asked:
        return selection | set(turn.asked) | {rng.choice(distractors)}
    if distractors:
        base = selection - wrong if turn.undo and rng.random() < 0.5 else selection
        return set(base) | {rng.choice(distractors)}
    return set(selection)


def _react(
    rng: random.Random,
    speaker: Speaker,
    names: Names,
    turn: Turn,
    before: set[str],
    after: set[str],
    targets: set[str],
) -> Turn:
    """The speaker's next utterance, from what the last action did."""
    added, dropped = after - before, before - after
    bad = (added - targets) | (dropped & targets)
    remaining = [t for t in names if t not in after]
    if not added and not dropped:
        return _react_empty(rng, names, turn)
    if added & targets and added - targets:
        return _react_mixed(rng, turn.asked)
    if bad:
        lost = tuple(t for t in names if t in dropped)
        return _react_wrong(rng, speaker, names, lost or turn.asked, remaining or list(names))
    if added - set(turn.asked) and rng.random() < 0.5:
        return Turn(rng.choice(BONUS), turn.asked, False)
    asked_left = [a for a in turn.asked if a not in after]
    if after - targets and not asked_left and (not remaining or rng.random() < 0.7):
        return _fix_earlier(rng, speaker)
    if not after - targets:
        speaker.deferred.clear()
    return _react_right(rng, speaker, names, remaining, asked_left)


def _fix_earlier(rng: random.Random, speaker: Speaker) -> Turn:
    """Approve the last pick, then ask to undo an earlier wrong one that was let slide."""
    approval = rng.choice(APPROVALS) if rng.random() < 0.8 else ""
    if speaker.deferred:
        fix = rng.choice(EARLIER).format(d=speaker.deferred.pop(0))
    else:
        fix = rng.choice(
            (
                "there's still a wrong one in there, take it off",
                "one of the others is wrong, remove it",
            )
        )
    return Turn(_join(rng, approval, fix), (), True)


def play_game(rng: random.Random, number: int, turn_limit: int = 10) -> dict:
    """One game in the study's export layout."""
    context = [f"page{rng.randint(1, 9)}-{n}.png" for n in rng.sample(range(1, 400), 10)]
    targets = context[: rng.randint(3, 5)]
    target_set = set(targets)
    used: set[str] = set()
    names = {t: _description(rng, used) for t in targets}
    speaker = Speaker(
        bluntness=rng.uniform(0.5, 0.95),
        approve=rng.uniform(0.2, 0.9),
        pairs=rng.uniform(0.0, 0.3),
        typos=rng.uniform(0.0, 0.06),
        shouty=rng.choice((0.0, 0.0, 0.05, 0.15)),
    )
    skill = rng.uniform(0.3, 0.92)
    listener_order = context[:]
    rng.shuffle(listener_order)
    speaker_order = context[:]
    rng.shuffle(speaker_order)
    selection: set[str] = set()
    asked, request = _next_request(rng, speaker, names, targets)
    turn = Turn(request, asked, False)
    chat: list[str] = []
    clicks: list[list[str]] = []
    for _ in range(turn_limit):
        before = set(selection)
        selection = _listen(rng, skill, turn, selection, target_set, context)
        chat.append(_surface(rng, speaker, turn.utterance))
        clicks.append(sorted(selection))
        if selection == target_set:
            break
        turn = _react(rng, speaker, names, turn, before, selection, target_set)
    return {
        "_id": f"synthetic-{number:05d}",
        "context": speaker_order,
        "context_listener": listener_order,
        "targets": targets,
        "chat": chat,
        "clicks": clicks,
        "end": "successful" if selection == target_set else "unsuccessful",
    }


def generate_export(games: int, seed: int) -> dict[str, dict]:
    """``games`` synthetic games keyed by id (the same ``seed`` gives the same games)."""
    rng = random.Random(f"feedback-games:{seed}")
    records = [play_game(rng, number) for number in range(games)]
    return {record["_id"]: record for record in records}


@dataclass(frozen=True)
class Window:
    """A decoder window and the proxy truth of its turn."""

    context: FeedbackContext
    good: bool


@dataclass(frozen=True)
class Quality:
    """Precision and recall of a decoder's positive labels against the proxy truth."""

    windows: int
    good: int
    labelled_positive: int
    true_positive: int

    @property
    def precision(self) -> float:
        return self.true_positive / self.labelled_positive if self.labelled_positive else 1.0

    @property
    def recall(self) -> float:
        return self.true_positive / self.good if self.good else 1.0


def proxy_good(turn: TurnRecord, targets: frozenset[str]) -> bool:
    """Whether a turn is good: it changed something, every newly selected image is a target and
    every newly deselected image a non-target."""
    if turn.selection_after is None:
        return False
    before, after = set(turn.selection_before), set(turn.selection_after)
    added, dropped = after - before, before - after
    return bool(added or dropped) and added <= targets and not dropped & targets


def game_windows(games: list[GameRecord]) -> list[Window]:
    """One window per turn whose next turn has an utterance (as ``models_svc.selectors`` does)."""
    windows = []
    for game in games:
        targets = frozenset(game.targets)
        turns = game.turns
        for index, turn in enumerate(turns[:-1]):
            follow_up = turns[index + 1].utterance
            if not follow_up.strip():
                continue
            context = FeedbackContext(
                utterance=turn.utterance,
                action=turn.action,
                follow_up=follow_up,
                previous_action=turns[index - 1].action if index else None,
            )
            windows.append(Window(context, proxy_good(turn, targets)))
    return windows


def quality(decoder: FeedbackDecoder, windows: list[Window]) -> Quality:
    """Binary positive labels of ``decoder`` on ``windows``, scored against the proxy truth."""
    results = decoder.decode([w.context for w in windows], "binary")
    positive = [r.label == LABEL_POSITIVE for r in results]
    return Quality(
        windows=len(windows),
        good=sum(w.good for w in windows),
        labelled_positive=sum(positive),
        true_positive=sum(p and w.good for p, w in zip(positive, windows, strict=True)),
    )


def generated_windows(games: int, seed: int) -> list[Window]:
    """Windows of ``games`` generated games (parsed as a study export)."""
    return game_windows(records_from_study_export(generate_export(games, seed)))
