#!/usr/bin/env python3
"""Load test of live play: N games at once, played by scripted websocket clients on loopback.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python benchmarks/play_load.py --games 200

It creates (or reuses) the database ``<name>_playbench`` next to DATABASE_URL's, migrates it,
adds a fresh study with one human-human round and 2N workers with browser sessions, starts
``--servers`` daphne processes on free loopback ports (Redis channel layer), and runs 2N clients:
each waits in the lobby over its websocket, is paired, and plays. The speaker asks for one target
per turn (naming its id); the listener selects it and submits, so every game succeeds after as
many turns as it has targets. Think times are drawn per action.

Measured: the delay from one player's action to the other player's screen (utterance →
listener's state; submission → speaker's state), pairing time, games completed, and turns lost
(turns a client completed that the database does not hold, or the other way round). Bounded: it
stops after ``--timeout`` seconds whatever happens, and only talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def bench_database_url(base: str) -> str:
    url = urlparse(base)
    name = url.path.lstrip("/") + "_playbench"
    return urlunparse(url._replace(path="/" + name))


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (parsed.path.lstrip("/"),)
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{parsed.path.lstrip("/")}"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def setup(games: int, seed: int) -> tuple[int, list[tuple[int, str]]]:
    """A fresh study and round (HH) with 2N workers and their session keys."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from games.models import Round, Study, System, Tangram, Worker
    from games.workers import SESSION_KEY, get_or_create_worker

    call_command("migrate", verbosity=0)
    for i in range(30):
        Tangram.objects.get_or_create(name=f"bench-{i}", defaults={"split": "train"})
    stamp = f"{int(time.time())}-{random.Random(seed).randrange(10**6)}"
    study = Study.objects.create(name=f"play-bench-{stamp}", turn_limit=10)
    round_ = Round.objects.create(study=study, index=0, config_seed=seed)
    System.objects.create(round=round_, name="HH")
    workers = []
    for i in range(2 * games):
        worker = get_or_create_worker(Worker.Platform.LOCAL, f"bench-{stamp}-{i}")
        session = SessionStore()
        session[SESSION_KEY] = worker.pk
        session.save()
        workers.append((worker.pk, session.session_key))
    return round_.pk, workers


@dataclass
class Stats:
    utterance_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    pairing_s: list[float] = field(default_factory=list)
    sent: dict[tuple[int, int, str], float] = field(default_factory=dict)
    client_turns: dict[int, int] = field(default_factory=dict)
    ended: dict[int, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


def think(rng: random.Random, bounds: tuple[float, float]) -> float:
    return rng.uniform(*bounds)


async def player(
    url: str, round_id: int, session_key: str, stats: Stats, args, rng: random.Random
) -> None:
    from websockets.asyncio.client import connect

    origin = url.replace("ws://", "http://")
    headers = {"Cookie": f"sessionid={session_key}", "Origin": origin}
    started = time.perf_counter()
    # Arrival: the lobby page puts the worker in the lobby, then its socket waits for a partner.
    request = urllib.request.Request(f"{origin}/play/lobby/{round_id}/", headers=headers)
    page = await asyncio.to_thread(urllib.request.urlopen, request, timeout=60)
    assert page.status == 200, page.status
    async with connect(
        f"{url}/ws/play/lobby/{round_id}/",
        additional_headers=headers,
        open_timeout=60,
        ping_interval=None,
    ) as ws:
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == "paired":
                break
    stats.pairing_s.append(time.perf_counter() - started)
    game_id = message["game"]
    async with connect(
        f"{url}/ws/play/game/{game_id}/",
        additional_headers=headers,
        max_queue=None,
        open_timeout=60,
        ping_interval=None,
    ) as ws:
        answered = -1
        spoken = -1
        async for raw in ws:
            now = time.perf_counter()
            state = json.loads(raw)
            if state["type"] == "error":
                stats.errors.append(state["code"])
                continue
            if state["type"] != "state":
                continue
            role, turn = state["role"], state["turn"]
            if role == "listener" and state["phase"] == "listener":
                key = (game_id, turn, "utterance")
                if key in stats.sent and turn > answered:
                    stats.utterance_ms.append((now - stats.sent.pop(key)) * 1000)
                if turn > answered and state["utterance"]:
                    answered = turn
                    name = state["utterance"].split()[-1]
                    await asyncio.sleep(think(rng, args.toggle_think))
                    await ws.send(json.dumps({"type": "toggle", "tangram": name}))
                    await asyncio.sleep(think(rng, args.submit_think))
                    stats.sent[(game_id, turn, "submit")] = time.perf_counter()
                    await ws.send(json.dumps({"type": "submit"}))
                    stats.client_turns[game_id] = turn + 1
            if role == "speaker":
                done_turn = turn - 1 if state["status"] == "playing" else turn
                key = (game_id, done_turn, "submit")
                if key in stats.sent and state["phase"] != "listener":
                    stats.submit_ms.append((now - stats.sent.pop(key)) * 1000)
            if state["status"] == "ended":
                stats.ended[game_id] = state["outcome"]
                return
            if role == "speaker" and state["phase"] == "speaker" and turn > spoken:
                spoken = turn
                chosen = set(state["selection"])
                remaining = [
                    i["id"] for i in state["images"] if i["target"] and i["id"] not in chosen
                ]
                await asyncio.sleep(think(rng, args.utterance_think))
                stats.sent[(game_id, turn, "utterance")] = time.perf_counter()
                await ws.send(
                    json.dumps({"type": "utterance", "text": f"please pick {remaining[0]}"})
                )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def report(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<28} n=0"
    return (
        f"{name:<28} n={len(values):<6} p50={percentile(values, 50):7.1f}  "
        f"p95={percentile(values, 95):7.1f}  p99={percentile(values, 99):7.1f}  "
        f"max={max(values):7.1f}  mean={statistics.fmean(values):7.1f}"
    )


def bounds(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    return float(low), float(high or low)


async def run_clients(urls, round_id, workers, stats, args) -> None:
    rng = random.Random(args.seed)
    tasks = []
    for index, (_, key) in enumerate(workers):
        url = urls[index % len(urls)]
        tasks.append(
            asyncio.create_task(
                player(url, round_id, key, stats, args, random.Random(rng.random()))
            )
        )
        if index % 20 == 19:
            await asyncio.sleep(args.ramp / (len(workers) / 20))
    done, pending = await asyncio.wait(tasks, timeout=args.timeout)
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception() is not None:
            stats.errors.append(repr(task.exception())[:200])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=200)
    parser.add_argument("--servers", type=int, default=1, help="daphne processes (loopback)")
    parser.add_argument("--utterance-think", type=bounds, default=(1.0, 3.0), metavar="A-B")
    parser.add_argument("--toggle-think", type=bounds, default=(0.5, 1.5), metavar="A-B")
    parser.add_argument("--submit-think", type=bounds, default=(0.3, 1.0), metavar="A-B")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds to connect everyone")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not 1 <= args.games <= 1000 or not 1 <= args.servers <= 4:
        sys.exit("--games must be 1-1000 and --servers 1-4")
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("set DATABASE_URL (PostgreSQL) and REDIS_URL: the load test runs on real services")
    db_url = bench_database_url(base)
    ensure_database(db_url)
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.pop("TEST_DB_SUFFIX", None)
    import django

    django.setup()
    round_id, workers = setup(args.games, args.seed)

    env = dict(
        os.environ,
        DATABASE_URL=db_url,
        DATABASE_CONN_MAX_AGE="60",
        PLAY_DEADLINE_TASKS="0",
        LOG_LEVEL="ERROR",
        DJANGO_DEBUG="0",
    )
    ports = [free_port() for _ in range(args.servers)]
    log_path = ROOT / "var" / "play_load_daphne.log"
    log_path.parent.mkdir(exist_ok=True)
    log = log_path.open("w")
    servers = [
        subprocess.Popen(
            [
                str(ROOT / ".venv" / "bin" / "daphne"),
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "config.asgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        for port in ports
    ]
    try:
        for port, server in zip(ports, servers, strict=True):
            for _ in range(600):
                if server.poll() is not None:
                    sys.exit(f"daphne exited; see {log_path}")
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.1)
        stats = Stats()
        started = time.perf_counter()
        urls = [f"ws://127.0.0.1:{port}" for port in ports]
        asyncio.run(run_clients(urls, round_id, workers, stats, args))
        wall = time.perf_counter() - started
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()

    from django.db.models import Count, Q

    from games.models import Game

    games = Game.objects.filter(round_id=round_id).annotate(
        answered=Count("turns", filter=Q(turns__selection_after__isnull=False)),
        spoken=Count("turns", filter=~Q(turns__utterance="")),
    )
    by_id = {g.pk: g for g in games}
    lost = 0
    for game_id, turns in stats.client_turns.items():
        game = by_id.get(game_id)
        stored = game.answered if game else 0
        lost += abs(turns - stored)
    lost += sum(g.answered for g in games if g.pk not in stats.client_turns)
    successful = sum(1 for g in games if g.outcome == "successful")
    turns_total = sum(g.answered for g in games)
    print(
        f"live-play load: {args.games} games, {len(workers)} clients, {args.servers} daphne "
        f"process(es), Redis channel layer, PostgreSQL"
    )
    print(
        f"games created {len(by_id)}  completed {sum(1 for g in games if g.status == 'ended')}"
        f"  successful {successful}  turns {turns_total}  turns lost {lost}"
    )
    print(
        f"wall {wall:.1f} s  actions/s {(turns_total * 3) / wall:.1f}  "
        f"client errors {len(stats.errors)} {sorted(set(stats.errors))[:5]}"
    )
    print(report("utterance -> listener (ms)", stats.utterance_ms))
    print(report("submit -> speaker (ms)", stats.submit_ms))
    print(report("both (ms)", stats.utterance_ms + stats.submit_ms))
    print(report("lobby to paired (s)", stats.pairing_s))
    ok = (
        successful == args.games
        and lost == 0
        and percentile(stats.utterance_ms + stats.submit_ms, 95) < 100
    )
    print("PASS" if ok else "FAIL", "(every game completes, no turn lost, p95 < 100 ms)")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
