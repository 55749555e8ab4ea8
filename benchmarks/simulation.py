"""Benchmark: simulated games per second through the engine, and a whole simulated study.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/6 \\
        .venv/bin/python benchmarks/simulation.py            # random policy, then tiny policy
    ... benchmarks/simulation.py --study                     # + the 3-round, 2-system, 60-game
                                                             #   study with training (goal < 10 min)

Each part runs ``manage.py simulate_study`` on a fresh database ``<name>_bench_sim`` (with its own
gpu worker, as a researcher would) and prints the play rate and the end-to-end time it reports.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, scratch_database


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode:
        raise SystemExit(f"manage.py {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return result.stdout + result.stderr


def simulate(env: dict[str, str], name: str, policy: str, *options: str) -> None:
    started = time.monotonic()
    output = manage(env, "simulate_study", "--name", name, "--policy", policy, *options)
    wall = time.monotonic() - started
    for line in output.splitlines():
        if re.search(r"played \d+ games in|trained|simulated study", line):
            print(f"  {line.strip()}")
    print(f"  end to end (worker start, play, decoding, training, metrics): {wall:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--games", type=int, default=60)
    parser.add_argument("--study", action="store_true", help="also the 3-round study")
    args = parser.parse_args()
    os.environ["DATABASE_URL"] = scratch_database(os.environ.get("DATABASE_URL", ""), "_sim")
    work = Path(tempfile.mkdtemp())
    env = dict(
        os.environ,
        RESPECT_VAR_DIR=str(work / "var"),
        DJANGO_MEDIA_ROOT=str(work / "media"),
        PLAY_DEADLINE_TASKS="0",
        RESPECT_MODEL_DEVICE="cpu",
        LOG_LEVEL="WARNING",
    )
    manage(env, "migrate", "-v0")
    tiny = work / "tiny-idefics2"
    manage(env, "make_tiny_checkpoint", str(tiny))
    print(f"random policy, {args.games} games (the engine's own cost):")
    simulate(env, "bench-random", "random", "--rounds", "1", "--games-per-system", str(args.games))
    print(f"tiny IDEFICS2 policy through a gpu worker, {args.games} games:")
    simulate(
        env,
        "bench-tiny",
        f"hf:{tiny}",
        "--rounds",
        "1",
        "--systems",
        "CONTROL",
        "--games-per-system",
        str(args.games),
    )
    if args.study:
        print("3 rounds × 2 systems × 60 games, letters speakers, tiny policy, training included:")
        simulate(
            env,
            "bench-study",
            f"hf:{tiny}",
            "--rounds",
            "3",
            "--systems",
            "B-FFT,CONTROL",
            "--speakers",
            "letters",
            "--games-per-system",
            "60",
            "--epochs",
            "8",
            "--training-preset",
            "tiny",
        )


if __name__ == "__main__":
    main()
