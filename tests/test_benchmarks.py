"""Every benchmark script runs to completion at a smoke size and prints its result lines.

The scripts are the platform's speed claims; run here at a size of seconds on the real services
they use (PostgreSQL, Redis, web server processes, tiny random models on the CPU), they cannot
rot unnoticed. No timing is asserted: the figures stay in the scripts' output. A script added
to ``benchmarks/`` fails ``test_every_script_has_a_smoke_size`` until it is given one in
``SMOKE`` (its arguments and the result lines it must print).
"""

from __future__ import annotations

import ast
import os
import re
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
LIBRARIES = {"harness.py", "models_common.py", "play_clients.py"}
SCRIPTS = sorted(p for p in BENCHMARKS.glob("*.py") if p.name not in LIBRARIES)
SHARED = {"percentile", "free_port", "scratch_database", "start_asgi_servers", "bench_database"}

sys.path.insert(0, str(BENCHMARKS))
import harness  # noqa: E402


@dataclass(frozen=True)
class Smoke:
    """A script's smoke size: its arguments, the result lines it must print (regular
    expressions, each matching a whole line), and the marks of what it needs."""

    args: list[str]
    lines: list[str]
    marks: list[pytest.MarkDecorator] = field(default_factory=list)


TINY_CPU = ["--device", "cpu"]
SMOKE: dict[str, Smoke] = {
    "annotation_load": Smoke(
        ["--smoke"],
        [
            r"annotators 3, 1 uvicorn processes.*",
            r"wall [\d.]+s, requests \d+ .*",
            r" *page loads: n=\d+ p50=.* ms",
            r" *answers: n=\d+ p50=.* ms",
            r"games submitted \d+, sessions completed 3, double submits acknowledged \d+",
            r"answers sent \d+, storage problems 0, errors 0",
            r"PASS \(smoke: every session completes, every answer stored once; latency .*\)",
        ],
    ),
    "evaluation_metrics": Smoke(
        ["--resamples", "200", "--scipy-resamples", "20", "--repeat", "1"],
        [
            r"study: 49 groups, 7230 games, 55004 turns, .*",
            r"engine: \d+ metric intervals .*, 200 resamples: .*",
            r"scipy.stats.bootstrap \(BCa\) metric by metric: \d+ calls, .*",
            r"speed-up: .*× wall, .*× CPU",
            r"example row \(round 6, B-FFT\): success rate .*",
        ],
    ),
    "import_export": Smoke(
        ["--games", "20"],
        [
            r"20 games, \d+ turns, source file \d+ MiB",
            r"import into PostgreSQL +[\d.]+ s .*",
            r"import_games total \(read \+ import\) +[\d.]+ s",
            r"import again \(all skipped\) +[\d.]+ s .*",
            r"export JSONL +[\d.]+ s .*",
            r"parse \+ validate the export +[\d.]+ s .*",
        ],
    ),
    "lexicon_quality": Smoke(
        ["--games", "20", "--seeds", "7"],
        [
            r"set +decoder +windows +good +pos +precision +recall +secs",
            r"generated, seed 7 \(20 games\) .*",
            r"samples \(24 games\) .*",
        ],
    ),
    "models_decode": Smoke(
        ["--tiny", "--turns", "16", "--batch-size", "8", *TINY_CPU],
        [r"tiny random IDEFICS2-architecture model on cpu: 16 turns \(binary\) in .* turns/s.*"],
        [pytest.mark.ml],
    ),
    # The GPU figure's script, in its full-size shape cut to one text and one vision layer.
    "models_decode_gpu": Smoke(
        ["--layers", "1", "--vision-layers", "1", "--turns", "4", "--batch-size", "2", *TINY_CPU],
        [
            r"full-size random model: [\d.]+ B parameters on cpu .*",
            r"random-weight IDEFICS2-8B shape on cpu: 4 turns \(binary\) in .* turns/s.*",
        ],
        [pytest.mark.ml],
    ),
    "models_lexicon": Smoke(
        ["--turns", "400", "--repeats", "1", "--db"],
        [
            r"lexicon decoder, binary: 400 turns in .* turns/s",
            r"labels: \{.*\}",
            r"through postgresql: 400 turns in 50 games, \d+ labelled and stored in .*",
        ],
    ),
    "models_policy": Smoke(
        ["--tiny", "--games", "2", "--rounds", "1", "--history", "2", "--max-batch", "2"]
        + TINY_CPU,
        [
            r"tiny random IDEFICS2-architecture model on cpu: 2 games asking at once, .*",
            r"  first turn \(encodes the game's images\): p50 [\d.]+ s, p95 [\d.]+ s",
        ],
        [pytest.mark.ml],
    ),
    "models_serving": Smoke(
        ["--smoke"],
        [
            r"tiny random IDEFICS2 on cpu: \d+ games, 2 rounds, 6 adapters",
            r"base copies loaded: 1",
            r"batched speed-up: [\d.]+×",
            r"live p95 during training: [\d.]+× idle",
        ],
        [pytest.mark.ml],
    ),
    "play_load": Smoke(
        ["--smoke"],
        [
            r"live-play load: 3 games, 6 clients, daphne: .*",
            r"games created 3  completed 3  successful 3  turns \d+  turns lost 0 .*",
            r"wall .* client errors 0 \[\]",
            r"utterance -> listener \(ms\) +n=\d+ .*",
            r"submit -> speaker \(ms\) +n=\d+ .*",
            r"lobby to paired \(s\) +n=6 .*",
            r"PASS \(smoke: every game completes, no turn lost; latency not judged\)",
        ],
    ),
    "simulation": Smoke(
        ["--games", "2"],
        [
            r"random policy, 2 games \(the engine's own cost\):",
            r"tiny IDEFICS2 policy through a gpu worker, 2 games:",
            r" +end to end \(worker start, play, decoding, training, metrics\): \d+ s",
        ],
        [pytest.mark.ml, pytest.mark.celery],
    ),
    "training": Smoke(
        ["--games", "2", "--turns", "2", "--repeats", "1", *TINY_CPU],
        [
            r"tiny random IDEFICS2-architecture model on cpu: 2 games × 2 turns .*",
            r"  packed: +[\d.]+ turn-examples/s \(best of 1\)",
            r"packing speed-up: [\d.]+×",
        ],
        [pytest.mark.ml],
    ),
}


def test_every_script_has_a_smoke_size():
    """A new script fails here until it is registered in ``SMOKE``."""
    assert sorted(SMOKE) == [p.stem for p in SCRIPTS]


@pytest.fixture(scope="module")
def bench_env() -> dict[str, str]:
    """The environment of a smoke run: a migrated scratch database beside the tests' own
    (``<name>_bench_smoke``) and the tests' Redis, so no benchmark writes where tests read."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    env = dict(
        os.environ,
        DATABASE_URL=harness.scratch_database(base, "_bench_smoke"),
        REDIS_URL=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        DJANGO_SETTINGS_MODULE="config.settings",
        PYTHONUNBUFFERED="1",
    )
    env.pop("TEST_DB_SUFFIX", None)
    migrate = [sys.executable, "manage.py", "migrate", "-v0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, timeout=600)
    return env


@pytest.mark.parametrize(
    "name", [pytest.param(name, marks=smoke.marks) for name, smoke in SMOKE.items()]
)
def test_each_script_runs_at_its_smoke_size_and_prints_its_results(name, bench_env):
    smoke = SMOKE[name]
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), *smoke.args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=bench_env,
        timeout=600,
    )
    output = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\n{output}\n{result.stderr[-3000:]}"
    printed = output.splitlines()
    missing = [line for line in smoke.lines if not any(re.fullmatch(line, out) for out in printed)]
    assert not missing, f"result lines not printed: {missing}\n--- output:\n{output}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_each_script_defines_nothing_the_harness_has(script):
    defined = {
        node.name
        for node in ast.walk(ast.parse(script.read_text()))
        if isinstance(node, ast.FunctionDef)
    }
    assert not defined & SHARED, f"{script.name} re-implements {defined & SHARED}"


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
