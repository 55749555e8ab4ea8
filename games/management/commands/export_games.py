"""``manage.py export_games --study NAME --format jsonl -o FILE [--round N] [--system S]``.

Writes the study's ended games, one JSON object per line (see ``games.exporting``); ``-o -``
writes to standard output. Workers appear only as keyed hashes.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from games.exporting import FORMATS, export_games_file, write_jsonl
from games.models import Study


class Command(BaseCommand):
    help = "Export a study's ended games as JSONL (one game per line)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--study", required=True, help="study name")
        parser.add_argument("--format", default="jsonl", choices=FORMATS)
        parser.add_argument("-o", "--output", required=True, help="output file, or - for stdout")
        parser.add_argument("--round", type=int, default=None, help="only this round index")
        parser.add_argument("--system", default=None, help="only this system name")

    def handle(self, *args, **options) -> None:
        study = Study.objects.filter(name=options["study"]).first()
        if study is None:
            raise CommandError(f"no study named {options['study']!r}")
        selection = {"round_index": options["round"], "system_name": options["system"]}
        if options["output"] == "-":
            write_jsonl(self.stdout, study, **selection)
            return
        try:
            result = export_games_file(options["output"], study, **selection)
        except OSError as error:
            raise CommandError(f"cannot write {options['output']}: {error.strerror}") from error
        self.stdout.write(
            f"exported {result.games} games ({result.turns} turns) to {options['output']}"
        )
