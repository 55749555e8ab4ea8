"""``run.py demo`` start-up output: the worker's banner first, the URL and logins last."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAUNCH = (
    "import argparse, run; run.ensure_environment = lambda extras: None; "
    "run.demo(argparse.Namespace(host='127.0.0.1', port={port}))"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo_output(tmp_path) -> list[str]:
    """Every line ``run.py demo`` prints until its last start-up line (SQLite, no services)."""
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
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return lines


def test_url_and_logins_are_the_last_lines_after_the_worker_banner(demo_output):
    assert demo_output, "run.py demo printed nothing"
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
