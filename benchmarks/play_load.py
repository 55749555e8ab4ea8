#!/usr/bin/env python3
"""Load test of live play: N games at once, played by scripted websocket clients on loopback.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/5 \\
        .venv/bin/python benchmarks/play_load.py --games 200

It creates (or reuses) the database ``<name>_playbench`` next to DATABASE_URL's, migrates it,
adds a fresh study with one human-human round and 2N workers with browser sessions, starts web
processes on free loopback ports (the project's Redis channel layer), and runs 2N clients in
this one process (asyncio, ``websockets``): each arrives through the lobby page, waits on the
lobby socket until it is paired, loads its game page and plays.

The web processes are laid out as the README's production section recommends: ``--servers``
processes serve the games (game pages and game sockets) and ``--lobby-servers`` processes serve
arrivals (lobby pages and lobby sockets, where pairing runs), the latter at a lower CPU priority
(``--lobby-nice``), so a burst of arrivals never takes the CPU from moves of games in play.
``--lobby-servers 0`` serves everything from the same processes, for comparison.

The speaker asks for one target per turn (naming its id); the listener selects it and submits,
so every game succeeds after as many turns as it has targets. Think times are drawn per action.

Measured:

- the delay from one player's action to the other player's screen: from just before the client
  hands its message to the socket until the other client's socket delivers the resulting state
  (utterance -> listener; submission -> speaker), both clients in this process, monotonic clock;
  the listener's own toggle echo is reported apart;
- pairing time (lobby page request to the ``paired`` message), games completed, turns lost
  (turns a client completed that the database does not hold, or the other way round), and the
  peak number of games in play at once;
- where the CPU went: the web processes, this load process (its clients), the PostgreSQL
  backends of the benchmark database, and Redis (the whole server, so it includes anything else
  using it), in total and per client action.

The machine is shared: the load average before and after is printed. Compare runs at the same
load, and trust the CPU per action more than wall-clock numbers when the machine is noisy.
The clients are ``play_clients.py``'s: like the pages, they wait out a server's "come back in s
seconds" (``config.arrivals``) and arrive again; the retries are counted and are not errors. The
servers listen with a backlog of 1024, and Daphne waits 30 s for a handshake (the README's
command lines). The verdict: PASS when every game completes, no turn is lost, no client saw an
error and the move p95 (both directions) is under 100 ms; ``--smoke`` (3 games, brief thinking,
what the test suite runs) judges all but the latency.

Bounded: it stops after ``--timeout`` seconds whatever happens, and only talks to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import time

from harness import ROOT, free_port, percentile, scratch_database
from play_clients import CpuMeter, Stats, run_clients

BACKLOG = 1024  # listen backlog of each web process (the README's production command lines)


def setup(games: int, seed: int) -> tuple[int, list[tuple[int, str]]]:
    """A fresh study and round (HH, lobby open) with 2N admitted workers and their session keys."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from annotation import creation, services
    from games.models import Round, Study, System, Tangram
    from games.workers import SESSION_KEY

    call_command("migrate", verbosity=0)
    for i in range(30):
        Tangram.objects.get_or_create(name=f"bench-{i}", defaults={"split": "train"})
    stamp = f"{int(time.time())}-{random.Random(seed).randrange(10**6)}"
    study = Study.objects.create(name=f"play-bench-{stamp}", turn_limit=10)
    round_ = Round.objects.create(study=study, index=0, config_seed=seed, lobby_open=True)
    System.objects.create(round=round_, name="HH")
    # The lobby admits participants of the round's crowd task who consented.
    task = creation.create_task(
        name=f"bench {stamp}", round_=round_, prolific_completion_code="PLAYBENCH"
    )
    workers = []
    for i in range(2 * games):
        arrival = services.arrive(
            task,
            platform="prolific",
            worker_id=f"bench-{stamp}-{i}",
            session_id=f"S-{stamp}-{i}",
            study_id="BENCH",
        )
        services.give_consent(arrival)
        worker = arrival.worker
        session = SessionStore()
        session[SESSION_KEY] = worker.pk
        session.save()
        workers.append((worker.pk, session.session_key))
    return round_.pk, workers


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


def peak_concurrency(spans: dict[int, list[float]]) -> int:
    edges = sorted(
        [(start, 1) for start, _ in spans.values()] + [(end, -1) for _, end in spans.values()]
    )
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=200)
    parser.add_argument("--servers", type=int, default=2, help="web processes serving games")
    parser.add_argument(
        "--lobby-servers", type=int, default=1, help="web processes serving arrivals (0: shared)"
    )
    parser.add_argument("--lobby-nice", type=int, default=10, help="niceness of the lobby ones")
    parser.add_argument("--server", choices=["daphne", "uvicorn"], default="daphne")
    # Typing an utterance takes a few seconds (the speaker may take 25): with 3-6 s, games last
    # long enough for all 200 to be in play at once after a 10 s arrival ramp.
    parser.add_argument("--utterance-think", type=bounds, default=(3.0, 6.0), metavar="A-B")
    parser.add_argument("--toggle-think", type=bounds, default=(0.5, 1.5), metavar="A-B")
    parser.add_argument("--submit-think", type=bounds, default=(0.3, 1.0), metavar="A-B")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds to connect everyone")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="the test suite's size: 3 games, brief thinking; latency is printed, not judged",
    )
    args = parser.parse_args()
    if args.smoke:
        args.games, args.servers, args.ramp, args.timeout = 3, 1, 0.5, 120.0
        args.utterance_think = args.toggle_think = args.submit_think = (0.05, 0.1)
    if (
        not 1 <= args.games <= 1000
        or not 1 <= args.servers <= 4
        or not 0 <= args.lobby_servers <= 4
    ):
        sys.exit("--games must be 1-1000, --servers 1-4 and --lobby-servers 0-4")
    base = os.environ.get("DATABASE_URL", "")
    if not base.startswith("postgres") or not os.environ.get("REDIS_URL"):
        sys.exit("set DATABASE_URL (PostgreSQL) and REDIS_URL: the load test runs on real services")
    db_url = scratch_database(base, "_playbench", fresh=False)
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.pop("TEST_DB_SUFFIX", None)
    # The servers run with DEBUG off, which refuses the demo's public keys: keys of this run.
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("WORKER_ID_HMAC_KEY", secrets.token_urlsafe(32))
    os.environ.setdefault(
        "WORKER_ID_ENCRYPTION_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode()
    )
    import django

    django.setup()
    round_id, workers = setup(args.games, args.seed)
    from django.db import connections

    connections.close_all()

    env = dict(
        os.environ,
        DATABASE_URL=db_url,
        # One connection pool per process (README): under an ASGI server every HTTP request runs
        # in a thread of its own, so persistent per-thread connections would pile up.
        DATABASE_POOL="true",
        DATABASE_POOL_MAX_SIZE="20",
        PLAY_DEADLINE_TASKS="0",
        LOG_LEVEL="ERROR",
        DJANGO_DEBUG="0",
    )
    ports = [free_port() for _ in range(args.servers + args.lobby_servers)]
    log_path = ROOT / "var" / "play_load_server.log"
    log_path.parent.mkdir(exist_ok=True)
    log = log_path.open("w")
    servers = [
        subprocess.Popen(
            server_command(args.server, port),
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            preexec_fn=(lambda: os.nice(args.lobby_nice)) if index >= args.servers else None,
        )
        for index, port in enumerate(ports)
    ]
    load_before = load_average()
    try:
        for port, server in zip(ports, servers, strict=True):
            for _ in range(600):
                if server.poll() is not None:
                    sys.exit(f"{args.server} exited; see {log_path}")
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                time.sleep(0.1)
        meter = CpuMeter(servers, db_url, args.lobby_servers)
        cpu_before = meter.sample()
        stats = Stats()
        started = time.perf_counter()
        urls = [f"ws://127.0.0.1:{port}" for port in ports]
        game_urls, lobby_urls = urls[: args.servers], urls[args.servers :] or urls
        phase: dict = {}
        asyncio.run(
            run_clients(game_urls, lobby_urls, round_id, workers, stats, args, meter, phase)
        )
        wall = time.perf_counter() - started
        cpu_after = meter.sample()
        cpu = CpuMeter.delta(cpu_before, cpu_after)
        lobby_cpu = CpuMeter.lobby_share(cpu_before, cpu_after)
        play_cpu = CpuMeter.delta(phase["cpu"], cpu_after) if "cpu" in phase else None
        play_actions = stats.actions - phase.get("actions", 0)
        load_after = load_average()
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
    arrival_requests = 3 * len(workers)  # the lobby page, the lobby socket's connect, the game page
    per_action = {k: 1000 * v / max(1, stats.actions) for k, v in cpu.items()}
    print(
        f"live-play load: {args.games} games, {len(workers)} clients, {args.server}: "
        + (
            f"{args.servers} game process(es) + {args.lobby_servers} lobby process(es) at nice "
            f"{args.lobby_nice}"
            if args.lobby_servers
            else f"{args.servers} process(es) serving games and lobby alike"
        )
        + f", PostgreSQL, channel layer {channel_layer_name()}"
    )
    print(f"load average before {load_before}  after {load_after}  ({os.cpu_count()} cores)")
    print(
        f"games created {len(by_id)}  completed {sum(1 for g in games if g.status == 'ended')}"
        f"  successful {successful}  turns {turns_total}  turns lost {lost}"
        f"  peak games at once {peak_concurrency(stats.spans)}"
    )
    print(
        f"wall {wall:.1f} s  client actions {stats.actions} ({stats.actions / wall:.1f}/s)  "
        f"lobby arrivals {len(workers)}  messages received {stats.received} "
        f"({stats.received_bytes / max(1, stats.received):.0f} B each)  "
        f"client errors {len(stats.errors)} {sorted(set(stats.errors))[:5]}"
    )
    print(
        f"told to retry (overload answers, not errors): lobby page {stats.page_retries}  "
        f"lobby socket {stats.lobby_retries}"
    )
    print(
        "cpu seconds  "
        + "  ".join(f"{k} {v:.2f}" for k, v in cpu.items())
        + f"  (web: lobby pool {lobby_cpu:.2f}; redis: the whole server; {arrival_requests} "
        "arrival requests included)"
    )
    print(
        "cpu ms per client action  "
        + "  ".join(f"{k} {v:.2f}" for k, v in per_action.items())
        + f"  web+postgres {per_action['web'] + per_action['postgres']:.2f}"
    )
    if play_cpu is not None and play_actions:
        per_move = {k: 1000 * v / play_actions for k, v in play_cpu.items()}
        print(
            f"cpu ms per move once all {len(workers)} clients were in their games "
            f"({play_actions} moves)  "
            + "  ".join(f"{k} {v:.2f}" for k, v in per_move.items())
            + f"  web+postgres {per_move['web'] + per_move['postgres']:.2f}"
        )
    print(report("utterance -> listener (ms)", stats.utterance_ms))
    print(report("submit -> speaker (ms)", stats.submit_ms))
    print(report("both (ms)", stats.utterance_ms + stats.submit_ms))
    if "at" in phase:
        arriving = [ms for at, ms in stats.move_log if at < phase["at"]]
        print(report("  while players arrived", arriving))
        print(
            report(
                "  once all were in games", [ms for at, ms in stats.move_log if at >= phase["at"]]
            )
        )
    print(report("toggle -> own echo (ms)", stats.toggle_ms))
    print(report("lobby to paired (s)", stats.pairing_s))
    complete = successful == args.games and lost == 0 and not stats.errors
    if args.smoke:
        rule = "smoke: every game completes, no turn lost; latency not judged"
        ok = complete
    else:
        rule = "every game completes, no turn lost, no client error, p95 < 100 ms"
        ok = complete and percentile(stats.utterance_ms + stats.submit_ms, 95) < 100
    print("PASS" if ok else "FAIL", f"({rule})")
    sys.exit(0 if ok else 1)


def server_command(kind: str, port: int) -> list[str]:
    """One ASGI web process of the project on ``port`` (Daphne or Uvicorn, as in the README)."""
    if kind == "daphne":
        # Twisted's default listen backlog is 50: a burst of arrivals overflows it.
        options = ["-e", f"tcp:port={port}:interface=127.0.0.1:backlog={BACKLOG}"]
        # Daphne closes a socket not accepted within 5 s by default: under a burst of arrivals
        # the client would see a broken connection instead of a slow one.
        options += ["--websocket_connect_timeout", "30"]
    else:
        options = ["--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
        options += ["--log-level", "warning", "--backlog", str(BACKLOG)]
    return [str(ROOT / ".venv" / "bin" / kind), *options, "config.asgi:application"]


def channel_layer_name() -> str:
    from django.conf import settings

    return settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 2)[-2]


if __name__ == "__main__":
    main()
