"""What the benchmark scripts share: the repository on ``sys.path``, a scratch PostgreSQL
database, free ports, ASGI server processes, percentiles and timing.

Importing this module puts the repository root first on ``sys.path`` (the scripts run as
``python benchmarks/<name>.py``, so this directory is already there). Percentiles are numpy's
linear interpolation everywhere, so every p95 a script prints means the same thing.
"""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; NaN when there are no values."""
    if len(values) == 0:
        return float("nan")
    return float(np.percentile(np.asarray(values, dtype=float), q))


def latency_line(name: str, values_ms: Sequence[float]) -> str:
    """One line of a latency report: count, p50, p95, p99 and max in milliseconds."""
    if len(values_ms) == 0:
        return f"{name}: no samples"
    return (
        f"{name}: n={len(values_ms)} p50={percentile(values_ms, 50):.1f} ms "
        f"p95={percentile(values_ms, 95):.1f} ms p99={percentile(values_ms, 99):.1f} ms "
        f"max={max(values_ms):.1f} ms"
    )


def scratch_database(url: str, suffix: str, *, fresh: bool = True) -> str:
    """The URL of database ``<name><suffix>`` beside ``url``'s, created if missing (dropped and
    created again when ``fresh``), so a benchmark never writes into the database it was given."""
    import psycopg

    parsed = urlparse(url)
    if not parsed.scheme.startswith("postgres"):
        raise SystemExit("set DATABASE_URL to a PostgreSQL server (the benchmark makes its own DB)")
    name = parsed.path.lstrip("/") + suffix
    admin = parsed._replace(path="/postgres", query="").geturl()
    with psycopg.connect(admin, autocommit=True) as connection:
        if fresh:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (name,)
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{name}"')
    return parsed._replace(path=f"/{name}").geturl()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(port: int, path: str = "/accounts/login/", timeout: float = 60) -> None:
    """Return once ``GET path`` answers 200 on the loopback port; exit the script otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path)
            if connection.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the server on port {port} did not start")


def start_asgi_servers(
    kind: str, processes: int, env: dict[str, str]
) -> tuple[list[subprocess.Popen], int]:
    """ASGI server processes (Daphne or Uvicorn) accepting on one inherited loopback socket."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.set_inheritable(True)
    port = listener.getsockname()[1]
    fd = str(listener.fileno())
    command = {
        "daphne": ["daphne", "--fd", fd, "-v", "0"],
        "uvicorn": ["uvicorn", "--fd", fd, "--no-access-log", "--log-level", "warning"],
    }[kind]
    command[0] = str(Path(sys.executable).parent / command[0])
    servers = [
        subprocess.Popen(
            [*command, "config.asgi:application"],
            cwd=ROOT,
            env=env,
            pass_fds=[listener.fileno()],
        )
        for _ in range(processes)
    ]
    listener.close()
    wait_for_http(port)
    return servers, port


@dataclass
class Timing:
    seconds: float = 0.0
    cpu_seconds: float = 0.0


@contextmanager
def timed() -> Iterator[Timing]:
    """Wall-clock and process CPU seconds of the ``with`` block."""
    timing = Timing()
    start, cpu = time.perf_counter(), time.process_time()
    try:
        yield timing
    finally:
        timing.seconds = time.perf_counter() - start
        timing.cpu_seconds = time.process_time() - cpu
