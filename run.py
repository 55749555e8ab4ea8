#!/usr/bin/env python3
"""Set up and run the platform with nothing but Python 3.11+.

    python3 run.py demo    # zero-setup demo: SQLite, training worker, demo data, URL printed
    python3 run.py manage COMMAND [ARGS]  # any management command, in the demo's environment
    python3 run.py test    # install test dependencies and run the whole test suite

Each creates ``.venv`` beside this file on first use and reinstalls only when pyproject.toml
or constraints.txt changes. Only the standard library is used here.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent
CONSTRAINTS = ROOT / "constraints.txt"
VENV = Path(os.environ.get("RESPECT_VENV", ROOT / ".venv"))
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"


def say(message: str) -> None:
    print(f"[respect] {message}", flush=True)


def ensure_environment(extras: str, venv_dir: Path | None = None, locked: bool = True) -> Path:
    """Create the virtual environment and install the project with ``extras`` if needed.

    Versions come from ``constraints.txt`` (``run.py lock`` regenerates it) unless ``locked`` is
    false. Returns the environment's Python.
    """
    # run.py may be started by an older system Python: say so before anything fails obscurely.
    if sys.version_info < (3, 11):  # noqa: UP036
        sys.exit("Python 3.11 or newer is required.")
    venv_dir = venv_dir or VENV
    python = venv_dir / ("Scripts" if os.name == "nt" else "bin") / "python"
    if not python.exists():
        say(f"creating virtual environment in {venv_dir}")
        venv.EnvBuilder(with_pip=True).create(venv_dir)
        subprocess.run([python, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    constraints = CONSTRAINTS.read_bytes() if locked and CONSTRAINTS.exists() else b""
    fingerprint = hashlib.sha256(
        (ROOT / "pyproject.toml").read_bytes() + constraints + extras.encode()
    )
    stamp = venv_dir / f".respect-installed-{extras or 'base'}"
    if stamp.exists() and stamp.read_text() == fingerprint.hexdigest():
        return python
    if covering_install(venv_dir, extras, constraints):
        return python
    target = f".[{extras}]" if extras else "."
    say(f"installing {target} (first run takes a few minutes)")
    pin = ["-c", str(CONSTRAINTS)] if constraints else []
    subprocess.run([python, "-m", "pip", "install", "-q", *pin, "-e", target], cwd=ROOT, check=True)
    stamp.write_text(fingerprint.hexdigest())
    return python


def covering_install(venv_dir: Path, extras: str, constraints: bytes) -> bool:
    """Whether the environment already holds an up-to-date install of more extras than asked
    (``run.py test`` installs ``dev,ml``, which covers the demo's ``ml``)."""
    wanted = set(filter(None, extras.split(",")))
    for stamp in venv_dir.glob(".respect-installed-*"):
        installed = stamp.name.removeprefix(".respect-installed-")
        installed = "" if installed == "base" else installed
        have = set(filter(None, installed.split(",")))
        fingerprint = hashlib.sha256(
            (ROOT / "pyproject.toml").read_bytes() + constraints + installed.encode()
        ).hexdigest()
        if wanted <= have and stamp.read_text() == fingerprint:
            return True
    return False


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(ready, *processes: subprocess.Popen, seconds: float = 120) -> bool:
    """Poll ``ready()`` until it is true, a process exits or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if ready():
            return True
        if any(process.poll() is not None for process in processes):
            return False
        time.sleep(0.2)
    return ready()


def demo_banner(base_url: str) -> list[str]:
    """The demo's last lines: where to play, where to read, who to log in as."""
    return [
        f"play a round yourself: open the demo study from {base_url}/ and follow "
        "'Play a round yourself' (local-play entry, /play/lobby/<round>/local/); "
        "the round board is reachable from the study's page",
        "press Ctrl-C to stop",
        "researcher login: researcher / respect-demo   admin login: admin / respect-demo",
        f"the platform is running at {base_url}/",
    ]


# The demo installs what training needs (CPU PyTorch, transformers, peft: the ``ml`` extra), so
# the whole loop runs from the pages; servers install the base project alone (``check-base``).
DEMO_EXTRAS = "ml"


class Stop(Exception):
    """SIGTERM, turned into an exception so that the demo stops its children as on Ctrl-C."""


def _stop(signum, frame) -> None:
    raise Stop


def demo_policy_dir(env: dict[str, str]) -> Path:
    """Where ``manage.py demo_policy`` writes the demo's base policy."""
    return Path(env.get("RESPECT_VAR_DIR", ROOT / "var")).resolve() / "tiny-idefics2"


def demo_env() -> dict[str, str]:
    """The demo's environment: DEBUG on (its public keys are accepted), its tiny checkpoint as
    the base of training runs, and on a machine without an NVIDIA GPU the ``tiny`` training
    preset as the launch forms' default (a run finishes in minutes on a CPU)."""
    env = dict(os.environ)
    env.setdefault("DJANGO_DEBUG", "1")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.setdefault("RESPECT_TRAINING_BASE", f"hf:{demo_policy_dir(env)}")
    if not shutil.which("nvidia-smi"):
        env.setdefault("RESPECT_TRAINING_PRESET", "tiny")
    return env


def worker_commands() -> list[list[str]]:
    """The demo's Celery workers, each a command line: live listener turns on a worker of their
    own (README "Deployment": they never wait behind decoding or training; threads let
    concurrent turns reach the micro-batcher), and one worker for everything else (decoding and
    training on ``gpu-batch``; metrics, imports and exports on ``default``)."""
    celery = [str(BIN / "celery"), "-A", "config", "worker", "--loglevel", "WARNING"]
    return [
        [*celery, "-Q", "default,gpu-batch", "-c", "2"],
        [*celery, "-Q", "gpu-live", "--pool", "threads", "-c", "8"],
    ]


def stop_all(processes: list[subprocess.Popen]) -> None:
    """SIGTERM each running process, wait up to 10 s each, then kill what is left."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def demo(args: argparse.Namespace) -> None:
    signal.signal(signal.SIGTERM, _stop)
    started = time.monotonic()
    ensure_environment(DEMO_EXTRAS)
    env = demo_env()
    ready_file = Path(env.get("RESPECT_VAR_DIR", ROOT / "var")) / "worker-ready"
    ready_file.parent.mkdir(parents=True, exist_ok=True)
    ready_file.unlink(missing_ok=True)
    env["RESPECT_WORKER_READY_FILE"] = str(ready_file)
    processes: list[subprocess.Popen] = []
    try:
        say("preparing the database, the demo study and its base policy")
        manage("migrate", "--noinput", "-v0", env=env)
        manage("load_demo", env=env)
        manage("demo_policy", env=env)
        workers = [subprocess.Popen(line, cwd=ROOT, env=env) for line in worker_commands()]
        processes += workers
        server = subprocess.Popen(
            # -v 0: no access log, whose lines would carry crowd ids from query strings.
            [BIN / "daphne", "-v", "0", "-b", args.host, "-p", str(args.port)]
            + ["config.asgi:application"],
            cwd=ROOT,
            env=env,
        )
        processes.append(server)
        # The worker's banner and daphne's start-up lines come first; the URL and logins last.
        served = wait_until(lambda: port_open(args.host, args.port), server, seconds=60)
        worker_ready = wait_until(ready_file.exists, *workers)
        if not served:
            say("the web server did not start: see the messages above")
        if not worker_ready:
            say("the background worker is not ready: tasks wait until it is (see above)")
        say(f"ready in {time.monotonic() - started:.0f} s")
        for line in demo_banner(f"http://{args.host}:{args.port}"):
            say(line)
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
    except (KeyboardInterrupt, Stop):
        pass
    finally:
        stop_all(processes)


def manage_command(args: argparse.Namespace) -> None:
    """``run.py manage COMMAND [ARGS]``: the database migrated, then the management command in
    the demo's environment (the same settings, ``var/`` and worker queues as ``run.py demo``)."""
    if not args.arguments:
        sys.exit("usage: python3 run.py manage COMMAND [ARGS] (e.g. manage simulate_study --help)")
    ensure_environment(DEMO_EXTRAS)
    env = demo_env()
    if args.arguments[0] != "migrate":
        manage("migrate", "--noinput", "-v0", env=env)
    if not demo_policy_dir(env).is_dir():
        manage("demo_policy", env=env)
    result = subprocess.run([PYTHON, "manage.py", *args.arguments], cwd=ROOT, env=env)
    sys.exit(result.returncode)


def service_env(env: dict[str, str]) -> dict[str, str]:
    """Point tests at local PostgreSQL and Redis unless the environment already names them."""
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/test")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
    for name in ("DATABASE_URL", "REDIS_URL"):
        url = urlparse(env[name])
        if url.hostname and not port_open(url.hostname, url.port or 0):
            sys.exit(
                f"{name}={env[name]} is not reachable. The tests run against real PostgreSQL "
                "and Redis: start them (see README.md, 'Running the tests') or point "
                f"{name} at running ones."
            )
    return env


def test(args: argparse.Namespace) -> None:
    ensure_environment("dev,ml")
    env = service_env(dict(os.environ))
    if not shutil.which("chromium", path=env.get("PATH")) and not env.get("RESPECT_CHROMIUM"):
        say("Chromium not found: browser tests need /usr/bin/chromium (apt-get install chromium)")
    result = subprocess.run([PYTHON, "-m", "pytest", *args.pytest_args], cwd=ROOT, env=env)
    sys.exit(result.returncode)


def lock(args: argparse.Namespace) -> None:
    """Resolve the newest versions pyproject.toml allows in a scratch environment and write them
    to constraints.txt (what ``demo``, ``test`` and CI install)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="respect-lock-") as scratch:
        python = ensure_environment("dev,ml", Path(scratch) / "venv", locked=False)
        frozen = subprocess.run(
            [python, "-m", "pip", "freeze", "--exclude-editable"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    lines = sorted(line for line in frozen.splitlines() if line and not line.startswith("#"))
    CONSTRAINTS.write_text(
        "# Versions every install uses (pip install -c constraints.txt). Regenerate with:\n"
        "#   python3 run.py lock\n" + "\n".join(lines) + "\n"
    )
    say(f"wrote {len(lines)} pinned packages to {CONSTRAINTS.name}")


def check_base(args: argparse.Namespace) -> None:
    """Install the base project alone (no ``ml`` or ``dev`` extra) in its own environment and
    check that Django starts and every web module imports without the heavy ML libraries."""
    base_venv = Path(os.environ.get("RESPECT_BASE_VENV", ROOT / ".venv-base"))
    python = ensure_environment("", base_venv)
    env = dict(os.environ)
    env.setdefault("DJANGO_DEBUG", "1")
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    subprocess.run([python, "manage.py", "check"], cwd=ROOT, env=env, check=True)
    result = subprocess.run(
        [python, "-m", "config.web_imports"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    heavy = result.stdout.strip().splitlines()[-1]
    if heavy != "[]":
        sys.exit(f"the web modules imported ML libraries: {heavy}")
    missing = subprocess.run(
        [python, "-c", "import importlib.util as u; print(u.find_spec('torch') is None)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if missing != "True":
        sys.exit(f"{base_venv} is not a base install: torch is installed there")
    say("base install (no ml extra): manage.py check passes and every web module imports")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo_parser = commands.add_parser("demo", help="run the zero-setup demo")
    demo_parser.add_argument("--host", default="127.0.0.1")
    demo_parser.add_argument("--port", type=int, default=8000)
    demo_parser.set_defaults(handler=demo)
    manage_parser = commands.add_parser(
        "manage", help="run a management command with the demo's settings and environment"
    )
    manage_parser.add_argument("arguments", nargs=argparse.REMAINDER)
    manage_parser.set_defaults(handler=manage_command)
    test_parser = commands.add_parser(
        "test", help="install test dependencies and run the tests (extra arguments go to pytest)"
    )
    test_parser.set_defaults(handler=test)
    commands.add_parser(
        "check-base", help="install the base project alone and check that the web side imports"
    ).set_defaults(handler=check_base)
    commands.add_parser(
        "lock", help="regenerate constraints.txt from a fresh resolution of pyproject.toml"
    ).set_defaults(handler=lock)
    args, extra = parser.parse_known_args()
    if extra and args.command != "test":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.pytest_args = extra
    args.handler(args)


if __name__ == "__main__":
    main()
