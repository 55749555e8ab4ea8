"""Reading pickled game exports without running code from the file.

A pickle names the callables it needs to rebuild objects; ``pickle.load`` imports and calls any
of them (``os.system``, ``builtins.eval``, ...). ``SafeUnpickler.find_class`` lets through only
the few numpy reconstructors that real exports contain (numpy scalars such as ``float64``, their
dtypes, plain arrays), plus a latin-1-only stand-in for ``_codecs.encode`` (how protocols 0-2
write ``bytes``), and refuses every other global before it is imported or called. Containers
and scalars (dict, list, tuple, str, int, float, bool, None, bytes) need no global at all.
``load_pickle`` then returns plain Python data: numpy values as Python numbers and lists, NaN as
None.
"""

from __future__ import annotations

import importlib
import io
import pickle
from pathlib import Path
from typing import Any, BinaryIO

from games.records import plain

MAX_PICKLE_BYTES = 512 * 1024 * 1024

ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
    }
)


def _latin1_encode(text: str, encoding: str = "utf-8") -> bytes:
    """What protocols 0-2 call to rebuild ``bytes``; only the latin-1 form pickle writes."""
    if encoding != "latin1" or not isinstance(text, str):
        raise UnsafePickleError(f"refused _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list; nothing of it was imported or run."""


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only ``ALLOWED_GLOBALS``."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        if (module, name) not in ALLOWED_GLOBALS:
            raise UnsafePickleError(
                f"refused to load {module}.{name}: pickled game exports may hold only plain "
                "containers, numbers, text and numpy scalars"
            )
        return getattr(importlib.import_module(module), name)

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused a persistent reference: not a plain data pickle")


def loads(data: bytes) -> Any:
    """Plain data from pickle bytes (see the module docstring)."""
    return load(io.BytesIO(data))


def load(stream: BinaryIO) -> Any:
    try:
        value = SafeUnpickler(stream).load()
    except UnsafePickleError:
        raise
    except Exception as error:  # a truncated or garbled file fails in many ways
        raise pickle.UnpicklingError(f"not a readable pickle ({error})") from error
    try:
        return plain(value)
    except TypeError as error:
        raise pickle.UnpicklingError(f"holds a value game records cannot hold: {error}") from error


def load_pickle(path: str | Path) -> Any:
    path = Path(path)
    if path.stat().st_size > MAX_PICKLE_BYTES:
        raise pickle.UnpicklingError(f"{path.name} is larger than {MAX_PICKLE_BYTES} bytes")
    with path.open("rb") as stream:
        return load(stream)
