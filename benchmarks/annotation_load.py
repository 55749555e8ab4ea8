"""Load test of the annotation survey: N simulated crowdworkers against a real server.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
        .venv/bin/python benchmarks/annotation_load.py --annotators 50

It creates a fresh PostgreSQL database (``<name>_bench_ann``), migrates it, seeds a study with
games and an annotation batch, starts Daphne web processes on loopback sharing one listening
socket, and runs one thread per annotator. Each annotator walks the pages a crowdworker's browser
walks: arrives from Prolific (redirected to a token URL), reads and posts the consent page, reads
the guidelines and follows their "Continue" link to the survey, answers every step of its games
(a random valid action in phase 1, a random satisfaction in phase 2) with a think time between
answers, re-sends some answers as a double submit would, submits each game after its review, and
finishes with the completion code. A page that is not the one the flow expects is an error naming
it, so a changed flow fails the run instead of passing unnoticed.

``--smoke`` is the size the test suite runs (3 annotators, short think times, one process): it
checks that the flow and the result lines still work, not the speed.

It prints p50/p95/p99/max latencies of page loads and of answer submissions, the error count,
and checks in the database that every answer was stored exactly once with the value sent. The
run is bounded in requests (the games of the batch) and in time (``--max-seconds``). Exit status
1 when an error happened, an answer is missing or duplicated, or a p95 exceeds ``--p95-ms``.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from harness import latency_line, percentile, scratch_database, start_asgi_servers

STATE = re.compile(r'<script id="survey-state" type="application/json">(.*?)</script>', re.S)


def page_part(page: bytes, pattern: str, what: str, path: str) -> str:
    """The first group of ``pattern`` in the page; an error naming the page and what it lacks."""
    found = re.search(pattern, page.decode(), re.S)
    if found is None:
        raise RuntimeError(f"{path}: no {what} on this page (the worker's flow changed?)")
    return found.group(1)


@dataclass
class Results:
    page_ms: list[float] = field(default_factory=list)
    answer_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    sent: dict[tuple[int, int], dict] = field(default_factory=dict)  # (assignment, turn) → answer
    duplicates_acknowledged: int = 0
    games_submitted: int = 0
    completed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def seed(games: int, seed_value: int) -> tuple[str, int]:
    """A study with ``games`` ended games of 3-8 turns and a batch over all of them."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from annotation.creation import create_batch
    from tests.factories import make_game, make_study, make_system

    rng = random.Random(seed_value)
    system = make_system(make_study("load-study"), 0, "B-FFT")
    names = [f"page9-{i}" for i in range(9, -1, -1)]  # listener order of make_game
    for n in range(games):
        selection: list[str] = []
        selections = []
        for _ in range(rng.randint(3, 8)):
            picked = rng.choice(names)
            selection = (
                [t for t in selection if t != picked]
                if picked in selection
                else [
                    *selection,
                    picked,
                ]
            )
            selections.append(list(selection))
        utterances = [f"utterance {t} of game {n}" for t in range(len(selections))]
        make_game(system, selections, utterances, external_id=f"load{n}")
    batch = create_batch(
        study=system.round.study,
        round_index=0,
        system_name="B-FFT",
        name="load",
        games=games,
        redundancy_fraction=0.05,
        redundancy_count=3,
        task_options={"prolific_completion_code": "LOADCODE", "games_per_session": 2},
    )
    from django.db import connections

    connections.close_all()
    return batch.task.key, batch.pk


class Annotator(threading.Thread):
    def __init__(self, number: int, port: int, key: str, args, results: Results) -> None:
        super().__init__(daemon=True)
        self.number, self.port, self.key, self.args, self.results = number, port, key, args, results
        self.rng = random.Random(args.seed * 1000 + number)
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method: str, path: str, body=None, headers=None, kind="page"):
        headers = dict(headers or {})
        payload = None
        if isinstance(body, dict):
            payload = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        elif isinstance(body, str):
            payload = body.encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        start = time.perf_counter()
        try:
            self.connection.request(method, path, body=payload, headers=headers)
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            raise
        elapsed = (time.perf_counter() - start) * 1000
        with self.results.lock:
            (self.results.answer_ms if kind == "answer" else self.results.page_ms).append(elapsed)
        return response, data

    def follow(self, method: str, path: str, body=None) -> bytes:
        response, data = self.request(method, path, body)
        while response.status in (301, 302):
            path = response.getheader("Location")
            response, data = self.request("GET", path)
        if response.status != 200:
            raise RuntimeError(f"{method} {path}: HTTP {response.status}")
        self.path = path
        return data

    def think(self) -> None:
        time.sleep(self.rng.uniform(0.5, 1.5) * self.args.think)

    def run(self) -> None:
        try:
            self.work()
        except Exception as error:  # noqa: BLE001 - every failure is counted and reported
            with self.results.lock:
                self.results.errors.append(f"annotator {self.number}: {error}")

    def work(self) -> None:
        time.sleep(self.args.ramp * self.number / max(1, self.args.annotators))
        query = urlencode(
            {
                "PROLIFIC_PID": f"loadworker{self.number}",
                "STUDY_ID": "LOAD",
                "SESSION_ID": f"loadsession{self.number}",
            }
        )
        # Arrival: redirected to the token URL, which sends a new worker to the consent page.
        page = self.follow("GET", f"/annotation/prolific/{self.key}/?{query}")
        token = self.path.split("/")[3]
        self.headers = {"X-Worker-Token": token}
        self.expect_page("consent/", page, 'id="(consent-submit)"', "consent form")
        self.think()
        page = self.follow("POST", self.path, "agree=yes")
        self.expect_page("guidelines/", page, 'id="to-work" href="([^"]+)"', "link to the work")
        self.think()
        survey = page_part(page, 'id="to-work" href="([^"]+)"', "link to the work", self.path)
        page = self.follow("GET", survey)
        self.expect_page("survey/", page, STATE.pattern, "survey state")
        state = json.loads(page_part(page, STATE.pattern, "survey state", self.path))
        deadline = time.monotonic() + self.args.max_seconds
        while state["status"] != "complete" and time.monotonic() < deadline:
            state = self.step(state)
        if state["status"] != "complete":
            raise RuntimeError(f"not complete after {self.args.max_seconds}s: {state['status']}")
        if state["completion"]["code"] != "LOADCODE":
            raise RuntimeError(f"completion code {state['completion']} instead of LOADCODE")
        with self.results.lock:
            self.results.completed += 1
        if self.rng.random() < 0.5:  # a reload at the end
            self.follow("GET", f"/annotation/w/{token}/survey/")

    def expect_page(self, ending: str, page: bytes, pattern: str, what: str) -> None:
        """The last page loaded is ``…/<ending>`` and shows ``what``."""
        if not self.path.endswith(ending):
            raise RuntimeError(f"expected the page …/{ending}, got {self.path}")
        page_part(page, pattern, what, self.path)

    def post(self, path: str, body: dict | None = None) -> dict:
        response, data = self.request("POST", path, body, self.headers, kind="answer")
        if response.status != 200:
            raise RuntimeError(f"POST {path} {body}: HTTP {response.status} {data[:200]!r}")
        return json.loads(data)

    def step(self, state: dict) -> dict:
        self.think()
        if state["status"] == "can_complete":  # no game left for this worker: finish early
            return self.post("/annotation/api/work/complete/")
        if state["status"] != "annotating" and state["status"] != "review":
            raise RuntimeError(f"unexpected survey state {state['status']}")
        game = state["game"]
        if state["status"] == "review":
            new = self.post("/annotation/api/work/submit/", {"assignment": game["id"]})
            with self.results.lock:
                self.results.games_submitted += 1
            return new
        step = game["step"]
        body = {"assignment": game["id"], "turn": step["turn"], "phase": step["phase"]}
        if step["phase"] == 1:
            free = [i["letter"] for i in game["images"] if i["letter"] not in step["selection"]]
            body["action"] = "select " + self.rng.choice(free) if free else ""
        else:
            body["satisfaction"] = self.rng.choice(["yes", "yes_incomplete", "yes_wrong", "no"])
        new = self.post("/annotation/api/work/answer/", body)
        with self.results.lock:
            answer = self.results.sent.setdefault((game["id"], step["turn"]), {})
            answer["action" if step["phase"] == 1 else "satisfaction"] = body.get(
                "action", body.get("satisfaction")
            )
        if self.rng.random() < self.args.double_submit:
            again = self.post("/annotation/api/work/answer/", body)
            if not again.get("duplicate"):
                raise RuntimeError(f"a repeated answer was not acknowledged as such: {body}")
            with self.results.lock:
                self.results.duplicates_acknowledged += 1
        if self.rng.random() < self.args.reload:
            self.follow("GET", f"/annotation/w/{self.headers['X-Worker-Token']}/survey/")
        return new


def verify(results: Results) -> list[str]:
    """Every answer sent is stored exactly once, with the value sent; nothing else is stored."""
    from annotation.models import TurnAnnotation

    problems = []
    stored: dict[tuple[int, int], list] = {}
    for row in TurnAnnotation.objects.values(
        "assignment_id", "turn__index", "annotated_action", "satisfaction"
    ):
        stored.setdefault((row["assignment_id"], row["turn__index"]), []).append(row)
    for key, answer in results.sent.items():
        rows = stored.get(key, [])
        if len(rows) != 1:
            problems.append(f"assignment {key[0]} turn {key[1]}: stored {len(rows)} times")
            continue
        if rows[0]["annotated_action"] != answer["action"] or rows[0]["satisfaction"] != answer.get(
            "satisfaction", ""
        ):
            problems.append(f"assignment {key[0]} turn {key[1]}: stored {rows[0]} != sent {answer}")
    problems += [
        f"assignment {k[0]} turn {k[1]}: stored but never sent"
        for k in stored
        if k not in results.sent
    ]
    return problems


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), for the per-request cost line."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--server", choices=["uvicorn", "daphne"], default="uvicorn")
    parser.add_argument("--processes", type=int, default=2, help="web server processes")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds between answers")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which they arrive")
    parser.add_argument("--double-submit", type=float, default=0.1)
    parser.add_argument("--reload", type=float, default=0.05)
    parser.add_argument("--max-seconds", type=float, default=240)
    parser.add_argument("--p95-ms", type=float, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--pool",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="serve with the PostgreSQL connection pool (DATABASE_POOL=true)",
    )
    parser.add_argument(
        "--smoke", action="store_true", help="the test suite's size: 3 annotators, brief thinking"
    )
    args = parser.parse_args()
    if args.smoke:
        args.annotators, args.processes, args.think, args.ramp = 3, 1, 0.05, 0.3

    os.environ["DATABASE_URL"] = scratch_database(os.environ.get("DATABASE_URL", ""), "_bench_ann")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    # The servers run with DEBUG off, which refuses the demo's public keys: keys of this run.
    os.environ.setdefault("DJANGO_SECRET_KEY", secrets.token_urlsafe(50))
    os.environ.setdefault("WORKER_ID_HMAC_KEY", secrets.token_urlsafe(32))
    os.environ.setdefault(
        "WORKER_ID_ENCRYPTION_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode()
    )
    games = args.annotators * 2 + 10
    key, _ = seed(games, args.seed)
    env = dict(os.environ, DATABASE_POOL=str(args.pool), DJANGO_DEBUG="0", PYTHONUNBUFFERED="1")
    servers, port = start_asgi_servers(args.server, args.processes, env)
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    results = Results()
    try:
        annotators = [Annotator(n, port, key, args, results) for n in range(args.annotators)]
        cpu_before = sum(cpu_seconds(server.pid) for server in servers)
        started = time.monotonic()
        for annotator in annotators:
            annotator.start()
        for annotator in annotators:
            annotator.join(args.max_seconds + 30)
        wall = time.monotonic() - started
        server_cpu = sum(cpu_seconds(server.pid) for server in servers) - cpu_before
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(10)

    problems = verify(results)
    requests = len(results.page_ms) + len(results.answer_ms)
    print(
        f"annotators {args.annotators}, {args.processes} {args.server} processes, "
        f"think {args.think}s, ramp {args.ramp}s, pool {args.pool}, "
        f"load average before {load_before}\n"
        f"wall {wall:.1f}s, requests {requests} ({requests / wall:.1f}/s), "
        f"server CPU {1000 * server_cpu / max(1, requests):.1f} ms per request"
    )
    for name, values in (("page loads", results.page_ms), ("answers", results.answer_ms)):
        print(latency_line(f"{name:>11}", values))
    print(
        f"games submitted {results.games_submitted}, sessions completed {results.completed}, "
        f"double submits acknowledged {results.duplicates_acknowledged}"
    )
    print(
        f"answers sent {len(results.sent)}, storage problems {len(problems)}, "
        f"errors {len(results.errors)}"
    )
    for line in (results.errors + problems)[:20]:
        print("  " + line)
    failed = bool(results.errors or problems or not results.sent)
    if args.smoke:
        rule = "smoke: every session completes, every answer stored once; latency not judged"
    else:
        rule = f"no error, every answer stored once, p95 < {args.p95_ms:g} ms"
        p95 = max(percentile(results.page_ms, 95), percentile(results.answer_ms, 95))
        failed = failed or not p95 < args.p95_ms
    print("FAIL" if failed else "PASS", f"({rule})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
