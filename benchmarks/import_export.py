"""Benchmark: import 10,000 synthetic games (about 75,000 turns) and export them again.

Targets (issue 2): import in under 30 s, export in under 15 s, on PostgreSQL.

    createdb -h 127.0.0.1 -U postgres respect_bench
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/respect_bench
    .venv/bin/python benchmarks/import_export.py --migrate

The script writes the games in the original study's export layout (a JSON file), then times
reading that file, importing it (``import_games`` code path), importing it again (every game
skipped), exporting the study as JSONL and parsing the export back. It works in a study and
tangrams of its own (``bench-*``) and deletes them afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import harness  # noqa: F401  (puts the repository on sys.path)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from games.exporting import export_games_file  # noqa: E402
from games.importing import import_game_records, read_records  # noqa: E402
from games.jsonl_records import records_from_jsonl  # noqa: E402
from games.models import Game, GameConfig, Study, Tangram, Turn, Worker  # noqa: E402

TANGRAM_PREFIX = "bench-page"


def synthetic_export(games: int, seed: int, tangrams: list[str]) -> dict[str, dict]:
    """Games in the original study's layout: a listener who is right half of the time."""
    rng = random.Random(seed)
    export = {}
    for number in range(games):
        context = rng.sample(tangrams, 10)
        targets = context[: rng.randint(3, 5)]
        listener_order = context[:]
        rng.shuffle(listener_order)
        selection: list[str] = []
        chat, clicks, timings = [], [], []
        end = "unsuccessful"
        for turn in range(10):
            wrong = [image for image in selection if image not in targets]
            if wrong:
                selection = [image for image in selection if image not in wrong]
                chat.append("no, not that one. undo it")
            elif rng.random() < 0.5:
                selection.append(next(t for t in targets if t not in selection))
                chat.append(f"yes. now pick the shape number {turn}")
            else:
                selection.append(rng.choice([image for image in context if image not in selection]))
                chat.append("pick the bird with a long neck")
            clicks.append([f"{image}.png" for image in sorted(selection)])
            send = rng.randint(3, 24)
            submit = round(rng.uniform(2, 40), 3)
            timings.append(
                {
                    "secUntilSend": send,
                    "secBetweenSendAndSubmit": submit,
                    "secUntilSubmit": send + submit,
                }
            )
            if set(selection) == set(targets):
                end = "successful"
                break
        game_id = f"bench{seed}-{number:06d}"
        export[game_id] = {
            "_id": game_id,
            "context": [f"{image}.png" for image in context],
            "context_listener": [f"{image}.png" for image in listener_order],
            "targets": [f"{image}.png" for image in targets],
            "chat": chat,
            "clicks": clicks,
            "turnList": timings,
            "end": end,
            "speaker": f"speaker-{rng.randint(1, 400)}",
            "listener": f"listener-{rng.randint(1, 400)}",
            "created_at": f"2024-09-{1 + number % 28:02d} 12:00:00",
            "treatment": "benchmark",
            "msg": rng.uniform(3, 8),
        }
    return export


def timed(label: str, function, *args, **kwargs):
    """Run and print wall time and this process's CPU time (the database server's is not in it)."""
    start, cpu = time.perf_counter(), time.process_time()
    value = function(*args, **kwargs)
    elapsed = time.perf_counter() - start
    print(f"{label:<36} {elapsed:7.2f} s  (cpu {time.process_time() - cpu:6.2f} s)", flush=True)
    return value, elapsed


def cleanup(study_name: str) -> None:
    study = Study.objects.filter(name=study_name).first()
    if study is not None:
        workers = set(Game.objects.filter(study=study).values_list("speaker_id", flat=True)) | set(
            Game.objects.filter(study=study).values_list("listener_id", flat=True)
        )
        # Plain DELETEs: the ORM's cascade collector takes longer than the benchmark itself.
        for queryset in (
            Turn.objects.filter(game__study=study),
            Game.objects.filter(study=study),
            GameConfig.objects.filter(study=study),
        ):
            queryset._raw_delete(queryset.db)
        study.delete()
        Worker.objects.filter(pk__in=workers - {None}, platform="import").delete()
    Tangram.objects.filter(name__startswith=TANGRAM_PREFIX).delete()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--games", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--migrate", action="store_true", help="run migrations first")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark study")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("set DATABASE_URL to a PostgreSQL database (the targets are for PostgreSQL)")
    if args.migrate:
        call_command("migrate", verbosity=0)
    study_name = f"bench-import-export-{args.seed}"
    cleanup(study_name)
    names = [f"{TANGRAM_PREFIX}{i}-{j}" for i in range(1, 10) for j in range(113)]
    Tangram.objects.bulk_create([Tangram(name=name, split="train") for name in names])

    import json

    with tempfile.TemporaryDirectory() as directory:
        source = Path(directory) / "games.json"
        export = synthetic_export(args.games, args.seed, names)
        source.write_text(json.dumps(export))
        turns = sum(len(game["chat"]) for game in export.values())
        del export
        print(f"{args.games} games, {turns} turns, source file {source.stat().st_size >> 20} MiB")
        try:
            records, read_s = timed("read + validate source file", read_records, source)
            study = Study.objects.create(name=study_name)
            result, import_s = timed(
                "import into PostgreSQL",
                import_game_records,
                records,
                study=study,
                round_index=0,
                system_name="B-FFT",
            )
            assert (result.created, result.turns_created) == (args.games, turns), result
            print(f"{'import_games total (read + import)':<36} {read_s + import_s:7.2f} s")
            again, _ = timed(
                "import again (all skipped)",
                import_game_records,
                records,
                study=study,
                round_index=0,
                system_name="B-FFT",
            )
            assert (again.created, again.skipped) == (0, args.games), again
            output = Path(directory) / "export.jsonl"
            exported, _ = timed("export JSONL", export_games_file, output, study)
            assert (exported.games, exported.turns) == (args.games, turns), exported
            with output.open() as lines:
                parsed, _ = timed("parse + validate the export", records_from_jsonl, lines)
            assert len(parsed) == args.games
        finally:
            if not args.keep:
                cleanup(study_name)


if __name__ == "__main__":
    main()
