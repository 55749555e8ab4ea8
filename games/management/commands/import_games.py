"""``manage.py import_games FILE --study NAME --round N --system NAME``.

Reads the original study's export (.json, .pkl) or the platform's JSONL (.jsonl) and imports
it all or nothing; the study is created with default settings if it does not exist yet. A bad
file exits non-zero with a message naming the game and field, and changes nothing.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from games.importing import import_games_file
from games.records import RecordError


class Command(BaseCommand):
    help = "Import game records (.json/.pkl in the original study's layout, or .jsonl)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="path to a .json, .pkl or .jsonl file")
        parser.add_argument("--study", required=True, help="study name (created if missing)")
        parser.add_argument("--round", required=True, type=int, help="round index (0, 1, ...)")
        parser.add_argument("--system", required=True, help="system name, e.g. B-FFT or HH")

    def handle(self, *args, **options) -> None:
        try:
            result = import_games_file(
                options["file"],
                study_name=options["study"],
                round_index=options["round"],
                system_name=options["system"],
            )
        except RecordError as error:
            raise CommandError(f"nothing imported: {error}") from error
        self.stdout.write(result.summary)
