"""Write a study's feedback labels as JSON lines."""

from __future__ import annotations

import json
import os
import tempfile

from django.core.management.base import BaseCommand, CommandError

from games.models import Study


class Command(BaseCommand):
    help = (
        'Export feedback labels, one JSON row {"game_id", "turn", "label", "decoder", "kind", '
        '"score"} a line (turn is 0-based).'
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--study", required=True)
        parser.add_argument(
            "-o", "--output", required=True, help="JSONL file to write ('-': stdout)"
        )
        parser.add_argument("--decoder", default="", help="only labels of this decoder name")
        parser.add_argument("--kind", choices=["binary", "ternary"], default=None)

    def handle(self, *args, **options) -> None:
        from models_svc.selectors import export_feedback_rows

        try:
            study = Study.objects.get(name=options["study"])
        except Study.DoesNotExist as exc:
            raise CommandError(f"no study named {options['study']!r}") from exc
        rows = export_feedback_rows(study, decoder=options["decoder"] or None, kind=options["kind"])
        if options["output"] == "-":
            count = sum(1 for row in rows if self.stdout.write(json.dumps(row)) or True)
        else:
            directory = os.path.dirname(os.path.abspath(options["output"]))
            if not os.path.isdir(directory):
                raise CommandError(f"directory {directory} does not exist")
            count = 0
            with tempfile.NamedTemporaryFile(
                "w", dir=directory, delete=False, suffix=".tmp"
            ) as tmp:
                for row in rows:
                    tmp.write(json.dumps(row) + "\n")
                    count += 1
            os.replace(tmp.name, options["output"])
        self.stderr.write(f"wrote {count} feedback labels of study {study.name}")
