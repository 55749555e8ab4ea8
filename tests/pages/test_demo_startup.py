"""``run.py demo`` start-up output: the worker's banner first, the URL and logins last."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE_ID = "5f1e0c0ffee0c0ffee0c0ffe"
LAUNCH = (
    "import argparse, run; run.ensure_environment = lambda extras: None; "
    "run.demo(argparse.Namespace(host='127.0.0.1', port={port}))"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo_output(tmp_path) -> tuple[list[str], list[str]]:
    """Every line ``run.py demo`` prints until its last start-up line (SQLite, no services), and
    the lines it prints after, while it answers one request with a crowd id in its query."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(RESPECT_VAR_DIR=str(tmp_path / "var"), PYTHONPATH=str(ROOT))
    process = subprocess.Popen(
        [sys.executable, "-c", LAUNCH.format(port=free_port())],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if "the platform is running at" in line:
                break
        # A crowd arrival's query string, which an access log would print.
        url = lines[-1].rsplit(" ", 1)[-1] + f"?PROLIFIC_PID={PROBE_ID}"
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(url, timeout=30).close()
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        with contextlib.suppress(ProcessLookupError):  # whatever of its group outlived it
            os.killpg(process.pid, signal.SIGKILL)
    later = [line.rstrip("\n") for line in process.stdout]
    process.stdout.close()
    return lines, later


def test_url_and_logins_are_the_last_lines_after_the_worker_banner(demo_output):
    demo_output, later = demo_output
    assert demo_output, "run.py demo printed nothing"
    assert not [line for line in demo_output + later if PROBE_ID in line]  # daphne -v 0
    port = demo_output[-1].rsplit(":", 1)[-1].rstrip("/")
    assert demo_output[-4:] == [
        "[respect] play a round yourself: open the demo study from "
        f"http://127.0.0.1:{port}/ and follow 'Play a round yourself' (local-play entry, "
        "/play/lobby/<round>/local/); the round board is reachable from the study's page",
        "[respect] press Ctrl-C to stop",
        "[respect] researcher login: researcher / respect-demo   admin login: admin / respect-demo",
        f"[respect] the platform is running at http://127.0.0.1:{port}/",
    ]
    banner = [i for i, line in enumerate(demo_output) if "[queues]" in line]
    assert banner and banner[0] < len(demo_output) - 4
