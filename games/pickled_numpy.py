"""Stand-ins for the numpy globals of pickled exports: plain numeric values, checked, no objects.

numpy pickles a scalar as ``scalar(dtype, raw_bytes)``, a dtype as ``dtype(spec, align, copy)``
followed by BUILD with its state, and an array as ``_reconstruct(ndarray, (0,), b'b')``
followed by BUILD with ``(version, shape, dtype, is_fortran, raw_bytes)`` or, from protocol 5,
as ``_frombuffer(raw_bytes, dtype, shape, order)``. Handing those globals to a pickle lets it
build arrays over its own bytes with any dtype, object dtypes included, whose conversion then
dereferences attacker-chosen pointers.

The stand-ins here record what the pickle asks for and build it only after checking it: the
dtype spec is one of ``ALLOWED_DTYPES`` (booleans, integers, floats), the dtype
state is exactly the state numpy itself writes for that spec, the shape is a tuple of
non-negative ints with at most ``MAX_ARRAY_VALUES`` values, and the raw bytes are exactly as
long as shape and dtype need. Only then is a numpy array made, with ``np.frombuffer`` (a copy,
so nothing refers to the pickle's buffer). Numbers come back as Python numbers; arrays as
``PickledArray``, which ``games.plain.plain`` turns into lists. A pickle never holds a numpy
object it could BUILD again.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np

ALLOWED_DTYPES = frozenset({"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8"})
BYTE_ORDERS = ("<", ">", "|")
MAX_ARRAY_VALUES = 10_000_000
NUMPY_MODULES = ("numpy.core", "numpy._core")


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for something outside the allow-list; nothing of it was imported or run."""


def _refuse(message: str) -> UnsafePickleError:
    return UnsafePickleError(f"refused {message}")


class PickledDtype:
    """A requested numpy dtype: a spec from ``ALLOWED_DTYPES`` and a byte order numpy writes."""

    def __init__(self, spec: object, align: object = False, copy: object = True) -> None:
        if not isinstance(spec, str) or spec not in ALLOWED_DTYPES:
            raise _refuse(f"dtype {str(spec)[:40]!r}: only plain numeric dtypes are allowed")
        if align not in (False, True) or copy not in (False, True):
            raise _refuse(f"dtype {spec} with arguments {align!r:.20}, {copy!r:.20}")
        self.dtype = np.dtype(spec)

    def __setstate__(self, state: object) -> None:
        order = state[1] if isinstance(state, tuple) and len(state) > 1 else None
        if order not in BYTE_ORDERS:
            raise _refuse(f"dtype state {str(state)[:80]}: not a state numpy writes")
        candidate = self.dtype.newbyteorder(order)
        if candidate.__reduce__()[2] != state:
            raise _refuse(f"dtype state {str(state)[:80]}: not the state of a {self.dtype.str}")
        self.dtype = candidate


class PickledArray:
    """A requested array; it holds a numpy array once its state has been checked and built."""

    def __init__(self) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: object) -> None:
        if self.array is not None:
            raise _refuse("a second state for an array")
        if isinstance(state, tuple) and len(state) == 5:
            version, *state = state
            if version != 1:
                raise _refuse(f"array state version {str(version)[:20]}")
        if not isinstance(state, tuple | list) or len(state) != 4:
            raise _refuse("an array state that is not (shape, dtype, is_fortran, data)")
        shape, dtype, is_fortran, data = state
        if is_fortran not in (False, True):
            raise _refuse("an array state whose order is not a bool")
        self.array = build_array(data, dtype, shape, "F" if is_fortran else "C")

    @property
    def size(self) -> int:
        return self._built().size

    def tolist(self) -> Any:
        return self._built().tolist()

    def _built(self) -> np.ndarray:
        if self.array is None:
            raise _refuse("an array that was never given its data")
        return self.array


def _dtype_of(dtype: object) -> np.dtype:
    if not isinstance(dtype, PickledDtype):
        raise _refuse(f"{type(dtype).__name__} as a dtype: only numpy.dtype(...) of the pickle")
    return dtype.dtype


def _shape_of(shape: object) -> tuple[int, ...]:
    if not isinstance(shape, tuple) or len(shape) > 32:
        raise _refuse("an array shape that is not a tuple of at most 32 ints")
    if not all(type(n) is int and n >= 0 for n in shape):
        raise _refuse("an array shape with a value that is not a non-negative int")
    if math.prod(shape) > MAX_ARRAY_VALUES:
        raise _refuse(f"an array of {math.prod(shape)} values (at most {MAX_ARRAY_VALUES})")
    return shape


def build_array(data: object, dtype: object, shape: object, order: object) -> np.ndarray:
    """``data`` as an array of ``shape``, after checking each part (see the module docstring)."""
    numpy_dtype = _dtype_of(dtype)
    checked_shape = _shape_of(shape)
    if order not in ("C", "F"):
        raise _refuse(f"array order {str(order)[:10]!r}")
    if not isinstance(data, bytes | bytearray):
        raise _refuse(f"array data of type {type(data).__name__}: only raw bytes")
    needed = math.prod(checked_shape) * numpy_dtype.itemsize
    if len(data) != needed:
        raise _refuse(f"array data of {len(data)} bytes; shape and dtype need {needed}")
    flat = np.frombuffer(bytes(data), dtype=numpy_dtype)
    return flat.reshape(checked_shape, order=order)


def make_dtype(spec: object, align: object = False, copy: object = True) -> PickledDtype:
    """``numpy.dtype``; a function, not a class, so that NEWOBJ cannot skip the checks."""
    return PickledDtype(spec, align, copy)


def scalar(dtype: object, data: object) -> bool | int | float:
    """``numpy.core.multiarray.scalar``: one number of ``dtype`` from its raw bytes."""
    numpy_dtype = _dtype_of(dtype)
    if not isinstance(data, bytes) or len(data) != numpy_dtype.itemsize:
        raise _refuse(f"scalar data that is not {numpy_dtype.itemsize} raw bytes")
    return np.frombuffer(data, dtype=numpy_dtype)[0].item()


def reconstruct(cls: object, shape: object = (0,), typecode: object = b"b") -> PickledArray:
    """``numpy.core.multiarray._reconstruct``: an empty array that its BUILD state fills."""
    if cls is not ndarray:
        raise _refuse("_reconstruct of anything but numpy.ndarray")
    if shape != (0,) or typecode != b"b":
        raise _refuse("_reconstruct arguments numpy does not write")
    return PickledArray()


def frombuffer(data: object, dtype: object, shape: object, order: object) -> PickledArray:
    """``numpy.core.numeric._frombuffer`` (protocol 5): an array from raw bytes, in one step."""
    array = PickledArray()
    array.array = build_array(data, dtype, shape, order)
    return array


def ndarray(*args: object, **kwargs: object) -> None:
    """``numpy.ndarray`` is only a marker for ``_reconstruct``; calling it is refused."""
    raise _refuse("numpy.ndarray(...): arrays are rebuilt only from their pickled state")


def latin1_encode(text: object, encoding: object = "utf-8") -> bytes:
    """What protocols 0-2 call to rebuild ``bytes``; only the latin-1 form pickle writes."""
    if encoding != "latin1" or not isinstance(text, str):
        raise _refuse(f"_codecs.encode with encoding {str(encoding)[:40]!r}")
    return text.encode("latin1")


def empty_bytes(*args: object) -> bytes:
    """What protocols 0-2 call to rebuild ``b""`` (the data of an empty array): no arguments."""
    if args:
        raise _refuse("bytes(...) with arguments")
    return b""


def _stand_ins() -> dict[tuple[str, str], Callable[..., Any]]:
    table: dict[tuple[str, str], Callable[..., Any]] = {
        ("numpy", "dtype"): make_dtype,
        ("numpy", "ndarray"): ndarray,
        ("_codecs", "encode"): latin1_encode,
        ("__builtin__", "bytes"): empty_bytes,
        ("builtins", "bytes"): empty_bytes,
    }
    for package in NUMPY_MODULES:
        table[(f"{package}.multiarray", "scalar")] = scalar
        table[(f"{package}.multiarray", "_reconstruct")] = reconstruct
        table[(f"{package}.numeric", "_frombuffer")] = frombuffer
    return table


STAND_INS = _stand_ins()
