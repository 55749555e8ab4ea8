"""The allow-list unpickler: plain data and numpy scalars load, anything else never runs."""

from __future__ import annotations

import builtins
import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from games import pickled_numpy, safe_pickle
from games.safe_pickle import UnsafePickleError


class Hostile:
    """Pickles to a call of ``function(*args)``, the classic code-execution pickle."""

    def __init__(self, function, *args):
        self.function = function
        self.args = args

    def __reduce__(self):
        return self.function, self.args


def hostile_payloads(marker: str) -> dict[str, Hostile]:
    return {
        "builtins.open": Hostile(builtins.open, marker, "w"),
        "os.system": Hostile(os.system, f"touch {marker}"),
        "builtins.eval": Hostile(builtins.eval, f"open({marker!r}, 'w')"),
        "builtins.exec": Hostile(builtins.exec, f"open({marker!r}, 'w')"),
        "subprocess.call": Hostile(subprocess.call, ["touch", marker]),
    }


def test_the_hostile_pickle_really_runs_code_under_plain_pickle(tmp_path):
    marker = tmp_path / "proof"
    pickle.loads(pickle.dumps(Hostile(builtins.open, str(marker), "w")))
    assert marker.exists()


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
@pytest.mark.parametrize("name", sorted(hostile_payloads("x")))
def test_hostile_globals_are_refused_before_they_run(tmp_path, name, protocol):
    marker = tmp_path / "marker"
    payload = {"game": {"context": ["a"], "evil": hostile_payloads(str(marker))[name]}}
    data = pickle.dumps(payload, protocol=protocol)
    with pytest.raises(UnsafePickleError, match="refused to load"):
        safe_pickle.loads(data)
    assert not marker.exists()


def test_refusal_names_the_global(tmp_path):
    data = pickle.dumps(Hostile(os.system, "true"))
    with pytest.raises(UnsafePickleError) as caught:
        safe_pickle.loads(data)
    assert f"{os.system.__module__}.system" in str(caught.value)


def test_classes_other_than_plain_containers_are_refused():
    from collections import OrderedDict
    from datetime import date

    for value in (OrderedDict(a=1), date(2024, 1, 1), {1, 2}.__class__):
        with pytest.raises(UnsafePickleError):
            safe_pickle.loads(pickle.dumps(value))


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_plain_data_and_numpy_scalars_load_as_python_values(protocol):
    payload = {
        "a": [1, 2.5, "x", None, True, (1, 2)],
        "f": np.float64(12.26),
        "i": np.int64(7),
        "nan": float("nan"),
        "npnan": np.float64("nan"),
        "arr": np.array([1.0, np.nan]),
    }
    value = safe_pickle.loads(pickle.dumps(payload, protocol=protocol))
    assert value["a"] == [1, 2.5, "x", None, True, [1, 2]]
    assert value["f"] == 12.26 and type(value["f"]) is float
    assert value["i"] == 7 and type(value["i"]) is int
    assert value["nan"] is None and value["npnan"] is None
    assert value["arr"] == [1.0, None]


def test_values_that_are_not_json_data_are_refused():
    with pytest.raises(pickle.UnpicklingError, match="bytes is not a plain value"):
        safe_pickle.loads(pickle.dumps({"b": b"raw"}, protocol=0))


def test_garbage_is_an_unpickling_error():
    with pytest.raises(pickle.UnpicklingError, match="not a readable pickle"):
        safe_pickle.loads(b"\x80\x04this is not a pickle")


def test_the_sample_pickle_loads_like_the_sample_json(sample_data):
    from tests.sample_files import SAMPLE_PKL

    loaded = safe_pickle.load_pickle(SAMPLE_PKL)
    assert loaded == sample_data


# numpy values of real exports, rebuilt by the stand-ins -----------------------------------

NUMPY_VALUES = {
    "ints": np.array([1, -2, 3], dtype=np.int64),
    "int8": np.array([-128, 127], dtype=np.int8),
    "uint16": np.array([0, 65535], dtype=np.uint16),
    "big_endian": np.array([1, 2, 258], dtype=">i4"),
    "floats": np.array([0.5, -1.25, 3e300]),
    "float32": np.array([1.5, 2.25], dtype=np.float32),
    "float16": np.array([0.5], dtype=np.float16),
    "bools": np.array([True, False, True]),
    "matrix": np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
    "fortran": np.asfortranarray(np.array([[1, 2], [3, 4], [5, 6]], dtype=np.int32)),
    "sliced": np.arange(10.0)[::3],
    "empty": np.zeros((0, 3)),
    "zero_d": np.array(7.5),
    "f8": np.float64(12.26),
    "f4": np.float32(0.25),
    "i8": np.int64(-7),
    "u1": np.uint8(200),
    "b": np.bool_(True),
}

EXPECTED_VALUES = {
    "ints": [1, -2, 3],
    "int8": [-128, 127],
    "uint16": [0, 65535],
    "big_endian": [1, 2, 258],
    "floats": [0.5, -1.25, 3e300],
    "float32": [1.5, 2.25],
    "float16": [0.5],
    "bools": [True, False, True],
    "matrix": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]],
    "fortran": [[1, 2], [3, 4], [5, 6]],
    "sliced": [0.0, 3.0, 6.0, 9.0],
    "empty": [],
    "zero_d": 7.5,
    "f8": 12.26,
    "f4": 0.25,
    "i8": -7,
    "u1": 200,
    "b": True,
}


@pytest.mark.parametrize("protocol", range(6))
def test_numpy_arrays_and_scalars_load_as_numpy_would_give_them(protocol):
    data = pickle.dumps(NUMPY_VALUES, protocol=protocol)
    loaded = safe_pickle.loads(data)
    assert loaded == EXPECTED_VALUES
    assert {name: value.tolist() for name, value in pickle.loads(data).items()} == loaded
    assert [type(loaded[name]) for name in ("f8", "i8", "b")] == [float, int, bool]


def test_the_same_array_twice_loads_twice():
    array = np.array([1, 2])
    assert safe_pickle.loads(pickle.dumps({"a": array, "b": array})) == {"a": [1, 2], "b": [1, 2]}


@pytest.mark.parametrize("protocol", [2, 5])
def test_arrays_of_other_dtypes_are_refused(protocol):
    for value in (np.array(["a"]), np.array([1 + 2j]), np.array([None, 1], dtype=object)):
        with pytest.raises(UnsafePickleError, match="only plain numeric dtypes"):
            safe_pickle.loads(pickle.dumps(value, protocol=protocol))


# Hostile numpy pickles: run in a child process, so that a crash fails the test -------------

HOSTILE_DIR = Path(__file__).resolve().parents[1] / "data" / "hostile"
CHILD = """
import sys
from games import pickled_numpy, safe_pickle
try:
    safe_pickle.load_pickle(sys.argv[1])
except safe_pickle.UnsafePickleError as error:
    print("REFUSED", error)
else:
    print("LOADED")
"""


def load_in_child(path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("object_array.pkl", "refused dtype 'O8': only plain numeric dtypes are allowed"),
        ("object_field_dtype.pkl", "refused dtype 'V8': only plain numeric dtypes are allowed"),
        (
            "dtype_wrong_itemsize.pkl",
            "refused dtype state (3, '<', None, None, None, 16, -1, 0): not the state of a <f8",
        ),
    ],
)
def test_pickles_that_forge_object_arrays_are_refused_without_crashing(name, message):
    finished = load_in_child(HOSTILE_DIR / name)
    assert (finished.returncode, finished.stderr) == (0, "")
    assert finished.stdout == f"REFUSED {message}\n"


def test_a_forged_object_array_crashes_a_plain_unpickler():
    """The hostile sample is real: numpy's own reconstructors dereference its bytes."""
    code = "import pickle, sys; pickle.load(open(sys.argv[1], 'rb')).tolist()"
    finished = subprocess.run(
        [sys.executable, "-c", code, str(HOSTILE_DIR / "object_field_dtype.pkl")],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert finished.returncode < 0  # killed by a signal (SIGSEGV), not an exception


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ((3, "|", None, None, None, -1, -1, 0), "not the state of a <f8"),
        ((3, "<", None, ("a",), None, -1, -1, 0), "not the state of a <f8"),
        ((3, "<", None, None, None, -1, -1, 63), "not the state of a <f8"),
        ((3, "x"), "not a state numpy writes"),
        ("state", "not a state numpy writes"),
    ],
)
def test_dtype_states_numpy_would_not_write_are_refused(state, message):
    dtype = pickled_numpy.make_dtype("f8", False, True)
    with pytest.raises(UnsafePickleError, match=re.escape(message)):
        dtype.__setstate__(state)


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ((1, (3,), "f8", False, b"\0" * 24), "str as a dtype"),
        ((1, (3,), "DTYPE", False, b"\0" * 16), "array data of 16 bytes; shape and dtype need 24"),
        ((1, (-1,), "DTYPE", False, b""), "not a non-negative int"),
        ((1, (10**6, 10**6), "DTYPE", False, b""), "an array of 1000000000000 values"),
        ((1, (2,), "DTYPE", False, [1, 2]), "array data of type list"),
        ((1, (2,), "DTYPE", 2, b"\0" * 16), "order is not a bool"),
        ((2, (2,), "DTYPE", False, b"\0" * 16), "array state version 2"),
    ],
)
def test_array_states_are_checked_before_an_array_is_built(state, message):
    dtype = pickled_numpy.make_dtype("f8", False, True)
    state = tuple(dtype if part == "DTYPE" else part for part in state)
    array = pickled_numpy.reconstruct(pickled_numpy.ndarray, (0,), b"b")
    with pytest.raises(UnsafePickleError, match=re.escape(message)):
        array.__setstate__(state)
    assert array.array is None
