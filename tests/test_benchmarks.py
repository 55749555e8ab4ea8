"""The benchmark scripts start (``--help``) and share one harness for what they have in common."""

from __future__ import annotations

import ast
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
LIBRARIES = {"harness.py", "models_common.py"}
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if p.name not in LIBRARIES)
SHARED = {"percentile", "free_port", "scratch_database", "start_asgi_servers", "bench_database"}

sys.path.insert(0, str(BENCHMARKS))
import harness  # noqa: E402


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_each_script_starts_and_defines_nothing_the_harness_has(script):
    defined = {
        node.name
        for node in ast.walk(ast.parse(script.read_text()))
        if isinstance(node, ast.FunctionDef)
    }
    assert not defined & SHARED, f"{script.name} re-implements {defined & SHARED}"
    result = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        env=dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings"),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage:")


def test_percentiles_are_linear_interpolation():
    values = [12.0, 3.0, 7.5, 40.0, 9.0, 1.0, 22.0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    for q in (1, 50, 95, 99):
        assert harness.percentile(values, q) == pytest.approx(cuts[q - 1])
    assert harness.percentile(values, 100) == 40.0
    assert harness.percentile([5.0], 95) == 5.0
    assert harness.percentile([], 95) != harness.percentile([], 95)  # NaN


def test_latency_line_reports_the_same_percentiles():
    line = harness.latency_line("answers", [10.0, 20.0, 30.0, 40.0, 50.0])
    assert line == "answers: n=5 p50=30.0 ms p95=48.0 ms p99=49.6 ms max=50.0 ms"
    assert harness.latency_line("pages", []) == "pages: no samples"
