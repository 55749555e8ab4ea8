"""``run.py demo`` start-up and shut-down: the worker's banner first, the URL and logins last;
SIGTERM and SIGINT sent to the demo alone stop its web server and worker too."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
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


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def run_demo(var: Path, stop: signal.Signals) -> tuple[list[str], bool, Path]:
    """Start the demo (SQLite, no services), read its lines until the URL, make one request with
    a crowd id in its query, send ``stop`` to the demo process alone; returns every line it
    printed, whether any process of its group outlived it by 30 s (each is killed then), and
    the var directory."""
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
                # A crowd arrival's query string, which an access log would print.
                url = line.rstrip().rsplit(" ", 1)[-1] + f"?PROLIFIC_PID={PROBE_ID}"
                with contextlib.suppress(urllib.error.HTTPError):
                    urllib.request.urlopen(url, timeout=30).close()
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
    lines += [line.rstrip("\n") for line in process.stdout]
    process.stdout.close()
    return lines, left, var


@pytest.fixture(scope="module")
def demo_sigterm(tmp_path_factory):
    return run_demo(tmp_path_factory.mktemp("demo") / "var", signal.SIGTERM)


def test_url_and_logins_are_the_last_lines_after_the_worker_banner(demo_sigterm):
    lines = demo_sigterm[0]
    assert lines, "run.py demo printed nothing"
    assert not [line for line in lines if PROBE_ID in line]  # daphne -v 0: no access log
    last = max(i for i, line in enumerate(lines) if "the platform is running at" in line)
    demo_output = lines[: last + 1]
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
    assert any("the platform is running at" in line for line in lines)
    assert left is False, "a process of the demo outlived it after SIGINT"
