"""Metric conventions: the platform's definitions, or those of the ReSpect study's figures.

The published figures of the study used conventions that differ from the platform's (where the
study design left them open; docs/metrics.md compares the two). A run computes under one set,
named in its parameters; ``PLATFORM`` → ``PAPER``:

- positive feedback: any ``yes…`` answer → a plain ``yes`` only;
- Sim −FB averages over: answers whose satisfaction class (the run's mapping) is ``negative`` →
  answers other than a plain ``yes``;
- interval method (unless a run names one): BCa → percentile;
- language tokens, for vocabulary size and utterance length: whitespace words with surrounding
  punctuation stripped → alphanumeric runs (``re.findall(r"[a-z0-9]+", text.lower())``);
- utterance length: tokens per utterance (turn with non-empty text) → tokens per turn.

Under both, positive feedback and Sim −FB only use answers with a satisfaction (the last turn of
a game has none), so under ``PAPER`` Sim −FB averages over exactly the answers that do not count
as positive feedback. Everything else (phrases, clicks, the decoder, agreement) is the same.
"""

from __future__ import annotations

from dataclasses import dataclass

SIM_NEG_FB_NEGATIVE = "negative"
"""Sim −FB over answers whose satisfaction maps to the ``negative`` class."""
SIM_NEG_FB_NOT_POSITIVE = "not_positive"
"""Sim −FB over answered turns that do not count as positive feedback."""
SIM_NEG_FB_RULES = (SIM_NEG_FB_NEGATIVE, SIM_NEG_FB_NOT_POSITIVE)

WHITESPACE = "whitespace"
ALPHANUMERIC = "alphanumeric"
TOKENIZERS = (WHITESPACE, ALPHANUMERIC)

PER_UTTERANCE = "utterance"
PER_TURN = "turn"
LENGTH_UNITS = (PER_UTTERANCE, PER_TURN)

_INTERVALS = ("bca", "percentile")  # evaluation.stats.bootstrap.METHODS (no import cycle)
_ANSWERS = ("yes", "yes_incomplete", "yes_wrong", "no")


@dataclass(frozen=True)
class Conventions:
    """One set of metric definitions (see the module docstring); checked when built.

    ``positive_answers``: satisfaction answers counted as positive feedback.
    ``sim_neg_fb``: which answers Sim −FB averages over (``SIM_NEG_FB_RULES``).
    ``interval``: the interval method a run uses unless it names one (``bca``/``percentile``).
    ``tokens``: how utterances are split for vocabulary size and utterance length.
    ``length_per``: utterance length's denominator: non-empty utterances or all turns.
    """

    name: str
    positive_answers: tuple[str, ...]
    sim_neg_fb: str
    interval: str
    tokens: str
    length_per: str

    def __post_init__(self) -> None:
        unknown = sorted(set(self.positive_answers) - set(_ANSWERS))
        if not self.positive_answers or unknown:
            raise ValueError(f"positive answers must be some of {_ANSWERS}, got {unknown or '()'}")
        for value, allowed, what in (
            (self.sim_neg_fb, SIM_NEG_FB_RULES, "sim_neg_fb"),
            (self.interval, _INTERVALS, "interval"),
            (self.tokens, TOKENIZERS, "tokens"),
            (self.length_per, LENGTH_UNITS, "length_per"),
        ):
            if value not in allowed:
                raise ValueError(f"{what} must be one of {allowed}, got {value!r}")


PLATFORM = Conventions(
    name="platform",
    positive_answers=("yes", "yes_incomplete", "yes_wrong"),
    sim_neg_fb=SIM_NEG_FB_NEGATIVE,
    interval="bca",
    tokens=WHITESPACE,
    length_per=PER_UTTERANCE,
)
PAPER = Conventions(
    name="paper",
    positive_answers=("yes",),
    sim_neg_fb=SIM_NEG_FB_NOT_POSITIVE,
    interval="percentile",
    tokens=ALPHANUMERIC,
    length_per=PER_TURN,
)
CONVENTIONS: dict[str, Conventions] = {c.name: c for c in (PLATFORM, PAPER)}
NAMES: tuple[str, ...] = tuple(CONVENTIONS)


def conventions_named(name: str) -> Conventions:
    """``PLATFORM`` or ``PAPER`` by name; ``ValueError`` for any other name."""
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise ValueError(f"conventions must be one of {NAMES}, got {name!r}") from None
