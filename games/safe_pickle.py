"""Reading pickled game exports without running code from the file or trusting its numpy parts.

A pickle names the callables it needs to rebuild objects; ``pickle.load`` imports and calls any
of them (``os.system``, ``builtins.eval``, ...). ``SafeUnpickler.find_class`` never imports
anything: for the few numpy globals that real exports contain it returns this module's own
stand-ins (``games.pickled_numpy``), which rebuild numbers and arrays of plain numeric dtypes
with ``np.frombuffer`` after checking every part of the request; every other global is refused.
numpy's own reconstructors are never reached, so a pickle cannot build an object array over its
own bytes (whose conversion would follow forged pointers) or a dtype from a forged state.
``_codecs.encode`` and ``bytes`` (how protocols 0-2 write ``bytes``) have stand-ins. Containers
and scalars (dict, list, tuple, str, int, float, bool, None, bytes) need no global at all.

Before unpickling, the opcodes are read once (``pickletools.genops``) to refuse what would make
the C unpickler allocate without bound: memo indices far beyond the pickle's own size, lengths
of strings or bytes that the file does not hold. ``load_pickle`` then returns plain Python data
(numpy values as Python numbers and lists, NaN as None) through ``games.plain.plain``, which
bounds the nesting depth and the number of values, so a small pickle that refers to the same
list over and over (a "billion laughs") is refused instead of expanded.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from pathlib import Path
from typing import Any, BinaryIO

from games import pickled_numpy
from games.pickled_numpy import UnsafePickleError
from games.plain import PlainLimitError, plain

__all__ = ["UnsafePickleError", "SafeUnpickler", "load", "load_pickle", "loads"]

MAX_PICKLE_BYTES = 512 * 1024 * 1024
MEMO_OPCODES = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the stand-ins of ``games.pickled_numpy.STAND_INS``."""

    def find_class(self, module: str, name: str) -> Any:
        stand_in = pickled_numpy.STAND_INS.get((module, name))
        if stand_in is None:
            raise UnsafePickleError(
                f"refused to load {module[:100]}.{name[:100]}: pickled game exports may hold "
                "only plain containers, numbers, text and numpy numbers and arrays"
            )
        return stand_in

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused a persistent reference: not a plain data pickle")


def check_opcodes(stream: BinaryIO) -> None:
    """Read the pickle's opcodes once, refusing memo indices beyond the opcodes seen so far.

    A legitimate pickler numbers its memo entries 0, 1, 2, ...; the C unpickler sizes its memo
    table by the largest index, so ``LONG_BINPUT 2**31`` in a few bytes would claim gigabytes.
    ``genops`` also raises ``ValueError`` for a string or bytes longer than what follows it.
    """
    for count, (opcode, argument, _) in enumerate(pickletools.genops(stream)):
        if opcode.name in MEMO_OPCODES and (not isinstance(argument, int) or argument > count):
            raise UnsafePickleError(
                f"refused memo index {argument} at opcode {count}: not a pickle a pickler wrote"
            )


def loads(data: bytes) -> Any:
    """Plain data from pickle bytes (see the module docstring)."""
    return load(io.BytesIO(data))


def load(stream: BinaryIO) -> Any:
    """Plain data from a seekable binary stream (see the module docstring)."""
    start = stream.tell()
    try:
        check_opcodes(stream)
        stream.seek(start)
        value = SafeUnpickler(stream).load()
    except UnsafePickleError:
        raise
    except Exception as error:  # a truncated or garbled file fails in many ways
        raise pickle.UnpicklingError(f"not a readable pickle ({str(error)[:200]})") from error
    try:
        return plain(value)
    except PlainLimitError as error:
        raise pickle.UnpicklingError(f"refused: {error}") from error
    except UnsafePickleError:
        raise
    except TypeError as error:
        raise pickle.UnpicklingError(f"holds a value game records cannot hold: {error}") from error


def load_pickle(path: str | Path) -> Any:
    path = Path(path)
    if path.stat().st_size > MAX_PICKLE_BYTES:
        raise pickle.UnpicklingError(f"{path.name} is larger than {MAX_PICKLE_BYTES} bytes")
    with path.open("rb") as stream:
        return load(stream)
