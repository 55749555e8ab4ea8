"""JSON-safe copies of loaded data, with bounds on nesting and size (pure).

``plain`` walks a value without recursion, so a value nested 200,000 levels deep is refused
with a ``PlainLimitError`` instead of overflowing the stack, and counts every value it copies,
so a small pickle whose lists refer to the same list again and again (each reference copied
anew: a "billion laughs") is refused before it fills memory. A value that contains itself is
refused by the depth bound.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

MAX_PLAIN_DEPTH = 100
MAX_PLAIN_VALUES = 5_000_000

CONTAINERS = (Mapping, list, tuple, set, frozenset)
KEY_TYPES = (str, int, float, bool, type(None))


class PlainLimitError(ValueError):
    """A value nested too deeply or holding too many values to import."""


def _scalar(value: Any) -> tuple[bool, Any]:
    """(True, copy) for a value with no parts, else (False, None)."""
    if value is None or type(value) in (bool, str, int):
        return True, value
    if isinstance(value, str):
        return True, str(value)
    if isinstance(value, bool):
        return True, bool(value)
    if isinstance(value, int):
        return True, int(value)
    if isinstance(value, float):
        return True, float(value) if math.isfinite(value) else None
    if isinstance(value, datetime):
        return True, value.isoformat()
    return False, None


def _expanded(value: Any, room: int, limit: int) -> Any:
    """A numpy value (scalar or array, or a stand-in for one) as Python values or lists."""
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        return item()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        size = getattr(value, "size", 0)
        if isinstance(size, int) and size > room:
            raise PlainLimitError(f"more than {limit:,} values in all (an array of {size:,})")
        return tolist()
    raise TypeError(f"{type(value).__name__} is not a plain value")


def _key(key: Any) -> str:
    if not isinstance(key, KEY_TYPES):
        raise TypeError(f"a key of type {type(key).__name__} is not a plain value")
    return str(key)


def plain(
    value: Any, *, max_depth: int = MAX_PLAIN_DEPTH, max_values: int = MAX_PLAIN_VALUES
) -> Any:
    """A JSON-safe copy: numpy scalars and arrays as Python values, NaN and ±inf as None.

    Raises ``PlainLimitError`` for containers nested more than ``max_depth`` levels or more
    than ``max_values`` values in all, and ``TypeError`` for a value that is not plain data.
    """
    root: list[Any] = [None]
    # One frame per open container: its (slot, item) pairs left to copy, its copy, its depth.
    frames: list[tuple[Iterator[tuple[Any, Any]], Any, int]] = [(iter([(0, value)]), root, 0)]
    count = 1
    while frames:
        entries, target, depth = frames[-1]
        entry = next(entries, None)
        if entry is None:
            frames.pop()
            continue
        slot, current = entry
        done, copy = _scalar(current)
        if not done and not isinstance(current, CONTAINERS):
            current = _expanded(current, max_values - count, max_values)
            done, copy = _scalar(current)
            if not done and not isinstance(current, CONTAINERS):
                raise TypeError(f"{type(current).__name__} is not a plain value")
        if done:
            target[slot] = copy
            continue
        if depth >= max_depth:
            raise PlainLimitError(f"nested more than {max_depth} levels deep (or contains itself)")
        count += len(current)
        if count > max_values:
            raise PlainLimitError(f"more than {max_values:,} values in all")
        if isinstance(current, Mapping):
            names = [_key(key) for key in current]
            copy = dict.fromkeys(names)
            children: Iterator[tuple[Any, Any]] = zip(names, current.values(), strict=True)
        else:
            copy = [None] * len(current)
            children = enumerate(current)
        target[slot] = copy
        frames.append((children, copy, depth + 1))
    return root[0]
