"""Writes the hostile sample files of this folder: ``python tests/data/hostile/make_hostile.py``.

Each file is a few hundred bytes to a few kilobytes and must be refused by ``import_games``
with a clean "nothing imported" message and nothing written; ``EXPECTED`` holds each message.
The pickles are assembled opcode by opcode (``pickletools`` names them), so that they can say
what no pickler would write.
"""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

HOSTILE_DIR = Path(__file__).resolve().parent
DEEP = 5000


def text(value: str) -> bytes:
    data = value.encode()
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def raw(value: bytes) -> bytes:
    return pickle.BINBYTES + struct.pack("<I", len(value)) + value


def small_int(value: int) -> bytes:
    return pickle.BININT + struct.pack("<i", value)


def glob(module: str, name: str) -> bytes:
    return pickle.GLOBAL + f"{module}\n{name}\n".encode()


def numpy_dtype(spec: str) -> bytes:
    """``numpy.dtype(spec, False, True)`` as numpy writes it, without its BUILD state."""
    return glob("numpy", "dtype") + text(spec) + pickle.NEWFALSE + pickle.NEWTRUE + b"\x87R"


def program(body: bytes) -> bytes:
    return pickle.PROTO + b"\x03" + body + pickle.STOP


def object_array() -> bytes:
    """``numpy.ndarray((2,), dtype('O'), buffer)``: an object array whose pointers are bytes."""
    return program(
        glob("numpy", "ndarray")
        + small_int(2)
        + pickle.TUPLE1
        + numpy_dtype("O8")
        + raw(b"\x41" * 16)
        + pickle.TUPLE3
        + pickle.REDUCE
    )


def object_field_dtype() -> bytes:
    """A void dtype whose BUILD state declares an object field (flags claim no objects)."""
    fields = pickle.EMPTY_DICT + text("a") + numpy_dtype("O8") + small_int(0) + pickle.TUPLE2
    state = (
        pickle.MARK
        + small_int(3)
        + text("|")
        + pickle.NONE
        + text("a")
        + pickle.TUPLE1
        + fields
        + pickle.SETITEM
        + small_int(8)
        + small_int(1)
        + small_int(0)
        + pickle.TUPLE
    )
    dtype = numpy_dtype("V8") + state + pickle.BUILD
    return program(
        glob("numpy", "ndarray")
        + small_int(2)
        + pickle.TUPLE1
        + dtype
        + raw(b"\x41" * 16)
        + pickle.TUPLE3
        + pickle.REDUCE
    )


def dtype_state(spec: str, order: str, elsize: int) -> bytes:
    return (
        pickle.MARK
        + small_int(3)
        + text(order)
        + pickle.NONE * 3
        + small_int(elsize)
        + small_int(-1)
        + small_int(0)
        + pickle.TUPLE
    )


def reconstructed(shape: tuple[int, ...], dtype: bytes, data: bytes) -> bytes:
    """``_reconstruct(ndarray, (0,), b'b')`` and BUILD ``(1, shape, dtype, False, data)``."""
    head = (
        glob("numpy.core.multiarray", "_reconstruct")
        + glob("numpy", "ndarray")
        + small_int(0)
        + pickle.TUPLE1
        + raw(b"b")
        + pickle.TUPLE3
        + pickle.REDUCE
    )
    dims = pickle.MARK + b"".join(small_int(n) for n in shape) + pickle.TUPLE
    state = pickle.MARK + small_int(1) + dims + dtype + pickle.NEWFALSE + raw(data) + pickle.TUPLE
    return head + state + pickle.BUILD


def dtype_wrong_itemsize() -> bytes:
    """A float64 dtype whose state claims 16-byte items, in an array sized for that claim."""
    dtype = numpy_dtype("f8") + dtype_state("f8", "<", 16) + pickle.BUILD
    return program(reconstructed((2,), dtype, b"\x00" * 32))


def zero_stride_array() -> bytes:
    """``ndarray((100000, 100000), 'f8', buffer, 0, (0, 0))``: 8 bytes seen as 80 GB."""
    shape = small_int(100_000) + small_int(100_000) + pickle.TUPLE2
    strides = small_int(0) + small_int(0) + pickle.TUPLE2
    return program(
        glob("numpy", "ndarray")
        + pickle.MARK
        + shape
        + numpy_dtype("f8")
        + raw(b"\x00" * 8)
        + small_int(0)
        + strides
        + pickle.TUPLE
        + pickle.REDUCE
    )


def array_too_large() -> bytes:
    """An array declaring 2**60 values, with 8 bytes of data."""
    dtype = numpy_dtype("f8")
    shape = (2**30, 2**30)
    return program(reconstructed(shape, dtype, b"\x00" * 8))


def memo_index() -> bytes:
    """``LONG_BINPUT 2**31 - 1``: the C unpickler would size its memo for 2**31 entries."""
    return program(pickle.NONE + pickle.LONG_BINPUT + struct.pack("<I", 2**31 - 1))


def billion_laughs() -> bytes:
    """Ten lists of ten references to the list before: 10**9 strings once expanded."""
    body = pickle.EMPTY_LIST + pickle.MARK + text("lol") * 10 + pickle.APPENDS
    for level in range(1, 9):
        body += pickle.BINPUT + bytes([level - 1]) + pickle.POP
        previous = pickle.BINGET + bytes([level - 1])
        body += pickle.EMPTY_LIST + pickle.MARK + previous * 10 + pickle.APPENDS
    return program(pickle.EMPTY_DICT + text("laughs") + body + pickle.SETITEM)


def deep_nesting() -> bytes:
    """Lists nested ``DEEP`` levels deep."""
    return program(pickle.EMPTY_LIST * DEEP + pickle.APPEND * (DEEP - 1))


def self_reference() -> bytes:
    """A list that contains itself."""
    return program(
        pickle.EMPTY_LIST + pickle.BINPUT + b"\x00" + pickle.BINGET + b"\x00" + pickle.APPEND
    )


def deep_json() -> str:
    return '{"g1": {"context": ' + "[" * DEEP + "]" * DEEP + "}}"


def long_integer_json() -> str:
    return '{"g1": {"turn": ' + "9" * 5000 + "}}"


def deep_jsonl() -> str:
    return json.dumps({"game_id": "g1"})[:-1] + ', "metadata": ' + "[" * DEEP + "]" * DEEP + "}\n"


FILES = {
    "object_array.pkl": object_array,
    "object_field_dtype.pkl": object_field_dtype,
    "dtype_wrong_itemsize.pkl": dtype_wrong_itemsize,
    "zero_stride_array.pkl": zero_stride_array,
    "array_too_large.pkl": array_too_large,
    "memo_index.pkl": memo_index,
    "billion_laughs.pkl": billion_laughs,
    "deep_nesting.pkl": deep_nesting,
    "self_reference.pkl": self_reference,
    "deep_nesting.json": deep_json,
    "long_integer.json": long_integer_json,
    "deep_nesting.jsonl": deep_jsonl,
}

# What ``import_games`` says after "nothing imported: " for each file.
EXPECTED = {
    "object_array.pkl": "object_array.pkl: refused dtype 'O8': only plain numeric dtypes are "
    "allowed",
    "object_field_dtype.pkl": "object_field_dtype.pkl: refused dtype 'V8': only plain numeric "
    "dtypes are allowed",
    "dtype_wrong_itemsize.pkl": "dtype_wrong_itemsize.pkl: refused dtype state "
    "(3, '<', None, None, None, 16, -1, 0): not the state of a <f8",
    "zero_stride_array.pkl": "zero_stride_array.pkl: refused numpy.ndarray(...): arrays are "
    "rebuilt only from their pickled state",
    "array_too_large.pkl": "array_too_large.pkl: refused an array of 1152921504606846976 values "
    "(at most 10000000)",
    "memo_index.pkl": "memo_index.pkl: refused memo index 2147483647 at opcode 2: not a pickle "
    "a pickler wrote",
    "billion_laughs.pkl": "billion_laughs.pkl: refused: more than 5,000,000 values in all",
    "deep_nesting.pkl": "deep_nesting.pkl: refused: nested more than 100 levels deep "
    "(or contains itself)",
    "self_reference.pkl": "self_reference.pkl: refused: nested more than 100 levels deep "
    "(or contains itself)",
    "deep_nesting.json": "deep_nesting.json: refused: nested more than 64 levels deep",
    "long_integer.json": "long_integer.json: refused: Exceeds the limit (4300 digits) for "
    "integer string conversion: value has 5000 digits; use sys.set_int_max_str_digits() to "
    "increase the limit",
    "deep_nesting.jsonl": "line 1: refused: nested more than 64 levels deep",
}


def main() -> None:
    for name, make in FILES.items():
        content = make()
        path = HOSTILE_DIR / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


if __name__ == "__main__":
    main()
