"""The scripted players of ``play_load.py`` and what they measure (a library, not a script).

Each client does what the lobby and game pages do in a browser: loads the lobby page, waits on
the lobby socket (with its heartbeat) until it is paired, loads the game page and plays. HTTP
requests are plain asyncio connections, one per request as a browser tab would open, so no
client waits for a thread of this process. A server that cannot take an arrival now answers
with a retry (``503`` and ``Retry-After`` on the page, a ``busy`` message and close code 4503 on
the lobby socket); the client waits as long as it is told and arrives again, as the page does,
and the retries are counted.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import time
from dataclasses import dataclass, field
from urllib.parse import urlparse

HEARTBEAT_SECONDS = 5.0
BUSY_CLOSE = 4503
RETRY_LIMIT = 30


@dataclass
class Stats:
    utterance_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    toggle_ms: list[float] = field(default_factory=list)
    pairing_s: list[float] = field(default_factory=list)
    sent: dict[tuple[int, int, str], float] = field(default_factory=dict)
    client_turns: dict[int, int] = field(default_factory=dict)
    ended: dict[int, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    page_retries: int = 0
    lobby_retries: int = 0
    actions: int = 0
    received: int = 0
    received_bytes: int = 0
    # game id -> (first state seen, end seen), perf_counter seconds
    spans: dict[int, list[float]] = field(default_factory=dict)
    # (perf_counter seconds when the move arrived, its delay in ms), both directions
    move_log: list[tuple[float, float]] = field(default_factory=list)

    def move(self, arrived: float, sent: float, into: list[float]) -> None:
        """Record one move's delay, from ``sent`` to ``arrived`` (perf_counter seconds)."""
        delay = (arrived - sent) * 1000
        into.append(delay)
        self.move_log.append((arrived, delay))


def think(rng: random.Random, bounds: tuple[float, float]) -> float:
    return rng.uniform(*bounds)


async def fetch(url: str, headers: dict[str, str], stats: Stats) -> int:
    """GET ``url`` as a browser loads a page; a 503 with ``Retry-After`` is waited out and
    asked again (counted), as the page's own retry does. Returns the final status."""
    for _ in range(RETRY_LIMIT):
        status, retry_after = await asyncio.wait_for(get(url, headers), 60)
        if status != 503 or retry_after is None:
            return status
        stats.page_retries += 1
        await asyncio.sleep(retry_after)
    return 503


async def get(url: str, headers: dict[str, str]) -> tuple[int, float | None]:
    """Status and ``Retry-After`` seconds of one HTTP/1.1 GET on a connection of its own."""
    parsed = urlparse(url)
    reader, writer = await asyncio.open_connection(parsed.hostname, parsed.port)
    try:
        lines = [f"GET {parsed.path}{'?' + parsed.query if parsed.query else ''} HTTP/1.1"]
        lines += [f"Host: {parsed.netloc}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        retry_after = None
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "retry-after":
                retry_after = float(value.strip())
        await reader.read()
        return status, retry_after
    finally:
        writer.close()


async def stamp_messages(ws, inbox: asyncio.Queue) -> None:
    try:
        async for raw in ws:
            inbox.put_nowait((time.perf_counter(), raw))
    finally:
        inbox.put_nowait((time.perf_counter(), None))


async def wait_in_lobby(url: str, headers: dict[str, str], stats: Stats) -> dict:
    """The ``paired`` message of the lobby socket, heartbeating as the page does; a ``busy``
    answer is waited out and the socket opened again (counted)."""
    from websockets.asyncio.client import connect

    for _ in range(RETRY_LIMIT):
        async with connect(
            url, additional_headers=headers, open_timeout=60, ping_interval=None
        ) as ws:
            while True:
                try:
                    message = json.loads(await asyncio.wait_for(ws.recv(), HEARTBEAT_SECONDS))
                except TimeoutError:
                    await ws.send('{"type": "heartbeat"}')
                    continue
                if message["type"] in ("paired", "busy"):
                    break
        if message["type"] == "paired":
            return message
        stats.lobby_retries += 1
        await asyncio.sleep(message["retry_in"])
    raise RuntimeError(f"the lobby was busy {RETRY_LIMIT} times in a row")


async def player(
    url: str, lobby_url: str, round_id: int, session_key: str, stats: Stats, args, rng
) -> None:
    origin = url.replace("ws://", "http://")
    lobby_origin = lobby_url.replace("ws://", "http://")
    headers = {"Cookie": f"sessionid={session_key}", "Origin": origin}
    started = time.perf_counter()
    # Arrival: the lobby page puts the worker in the lobby, then its socket waits for a partner.
    status = await fetch(f"{lobby_origin}/play/lobby/{round_id}/", headers, stats)
    if status != 200:
        raise RuntimeError(f"lobby page: HTTP {status}")
    try:
        message = await wait_in_lobby(f"{lobby_url}/ws/play/lobby/{round_id}/", headers, stats)
    except Exception as error:
        raise RuntimeError(f"lobby socket: {error!r}") from error
    stats.pairing_s.append(time.perf_counter() - started)
    game_id = message["game"]
    status = await fetch(f"{origin}{message['url']}", headers, stats)
    if status != 200:
        raise RuntimeError(f"game page: HTTP {status}")
    try:
        await play(url, game_id, headers, stats, args, rng)
    except Exception as error:
        raise RuntimeError(f"game socket: {error!r}") from error


async def play(url: str, game_id: int, headers, stats: Stats, args, rng) -> None:
    """Play the game on its socket until it ends."""
    from websockets.asyncio.client import connect

    async with connect(
        f"{url}/ws/play/game/{game_id}/",
        additional_headers=headers,
        max_queue=None,
        open_timeout=60,
        ping_interval=None,
    ) as ws:
        answered = -1
        spoken = -1
        toggled_at = 0.0
        # Messages are stamped as the socket delivers them, while this player may be thinking.
        inbox: asyncio.Queue = asyncio.Queue()
        reader = asyncio.create_task(stamp_messages(ws, inbox))
        while True:
            now, raw = await inbox.get()
            if raw is None:
                await reader
                return
            stats.received += 1
            stats.received_bytes += len(raw)
            state = json.loads(raw)
            kind = state["type"]
            if kind == "error":
                stats.errors.append(state["code"])
                continue
            if kind == "draft":
                if toggled_at:
                    stats.toggle_ms.append((now - toggled_at) * 1000)
                    toggled_at = 0.0
                continue
            if kind != "state":
                continue
            stats.spans.setdefault(game_id, [now, now])[1] = now
            role, turn = state["role"], state["turn"]
            if role == "listener" and state["phase"] == "listener":
                key = (game_id, turn, "utterance")
                if key in stats.sent and turn > answered:
                    stats.move(now, stats.sent.pop(key), stats.utterance_ms)
                if turn > answered and state["utterance"]:
                    answered = turn
                    name = state["utterance"].split()[-1]
                    await asyncio.sleep(think(rng, args.toggle_think))
                    toggled_at = time.perf_counter()
                    stats.actions += 1
                    await ws.send(json.dumps({"type": "toggle", "tangram": name}))
                    await asyncio.sleep(think(rng, args.submit_think))
                    stats.sent[(game_id, turn, "submit")] = time.perf_counter()
                    stats.actions += 1
                    await ws.send('{"type": "submit"}')
                    stats.client_turns[game_id] = turn + 1
            if role == "speaker":
                done_turn = turn - 1 if state["status"] == "playing" else turn
                key = (game_id, done_turn, "submit")
                if key in stats.sent and state["phase"] != "listener":
                    stats.move(now, stats.sent.pop(key), stats.submit_ms)
            if state["status"] == "ended":
                stats.ended[game_id] = state["outcome"]
                reader.cancel()
                return
            if role == "speaker" and state["phase"] == "speaker" and turn > spoken:
                spoken = turn
                chosen = set(state["selection"])
                remaining = [
                    i["id"] for i in state["images"] if i["target"] and i["id"] not in chosen
                ]
                await asyncio.sleep(think(rng, args.utterance_think))
                stats.sent[(game_id, turn, "utterance")] = time.perf_counter()
                stats.actions += 1
                await ws.send(
                    json.dumps({"type": "utterance", "text": f"please pick {remaining[0]}"})
                )


async def watch_play_phase(stats: Stats, clients: int, meter: CpuMeter, phase: dict) -> None:
    """Sample the CPU once every client is in its game, so moves can be costed apart from
    arrivals and pairing."""
    while len(stats.spans) * 2 < clients:
        await asyncio.sleep(0.05)
    phase["actions"] = stats.actions
    phase["at"] = time.perf_counter()
    phase["cpu"] = await asyncio.to_thread(meter.sample)


async def run_clients(urls, lobby_urls, round_id, workers, stats, args, meter, phase) -> None:
    rng = random.Random(args.seed)
    watcher = asyncio.create_task(watch_play_phase(stats, len(workers), meter, phase))
    tasks = []
    for index, (_, key) in enumerate(workers):
        url = urls[index % len(urls)]
        lobby_url = lobby_urls[index % len(lobby_urls)]
        tasks.append(
            asyncio.create_task(
                player(url, lobby_url, round_id, key, stats, args, random.Random(rng.random()))
            )
        )
        if index % 20 == 19:
            await asyncio.sleep(args.ramp / (len(workers) / 20))
    done, pending = await asyncio.wait(tasks, timeout=args.timeout)
    watcher.cancel()
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception() is not None:
            stats.errors.append(repr(task.exception())[:200])


class CpuMeter:
    """CPU seconds of the processes that serve the games, read from /proc through psutil; the
    last ``lobby_servers`` of ``servers`` are the lobby pool, also counted on their own."""

    def __init__(
        self, servers: list[subprocess.Popen], db_url: str, lobby_servers: int = 0
    ) -> None:
        import psutil

        self.psutil = psutil
        self.servers = [psutil.Process(server.pid) for server in servers]
        self.lobby = self.servers[len(self.servers) - lobby_servers :] if lobby_servers else []
        self.db_name = urlparse(db_url).path.lstrip("/")
        self.db_url = db_url

    def _cpu(self, process) -> float:
        try:
            times = process.cpu_times()
        except self.psutil.Error:
            return 0.0
        return times.user + times.system

    def backends(self) -> dict[int, float]:
        """CPU of each PostgreSQL backend connected to the benchmark database (same machine)."""
        import psycopg

        with psycopg.connect(self.db_url, autocommit=True) as conn:
            pids = [
                row[0]
                for row in conn.execute(
                    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> "
                    "pg_backend_pid()",
                    (self.db_name,),
                )
            ]
        result = {}
        for pid in pids:
            try:
                result[pid] = self._cpu(self.psutil.Process(pid))
            except self.psutil.Error:
                continue
        return result

    def redis(self) -> float:
        import redis

        info = redis.Redis.from_url(os.environ["REDIS_URL"]).info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def sample(self) -> dict:
        return {
            "servers": sum(self._cpu(p) for p in self.servers),
            "lobby": sum(self._cpu(p) for p in self.lobby),
            "client": time.process_time(),
            "backends": self.backends(),
            "redis": self.redis(),
        }

    @staticmethod
    def lobby_share(before: dict, after: dict) -> float:
        """CPU seconds of the lobby pool (part of ``delta``'s web)."""
        return after["lobby"] - before["lobby"]

    @staticmethod
    def delta(before: dict, after: dict) -> dict[str, float]:
        backends = sum(
            cpu - before["backends"].get(pid, 0.0) for pid, cpu in after["backends"].items()
        )
        return {
            "web": after["servers"] - before["servers"],
            "client": after["client"] - before["client"],
            "postgres": backends,
            "redis": after["redis"] - before["redis"],
        }
