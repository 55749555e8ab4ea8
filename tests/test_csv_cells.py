"""Every CSV export escapes cells a spreadsheet would run as a formula (CSV injection)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from config.csv_cells import safe_cell

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=CMD|' /C calc'!A0", "'=CMD|' /C calc'!A0"),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("B-FFT", "B-FFT"),
        ("", ""),
        (-0.5, -0.5),
        (-3, -3),
        (None, None),
    ],
)
def test_formula_leading_text_is_escaped_and_numbers_are_not(value, written):
    assert safe_cell(value) == written


def test_metric_exports_escape_a_system_named_like_a_formula():
    from evaluation.csv_exports import all_metrics_csv, metric_csv

    results = {
        "study": "@study",
        "rows": [
            {
                "round": 0,
                "system": "=CMD",
                "games": 1,
                "success_rate": {"value": -0.5, "ci": [-1, 0.5]},
            }
        ],
    }
    assert metric_csv(results, ["success_rate"]) == (
        "round,system,games,metric,value,ci_low,ci_high\n0,'=CMD,1,success_rate,-0.5,-1,0.5\n"
    )
    wide = list(csv.reader(io.StringIO(all_metrics_csv(results))))
    assert wide[1][:3] == ["'@study", "0", "'=CMD"]


def test_annotation_downloads_escape_formula_cells():
    from annotation.api.admins import csv_response

    response = csv_response([["=1+1", 2, "+x"]], ["a", "b", "c"], "f.csv")
    assert response.content.decode() == "a,b,c\r\n'=1+1,2,'+x\r\n"


def test_every_csv_writer_is_the_escaping_one():
    """No module writes CSV past ``config.csv_cells``."""
    writers = []
    packages = ("config", "games", "annotation", "evaluation", "models_svc", "benchmarks")
    for path in (p for package in packages for p in (ROOT / package).glob("**/*.py")):
        if path.name == "csv_cells.py":
            continue
        if re.search(r"csv\.(writer|DictWriter)\(", path.read_text()):
            writers.append(str(path.relative_to(ROOT)))
    assert writers == []
