"""``run.py demo`` start-up and shut-down: the worker's banner first, the URL and logins last;
SIGTERM and SIGINT sent to the demo alone stop its web server and worker too."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
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


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def run_demo(var: Path, stop: signal.Signals) -> tuple[list[str], bool, Path]:
    """Start the demo (SQLite, no services), read its lines until the URL, send ``stop`` to the
    demo process alone; returns the lines, whether any process of its group outlived it by 30 s
    (each is killed then), and the var directory."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(RESPECT_VAR_DIR=str(var), PYTHONPATH=str(ROOT))
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
    left = False
    try:
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if "the platform is running at" in line:
                break
    finally:
        process.send_signal(stop)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        deadline = time.monotonic() + 30
        while group_alive(process.pid) and time.monotonic() < deadline:
            time.sleep(0.5)
        if group_alive(process.pid):
            left = True
            os.killpg(process.pid, signal.SIGKILL)
    return lines, left, var


@pytest.fixture(scope="module")
def demo_sigterm(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo") / "var", signal.SIGTERM)


def test_url_and_logins_are_the_last_lines_after_the_worker_banner(demo_sigterm):
    demo_output = demo_sigterm[0]
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


@pytest.mark.ml
def test_the_demo_writes_and_registers_its_tiny_base_policy(demo_sigterm):
    lines, _, var = demo_sigterm
    spec = f"hf:{(var / 'tiny-idefics2').resolve()}"
    assert f"demo base policy registered: {spec}" in lines
    assert (var / "tiny-idefics2" / "config.json").is_file()


def test_sigterm_to_the_demo_stops_its_server_and_worker(demo_sigterm):
    assert demo_sigterm[1] is False, "a process of the demo outlived it after SIGTERM"


def test_sigint_to_the_demo_stops_its_server_and_worker(tmp_path):
    lines, left, _ = run_demo(tmp_path / "var", signal.SIGINT)
    assert lines and "the platform is running at" in lines[-1]
    assert left is False, "a process of the demo outlived it after SIGINT"
