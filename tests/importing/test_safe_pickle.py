"""The allow-list unpickler: plain data and numpy scalars load, anything else never runs."""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess

import numpy as np
import pytest

from games import safe_pickle
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
