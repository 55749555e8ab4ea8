"""Decoding JSON from people and files with bounds on nesting, size and number of values.

Python's ``json`` decodes nested arrays and objects recursively: a body of ``[`` repeated ten
thousand times raises ``RecursionError``, which callers that catch ``ValueError`` (DRF's parser,
the websocket consumers) turn into a server error. ``loads`` here raises ``JSONLimitError`` (a
``ValueError``) instead, for too much nesting, too many values, too much text, and for numbers
too long for Python's integer conversion limit, so every caller has one error to catch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

MAX_JSON_DEPTH = 64
MAX_JSON_VALUES = 5_000_000


class JSONLimitError(ValueError):
    """JSON that is not valid, or nested too deeply, or too large to accept."""


def check_shape(value: Any, *, max_depth: int, max_values: int) -> None:
    """Raise ``JSONLimitError`` if decoded JSON nests deeper than ``max_depth`` or is too big.

    Walks without recursion, one iterator per open container, so memory grows with depth only.
    """
    frames: list[tuple[Iterator[Any], int]] = [(iter([value]), 0)]
    count = 1
    while frames:
        children, depth = frames[-1]
        current = next(children, frames)
        if current is frames:
            frames.pop()
            continue
        if not isinstance(current, dict | list):
            continue
        if depth >= max_depth:
            raise JSONLimitError(f"nested more than {max_depth} levels deep")
        count += len(current)
        if count > max_values:
            raise JSONLimitError(f"more than {max_values:,} values")
        frames.append((iter(current.values() if isinstance(current, dict) else current), depth + 1))


def loads(
    text: str | bytes,
    *,
    max_depth: int = MAX_JSON_DEPTH,
    max_values: int = MAX_JSON_VALUES,
    max_chars: int | None = None,
    parse_constant: Callable[[str], Any] | None = None,
) -> Any:
    """``json.loads`` whose only errors are ``ValueError``s (see the module docstring).

    Bad syntax raises ``json.JSONDecodeError`` as usual (callers can report its line and
    column); every limit raises ``JSONLimitError``.
    """
    if max_chars is not None and len(text) > max_chars:
        raise JSONLimitError(f"longer than {max_chars:,} characters")
    try:
        value = json.loads(text, parse_constant=parse_constant)
    except json.JSONDecodeError:
        raise
    except RecursionError as error:
        raise JSONLimitError(f"nested more than {max_depth} levels deep") from error
    except ValueError as error:  # e.g. an integer longer than sys.get_int_max_str_digits()
        raise JSONLimitError(str(error)[:200]) from error
    check_shape(value, max_depth=max_depth, max_values=max_values)
    return value
