"""Echoing people's input in error messages without echoing all of it.

An error that quotes the value it refuses helps whoever sent it, but a 10 MB game id or
utterance quoted back fills logs, responses and terminals. ``shown`` is a bounded ``repr``
(``reprlib``: long strings and containers elided, nesting cut off), ``clipped`` shortens text
that is shown as it is (names of fields, game ids); both keep at most ``MAX_ECHO_CHARS``.
"""

from __future__ import annotations

import reprlib

MAX_ECHO_CHARS = 200


def _bounded_repr() -> reprlib.Repr:
    bounded = reprlib.Repr()
    bounded.maxstring = MAX_ECHO_CHARS
    bounded.maxother = MAX_ECHO_CHARS
    bounded.maxlong = 40
    bounded.maxlevel = 3
    return bounded


_REPR = _bounded_repr()


def clipped(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` itself when it has at most ``limit`` characters, else its start and a count."""
    if len(text) <= limit:
        return text
    return f"{text[: limit - 30]}... ({len(text):,} characters)"


def shown(value: object) -> str:
    """A ``repr`` of ``value`` of at most ``MAX_ECHO_CHARS`` characters, for error messages."""
    return clipped(_REPR.repr(value))
