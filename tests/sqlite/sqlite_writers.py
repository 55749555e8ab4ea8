"""Run by tests/sqlite/test_sqlite.py in a subprocess pointed at a fresh SQLite file: migrate,
then THREADS threads each run ROUNDS transactions that read and then write (the pattern of a
survey answer, a game move or a heartbeat), all at once. Prints a JSON summary."""

from __future__ import annotations

import json
import sys
import threading

import django

THREADS, ROUNDS = 8, 15


def main() -> None:
    django.setup()
    from django.core.management import call_command
    from django.db import connection, transaction

    from games.models import Study

    call_command("migrate", "--noinput", verbosity=0)
    errors: list[str] = []
    start = threading.Barrier(THREADS)

    def write(number: int) -> None:
        start.wait()
        try:
            for index in range(ROUNDS):
                with transaction.atomic():
                    seen = Study.objects.filter(name__startswith=f"w{number}-").count()
                    Study.objects.create(name=f"w{number}-{seen}", description=str(index))
        except Exception as error:  # reported to the test, which names it
            errors.append(f"{type(error).__name__}: {error}")
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with connection.cursor() as cursor:
        mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
    names = sorted(Study.objects.filter(name__startswith="w").values_list("name", flat=True))
    json.dump({"errors": errors, "studies": len(names), "journal_mode": mode}, sys.stdout)


if __name__ == "__main__":
    main()
